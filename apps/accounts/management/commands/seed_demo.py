from typing import Any

from django.core.management.base import BaseCommand

from apps.accounts.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo skills, business types, staff, customers and API client."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = seed_demo()
        self.stdout.write(
            self.style.SUCCESS(
                f"demo data ready: agents {', '.join(summary.agents)}; "
                f"staff {', '.join(summary.staff)}; {summary.customers} customers; "
                f"API client {summary.api_key_id}; password '{DEMO_PASSWORD}'"
            )
        )
