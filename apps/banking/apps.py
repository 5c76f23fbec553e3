from django.apps import AppConfig


class BankingConfig(AppConfig):
    name = "apps.banking"
    label = "banking"

    def ready(self) -> None:
        from apps.audit.hooks import register_bundle_contributor, register_digest_verifier
        from apps.banking import receipts, scenarios, selectors, signaling  # noqa: F401
        from apps.banking.services import required_key_points
        from apps.calls.collab import register_share_guard
        from apps.recordings.keypoints import register_key_point, register_required_key_points

        register_digest_verifier(receipts.digest_failures, name="banking")
        register_bundle_contributor(receipts.bundle_items, name="banking")
        register_share_guard(selectors.refuse_share_during_pin)
        register_required_key_points(required_key_points, name="banking")

        for code, (zh, en) in scenarios.EXTRA_KEY_POINTS.items():
            register_key_point(code, zh, en)
