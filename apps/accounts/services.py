"""Agent presence, API-client request signatures."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import (
    AGENT_SETTABLE,
    AgentProfile,
    ApiClient,
    ApiNonce,
    Presence,
    PresenceChange,
    Role,
)
from apps.audit.services import SYSTEM, Actor, record_event
from remotebank.errors import Forbidden, ServiceError

logger = logging.getLogger(__name__)


def has_role(user: AbstractBaseUser, *roles: str) -> bool:
    if not user.is_authenticated:
        return False
    return user.groups.filter(name__in=roles).exists()


def agent_profile_for(user: AbstractBaseUser) -> AgentProfile:
    if not user.is_authenticated:
        raise Forbidden("not_authenticated", "login required")
    try:
        profile = AgentProfile.objects.select_related("user").get(user=user)
    except AgentProfile.DoesNotExist:
        raise Forbidden("not_an_agent", "this account is not an agent") from None
    if not has_role(user, Role.AGENT):
        raise Forbidden("not_an_agent", "this account is not an agent")
    return profile


def change_presence(
    *, agent: AgentProfile, to: str, reason: str = "", actor: Actor = SYSTEM
) -> AgentProfile:
    """Move an agent's presence; the caller holds the agent row locked inside a transaction."""
    if agent.presence == to:
        return agent
    if not agent.can_move_to(to):
        raise ServiceError("bad_presence_transition", f"cannot go from {agent.presence} to {to}")
    now = timezone.now()
    PresenceChange.objects.create(
        agent=agent, from_state=agent.presence, to_state=to, at=now, reason=reason
    )
    before = {"presence": agent.presence}
    agent.presence = to
    agent.presence_since = now
    if to == Presence.READY:
        agent.idle_since = now
    agent.save(update_fields=["presence", "presence_since", "idle_since"])
    record_event(
        action="agent.presence",
        actor=actor,
        object_type="agent",
        object_id=agent.pk,
        before=before,
        after={"presence": to},
        details={"reason": reason},
    )
    from apps.calls.events import agent_group, push

    push(agent_group(agent.user_id), {"type": "presence", "state": to, "reason": reason})
    return agent


def set_presence_by_agent(*, user: AbstractBaseUser, state: str, ip: str | None = None) -> str:
    """The agent chooses ready, break or offline. Entering ready may ring the agent at once."""
    if state not in AGENT_SETTABLE:
        raise ServiceError("bad_presence", f"agents may set {sorted(AGENT_SETTABLE)}")
    profile = agent_profile_for(user)
    with transaction.atomic():
        agent = AgentProfile.objects.select_for_update().get(pk=profile.pk)
        change_presence(agent=agent, to=state, reason="agent", actor=Actor.staff(user, ip))
    if state == Presence.READY:
        from apps.calls.services import dispatch_on_commit

        dispatch_on_commit()
    return state


# --- API client request signatures ------------------------------------------------------------

SIGNATURE_ALGORITHMS = {"HMAC-SM3": "sm3", "HMAC-SHA256": "sha256"}


def client_secret(key_id: str) -> str:
    """The client's HMAC secret, derived from the server's secret: nothing secret is stored."""
    master = settings.API_CLIENT_MASTER_SECRET.encode()
    return hmac.new(master, f"api-client:{key_id}".encode(), hashlib.sha256).hexdigest()


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, nonce, body_hash]).encode()


def sign_request(
    *,
    key_id: str,
    secret: str,
    method: str,
    path: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    algorithm: str = "HMAC-SM3",
) -> str:
    digest = SIGNATURE_ALGORITHMS[algorithm]
    return hmac.new(
        secret.encode(), string_to_sign(method, path, timestamp, nonce, body), digest
    ).hexdigest()


def verify_signed_request(
    *,
    key_id: str,
    timestamp: str,
    nonce: str,
    signature: str,
    algorithm: str,
    method: str,
    path: str,
    body: bytes,
) -> ApiClient:
    """Authenticate a mobile-banking server's request; refuse stale, forged or replayed ones."""
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise ServiceError("bad_signature_algorithm", "unsupported signature algorithm", status=401)
    if not (key_id and timestamp and nonce and signature) or len(nonce) > 64:
        raise ServiceError("missing_signature", "signature headers missing", status=401)
    client = ApiClient.objects.filter(key_id=key_id, active=True).first()
    if client is None:
        raise ServiceError("unknown_client", "unknown or inactive client", status=401)
    try:
        ts = int(timestamp)
    except ValueError:
        raise ServiceError("bad_timestamp", "timestamp must be unix seconds", status=401) from None
    now = timezone.now()
    if abs(now.timestamp() - ts) > settings.API_SIGNATURE_MAX_SKEW_SECONDS:
        raise ServiceError("stale_request", "timestamp outside the allowed window", status=401)
    expected = sign_request(
        key_id=key_id,
        secret=client_secret(key_id),
        method=method,
        path=path,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
        algorithm=algorithm,
    )
    if not hmac.compare_digest(expected, signature.lower()):
        raise ServiceError("bad_signature", "signature does not match", status=401)
    try:
        with transaction.atomic():
            ApiNonce.objects.create(client=client, nonce=nonce, seen_at=now)
    except IntegrityError:
        raise ServiceError("replayed_request", "nonce already used", status=401) from None
    # Nonces older than the window cannot be replayed anyway (the timestamp check refuses them).
    ApiNonce.objects.filter(
        seen_at__lt=now - timedelta(seconds=2 * settings.API_SIGNATURE_MAX_SKEW_SECONDS)
    ).delete()
    return client
