"""Deploy checks of the integration surface."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from apps.api.delivery import schedule

DAY_SECONDS = 24 * 3600


@register(deploy=True)
def webhook_retries_span_a_day(**kwargs: Any) -> list[Error]:
    """A receiver down for a day must still get everything: the schedule spans 24 h."""
    total = sum(schedule())
    if total < DAY_SECONDS and not settings.DEBUG:
        return [
            Error(
                f"WEBHOOK_RETRY_SCHEDULE spans {total:.0f} s; webhooks need at least 24 h",
                id="api.E001",
            )
        ]
    return []
