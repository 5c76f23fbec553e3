from django.apps import AppConfig


class QcConfig(AppConfig):
    name = "apps.qc"
    label = "qc"
