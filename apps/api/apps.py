from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "apps.api"
    label = "api"
    verbose_name = _("接入与回调")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from django.db.models.signals import post_save

        from apps.accounts.demo import register_demo_seeder
        from apps.api import action_names, demo, outbox, schema_extensions, system_checks  # noqa: F401 - registers
        from apps.audit.hooks import register_action_names, register_event_listener
        from apps.audit.models import Checkpoint

        register_event_listener(outbox.on_audit_event, name="api.webhook_outbox")
        post_save.connect(
            outbox.on_checkpoint_saved, sender=Checkpoint, dispatch_uid="api.checkpoint_outbox"
        )
        register_demo_seeder("api", demo.seed_api_demo)
        register_action_names(action_names.NAMES, name="api")
