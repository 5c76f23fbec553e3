from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BankingConfig(AppConfig):
    name = "apps.banking"
    label = "banking"
    verbose_name = _("柜面业务")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.accounts.demo import register_demo_seeder
        from apps.audit.hooks import (
            register_action_names,
            register_bundle_contributor,
            register_digest_verifier,
        )
        from apps.banking import action_names, receipts, scenarios, selectors, signaling  # noqa: F401
        from apps.banking.actions.receipts import ensure_receipts
        from apps.banking.gateway.sandbox import seed_sandbox
        from apps.banking.scenarios import (
            consumer_loan_interview,
            corporate_doc_update,
            customer_info_update,
            debit_pin_change,
            debit_pin_reset,
            debit_pin_unlock,
            deposit_pin_reset,
            deposit_pin_unlock,
            entrusted_agency,
        )
        from apps.banking.scenarios.base import EXTRA_KEY_POINTS
        from apps.calls.actions.share import register_share_guard
        from apps.recordings.keypoints import register_key_point, register_required_key_points
        from remotebank import housekeeping

        # The counter scenarios, in the order the workstation offers them: a new scenario is
        # one module in apps/banking/scenarios/ and one line here.
        for module in (
            customer_info_update,
            debit_pin_change,
            debit_pin_reset,
            debit_pin_unlock,
            deposit_pin_reset,
            deposit_pin_unlock,
            entrusted_agency,
            corporate_doc_update,
            consumer_loan_interview,
        ):
            scenarios.register(module.SCENARIO)
        for code, (zh, en) in EXTRA_KEY_POINTS.items():
            register_key_point(code, zh, en)

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
        register_required_key_points(selectors.required_key_points, name="banking")
        # Every completed transaction gets its receipt, also when its job was lost.
        housekeeping.register("banking.receipts", ensure_receipts, every_s=15)
        register_action_names(action_names.name, name="banking")
