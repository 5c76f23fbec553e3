from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "apps.security"
    label = "security"

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.security import receivers

        receivers.connect()
