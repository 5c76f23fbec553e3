from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = _("资源监控")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.accounts.models import Role
        from apps.accounts.navigation import register_nav_link
        from apps.audit.hooks import register_event_listener
        from apps.monitoring import listeners, timeline  # a timeline source on import
        from apps.qc.findings import register_finding_source

        register_event_listener(listeners.on_audit_event, name="monitoring.counters")
        register_finding_source(timeline.quality_findings, name="monitoring.quality")
        register_nav_link(
            "wallboard",
            label=_("监控大屏"),
            url_name="wallboard",
            order=21,
            shows=lambda user, roles: Role.SUPERVISOR in roles,
        )
