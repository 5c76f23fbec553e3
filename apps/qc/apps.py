from django.apps import AppConfig


class QcConfig(AppConfig):
    name = "apps.qc"
    label = "qc"

    def ready(self) -> None:
        from apps.audit.hooks import register_bundle_contributor, register_digest_verifier
        from apps.qc import evidence, receivers, timeline  # noqa: F401 - signal, timeline source

        register_digest_verifier(evidence.digest_failures, name="qc_supplements")
        register_bundle_contributor(evidence.bundle_items, name="qc_supplements")
