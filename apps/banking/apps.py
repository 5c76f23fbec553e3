from django.apps import AppConfig


class BankingConfig(AppConfig):
    name = "apps.banking"
    label = "banking"

    def ready(self) -> None:
        from apps.banking import scenarios, selectors, signaling  # noqa: F401
        from apps.recordings.keypoints import register_key_point

        for code, (zh, en) in scenarios.EXTRA_KEY_POINTS.items():
            register_key_point(code, zh, en)
