"""Demo data: the demo mobile-bank client gets every scope, and its CRM example page's origins
for the seat widget (docs/seat-widget.md)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import get_user_model

from apps.accounts.demo import DemoCustomer
from apps.accounts.models import ApiClient
from apps.api import scopes
from apps.api.models import ClientPolicy

DEMO_CLIENT_KEY_ID = "demo-mobile-bank"
# The example CRM page (sdk/js/examples/crm.html) served by `manage.py demo_crm`.
DEMO_WIDGET_ORIGINS = ["http://127.0.0.1:8001", "http://localhost:8001"]
DEMO_ACTING_USER = "qc01"  # may download with a reason; a supervisor or auditor approves


def seed_api_demo(customers: Sequence[DemoCustomer]) -> None:
    client = ApiClient.objects.filter(key_id=DEMO_CLIENT_KEY_ID).first()
    if client is None:
        return
    acting = get_user_model().objects.filter(username=DEMO_ACTING_USER).first()
    ClientPolicy.objects.update_or_create(
        client=client,
        defaults={
            "scopes": sorted(scopes.ALL),
            "all_calls": True,
            "acts_as": acting,
            "widget_origins": DEMO_WIDGET_ORIGINS,
        },
    )
