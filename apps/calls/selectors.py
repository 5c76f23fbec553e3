"""Reads shared by views, consumers and the admin."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.calls.media import media_alive, media_config
from apps.calls.models import Call, CallState, ChatMessage, Participant
from apps.security.browser import call_crypto_params


def ice_servers() -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    if settings.STUN_URLS:
        servers.append({"urls": settings.STUN_URLS})
    if settings.TURN_URLS:
        servers.append(
            {
                "urls": settings.TURN_URLS,
                "username": settings.TURN_USERNAME,
                "credential": settings.TURN_PASSWORD,
            }
        )
    return servers


def call_summary(call: Call) -> dict[str, Any]:
    # A supervisor monitoring silently is left out: the customer must not learn of them.
    participants = Participant.objects.filter(call=call, visible=True).select_related(
        "user", "customer"
    )
    return {
        "call_id": str(call.pk),
        "number": call.number,
        "state": call.state,
        "business": {"code": call.business_type.code, "name": call.business_type.display_name},
        "customer_name": call.customer.display_name,
        "agent_employee_no": call.agent.employee_no if call.agent_id else None,
        "location": {
            "lat": call.location_lat,
            "lng": call.location_lng,
            "accuracy_m": call.location_accuracy_m,
            "address": call.location_address,
            "source": call.location_source,
        },
        "connected_at": call.connected_at.isoformat() if call.connected_at else None,
        "participants": [
            {
                "participant_id": p.pk,
                "role": p.role,
                "name": p.display_name,
                "joined_at": p.joined_at.isoformat(),
                "left_at": p.left_at.isoformat() if p.left_at else None,
            }
            for p in participants
        ],
        "ice_servers": ice_servers(),
        "media": media_config(),
        "media_epoch": call.media_epoch,
        "media_ready": call.state == CallState.CONNECTED and media_alive(call),
        # The call's public parameters for payload encryption (apps.security.browser).
        "crypto": (
            call_crypto_params(call_id=call.pk) if call.state == CallState.CONNECTED else None
        ),
    }


def chat_history(call: Call) -> list[dict[str, Any]]:
    from apps.calls.services import chat_event

    return [
        chat_event(m, m.sender)
        for m in ChatMessage.objects.filter(call=call).select_related(
            "sender", "sender__user", "sender__customer"
        )
    ]


def active_call_for_agent(user: Any) -> Call | None:
    return (
        Call.objects.select_related("business_type", "customer", "agent")
        .filter(state=CallState.CONNECTED, participants__user=user, participants__left_at=None)
        .first()
    )
