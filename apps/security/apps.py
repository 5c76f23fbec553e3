from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "apps.security"
    label = "security"

    def ready(self) -> None:
        from apps.security import receivers

        receivers.connect()
