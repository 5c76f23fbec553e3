"""Webhook endpoints (per client) and replays: every change is audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import ApiClient
from apps.api.delivery import kick
from apps.api.models import DeliveryState, WebhookDelivery, WebhookEndpoint, WebhookMessage
from apps.audit.audited import Actor, AuditedWrite, audited_action
from remotebank.errors import NotFound

MAX_REPLAY = 10_000


def _audit(write: AuditedWrite, action: str, endpoint: WebhookEndpoint, actor: Actor) -> None:
    write.record(
        action=action,
        actor=actor,
        object_type="webhook_endpoint",
        object_id=endpoint.pk,
        after={
            "url": endpoint.url,
            "events": sorted(endpoint.events),
            "signing": endpoint.signing,
            "active": endpoint.active,
            "secret_version": endpoint.secret_version,
        },
        details={"client": endpoint.client.key_id, "url": endpoint.url},
    )


def endpoint_of(client: ApiClient, endpoint_id: uuid.UUID | str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, client=client).first()
    if endpoint is None:
        raise NotFound("webhook_not_found", "no such webhook endpoint")
    return endpoint


def create_endpoint(
    *,
    client: ApiClient,
    url: str,
    events: Sequence[str],
    signing: str,
    description: str,
    active: bool,
    actor: Actor,
) -> WebhookEndpoint:
    with audited_action() as write:
        endpoint = WebhookEndpoint.objects.create(
            client=client,
            url=url,
            events=sorted(set(events)),
            signing=signing,
            description=description,
            active=active,
        )
        _audit(write, "webhook.endpoint_created", endpoint, actor)
    return endpoint


def update_endpoint(
    *,
    client: ApiClient,
    endpoint_id: uuid.UUID | str,
    changes: dict[str, object],
    actor: Actor,
) -> WebhookEndpoint:
    with audited_action() as write:
        endpoint = endpoint_of(client, endpoint_id)
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        for field in ("url", "signing", "description", "active"):
            if field in changes:
                setattr(endpoint, field, changes[field])
        if "events" in changes:
            endpoint.events = sorted(set(changes["events"]))  # type: ignore[call-overload]
        if changes.get("active") is True:
            endpoint.failures = 0
            endpoint.paused_until = None
        endpoint.save()
        _audit(write, "webhook.endpoint_changed", endpoint, actor)
    return endpoint


def rotate_secret(
    *, client: ApiClient, endpoint_id: uuid.UUID | str, actor: Actor
) -> WebhookEndpoint:
    with audited_action() as write:
        endpoint = WebhookEndpoint.objects.select_for_update().get(
            pk=endpoint_of(client, endpoint_id).pk
        )
        endpoint.secret_version += 1
        endpoint.save(update_fields=["secret_version"])
        _audit(write, "webhook.secret_rotated", endpoint, actor)
    return endpoint


def delete_endpoint(*, client: ApiClient, endpoint_id: uuid.UUID | str, actor: Actor) -> None:
    """The endpoint and its deliveries go; the messages stay in the outbox."""
    with audited_action() as write:
        endpoint = endpoint_of(client, endpoint_id)
        _audit(write, "webhook.endpoint_deleted", endpoint, actor)
        endpoint.delete()


def replay(
    *,
    endpoint: WebhookEndpoint,
    msg_ids: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
    visible: Q,
    actor: Actor,
) -> int:
    """Queue messages again for one endpoint, in their original order per call: by id, or the
    endpoint's subscribed events in a time window. Messages it never had are added. The retry
    schedule starts over; the `webhook-id` stays (receivers deduplicate on it)."""
    messages = WebhookMessage.objects.filter(visible)
    if msg_ids:
        messages = messages.filter(msg_id__in=list(msg_ids))
    else:
        messages = messages.filter(event_type__in=list(endpoint.events))
        if since is not None:
            messages = messages.filter(created_at__gte=since)
        if until is not None:
            messages = messages.filter(created_at__lt=until)
    now = timezone.now()
    with audited_action() as write:
        chosen = list(messages.order_by("id")[:MAX_REPLAY])
        existing = {
            d.message_id: d
            for d in WebhookDelivery.objects.select_for_update().filter(
                endpoint=endpoint, message__in=chosen
            )
        }
        missing = [m for m in chosen if m.pk not in existing]
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                message=m, endpoint=endpoint, ordering_key=m.ordering_key, next_attempt_at=now
            )
            for m in missing
        )
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in existing.values()]).update(
            state=DeliveryState.PENDING, round_attempts=0, next_attempt_at=now
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failures=0, paused_until=None)
        write.record(
            action="webhook.replayed",
            actor=actor,
            object_type="webhook_endpoint",
            object_id=endpoint.pk,
            details={
                "messages": len(chosen),
                "by_id": bool(msg_ids),
                "since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None,
            },
        )
        endpoint_id = str(endpoint.pk)
        write.on_commit(lambda: kick([endpoint_id]), robust=True)
    return len(chosen)
