from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordingsConfig(AppConfig):
    name = "apps.recordings"
    label = "recordings"
    verbose_name = _("双录录像")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from django.db.models.signals import post_save

        from apps.accounts.models import Role
        from apps.accounts.navigation import register_nav_link
        from apps.audit.hooks import (
            register_action_names,
            register_bundle_contributor,
            register_digest_verifier,
        )
        from apps.calls.models import CallStateChange
        from apps.recordings import (  # noqa: F401
            action_names,
            receivers,
            repairs,
            selectors,
            signaling,
            timeline,
            verification,
        )
        from remotebank import housekeeping

        post_save.connect(
            receivers.compose_when_call_ends,
            sender=CallStateChange,
            dispatch_uid="recordings.compose_when_call_ends",
        )
        register_digest_verifier(verification.digest_failures, name="recordings")
        # Compositions whose job died or vanished, and scratch plaintext of ended processes.
        housekeeping.register("recordings.compositions", repairs.repair_compositions, every_s=2)
        housekeeping.register("recordings.scratch", repairs.clean_scratch, every_s=10)
        register_bundle_contributor(selectors.bundle_items, name="recordings")
        # apps.recordings.views.recording_list: reviewers see every recording, an agent their own.
        register_nav_link(
            "recordings",
            label=_("双录录像"),
            url_name="recording-list",
            order=30,
            shows=lambda user, roles: bool(roles & set(selectors.REVIEW_ROLES)),
        )
        register_nav_link(
            "recordings",
            label=_("我的录像"),
            url_name="recording-list",
            order=31,
            shows=lambda user, roles: (
                Role.AGENT in roles and not roles & set(selectors.REVIEW_ROLES)
            ),
        )
        register_action_names(action_names.NAMES, name="recordings")
