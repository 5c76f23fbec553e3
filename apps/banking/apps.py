from django.apps import AppConfig


class BankingConfig(AppConfig):
    name = "apps.banking"
    label = "banking"

    def ready(self) -> None:
        from apps.accounts.demo import register_demo_seeder
        from apps.audit.hooks import register_bundle_contributor, register_digest_verifier
        from apps.banking import receipts, scenarios, selectors, signaling  # noqa: F401
        from apps.banking.gateway.sandbox import seed_sandbox
        from apps.calls.actions.share import register_share_guard
        from apps.recordings.keypoints import register_key_point

        register_digest_verifier(receipts.digest_failures, name="banking")
        register_bundle_contributor(receipts.bundle_items, name="banking")
        register_share_guard(selectors.refuse_share_during_pin)
        # The demo customers' accounts in the sandbox core (its own tables).
        register_demo_seeder(
            "banking.sandbox",
            lambda customers: seed_sandbox(
                [(c.reference, c.name, c.id_number, c.phone) for c in customers]
            ),
        )

        for code, (zh, en) in scenarios.EXTRA_KEY_POINTS.items():
            register_key_point(code, zh, en)
