from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

from remotebank.db_roles import grant_application_rights


class SecurityConfig(AppConfig):
    name = "apps.security"
    label = "security"
    verbose_name = _("安全与密钥")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.security import receivers

        receivers.connect()
        # Once per migrate or flush (sender): the application role's rights on every table.
        post_migrate.connect(grant_application_rights, sender=self, dispatch_uid="rb_db_grants")
