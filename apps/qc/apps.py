from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QcConfig(AppConfig):
    name = "apps.qc"
    label = "qc"
    verbose_name = _("质检")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.accounts.navigation import register_nav_link
        from apps.audit.hooks import (
            register_action_names,
            register_bundle_contributor,
            register_digest_verifier,
        )
        from apps.qc import action_names, evidence, receivers, repairs, timeline  # noqa: F401 - signal, timeline source
        from apps.qc.selectors import can_inspect
        from remotebank import housekeeping

        register_digest_verifier(evidence.digest_failures, name="qc_supplements")
        housekeeping.register("qc.runs", repairs.repair_runs, every_s=2)  # dead or lost jobs
        register_bundle_contributor(evidence.bundle_items, name="qc_supplements")
        # apps.qc.views (_inspector)
        register_nav_link(
            "qc",
            label=_("质检"),
            url_name="qc-reports",
            order=40,
            shows=lambda u, r: can_inspect(u),
        )
        register_action_names(action_names.NAMES, name="qc")
