from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.audit import checks, receivers  # noqa: F401 - registers the system check
        from apps.security.signals import kek_rotated, key_used

        key_used.connect(receivers.record_key_used, dispatch_uid="audit.key_used")
        kek_rotated.connect(receivers.record_kek_rotated, dispatch_uid="audit.kek_rotated")
