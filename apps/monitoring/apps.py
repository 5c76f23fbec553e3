from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = _("资源监控")

    def ready(self) -> None:
        from apps.audit.hooks import register_event_listener
        from apps.monitoring import listeners

        register_event_listener(listeners.on_audit_event, name="monitoring.counters")
        listeners.connect()
