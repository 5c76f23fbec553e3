"""The seat widget's short-lived token: a CRM's server obtains one for an agent through the
API, hands it to the widget on its page, and the widget opens the signaling socket with it
(apps.api.seat_socket). Only the token's hash is stored; it works only from the origin it
was issued for, until it expires (SEAT_TOKEN_TTL_SECONDS) or the agent's account is off."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from apps.accounts.models import AgentProfile, ApiClient
from apps.api.errors import ApiError
from apps.api.models import SeatToken
from apps.audit.audited import Actor, audited_action
from remotebank.errors import NotFound


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_seat_token(
    *,
    client: ApiClient,
    employee_no: str,
    origin: str,
    allowed_origins: tuple[str, ...],
    actor: Actor,
) -> tuple[SeatToken, str]:
    if origin not in {o.lower().rstrip("/") for o in allowed_origins}:
        raise ApiError("bad_origin", "origin is not one of the client's widget origins")
    agent = (
        AgentProfile.objects.select_related("user")
        .filter(employee_no=employee_no, user__is_active=True)
        .first()
    )
    if agent is None:
        raise NotFound("agent_not_found", "no such agent")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with audited_action() as write:
        seat = SeatToken.objects.create(
            token_hash=token_hash(token),
            client=client,
            user=agent.user,
            origin=origin,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.SEAT_TOKEN_TTL_SECONDS),
        )
        write.record(
            action="seat.token_issued",
            actor=actor,
            object_type="seat_token",
            object_id=seat.pk,
            details={
                "employee_no": employee_no,
                "origin": origin,
                "expires_at": seat.expires_at.isoformat(),
            },
        )
    return seat, token


def user_for_token(token: str, origin: str) -> User | None:
    """The agent a token stands for, when it is valid from this origin now; None otherwise."""
    if not token or len(token) > 128:
        return None
    seat = (
        SeatToken.objects.select_related("user")
        .filter(
            token_hash=token_hash(token),
            expires_at__gt=timezone.now(),
            revoked_at__isnull=True,
            client__active=True,
        )
        .first()
    )
    if seat is None or seat.origin != origin.lower() or not seat.user.is_active:
        return None
    return seat.user


def record_seat_socket(*, user: User, origin: str, ip: str | None) -> None:
    """The widget's socket opened: audited like a staff login."""
    with audited_action() as write:
        write.record(
            action="seat.connected",
            actor=Actor.staff(user, ip),
            object_type="user",
            object_id=user.pk,
            details={"origin": origin},
        )
