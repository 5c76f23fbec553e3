"""The webhook queue's job (remotebank.queues.WEBHOOKS): deliver one endpoint's due
deliveries (apps.api.delivery)."""

from __future__ import annotations

import uuid

from django.db import close_old_connections

from apps.api.delivery import deliver_endpoint as deliver


def deliver_endpoint(endpoint_id: uuid.UUID | str) -> int:
    close_old_connections()
    return deliver(endpoint_id)
