from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = _("审计日志与证据链")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.audit import action_names, checks, receivers  # noqa: F401 - registers the system check
        from apps.audit.hooks import register_action_names
        from apps.security.signals import kek_rotated, key_used

        key_used.connect(receivers.record_key_used, dispatch_uid="audit.key_used")
        kek_rotated.connect(receivers.record_kek_rotated, dispatch_uid="audit.kek_rotated")
        register_action_names(action_names.NAMES, name="audit")
