from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SecurityConfig(AppConfig):
    name = "apps.security"
    label = "security"
    verbose_name = _("安全与密钥")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.security import receivers

        receivers.connect()
