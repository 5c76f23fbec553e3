from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "apps.recordings"
    label = "recordings"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from apps.audit.hooks import register_bundle_contributor, register_digest_verifier
        from apps.calls.models import CallStateChange
        from apps.recordings import receivers, selectors, signaling, timeline, verification  # noqa: F401

        post_save.connect(
            receivers.compose_when_call_ends,
            sender=CallStateChange,
            dispatch_uid="recordings.compose_when_call_ends",
        )
        register_digest_verifier(verification.digest_failures, name="recordings")
        register_bundle_contributor(selectors.bundle_items, name="recordings")
