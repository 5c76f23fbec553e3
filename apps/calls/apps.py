from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "apps.calls"
    label = "calls"

    def ready(self) -> None:
        from apps.calls import signaling  # noqa: F401  (registers collaboration handlers)
