from django.apps import AppConfig


class QcConfig(AppConfig):
    name = "apps.qc"
    label = "qc"

    def ready(self) -> None:
        from apps.qc import receivers, timeline  # noqa: F401 - register the signal and source
