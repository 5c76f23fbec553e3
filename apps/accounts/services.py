"""Agent presence, API-client request signatures, customers' identity, staff authentication
(lockout after failed logins, TOTP second factor)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import unicodedata
from datetime import datetime, timedelta

import pyotp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from apps.accounts.models import (
    ADDRESS_CONTEXT,
    AGENT_SETTABLE,
    ID_NUMBER_CONTEXT,
    PHONE_CONTEXT,
    TOTP_SECRET_CONTEXT,
    AgentProfile,
    ApiClient,
    ApiNonce,
    Customer,
    LoginFailure,
    LoginLock,
    Presence,
    PresenceChange,
    Role,
    StaffTotp,
)
from apps.accounts.pii import (
    CustomerIdentity,
    IdentityValueError,
    mask_id_number,
    mask_phone,
    normalize_address,
    normalize_id_number,
    normalize_phone,
)
from apps.accounts.selectors import (  # find_customer_by_id_number: re-exported for callers
    customer_identity,
    find_customer_by_id_number,  # noqa: F401
)
from apps.audit.audited import SYSTEM, Actor, audited_action, record_event
from apps.audit.models import ActorType
from apps.security.at_rest import SealedText, blind_index, encrypt_field
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
    with audited_action():
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


# --- customers' identity (encrypted at rest) ---------------------------------------------------

_IDENTITY_FIELDS = (
    ("id_number", ID_NUMBER_CONTEXT),
    ("phone", PHONE_CONTEXT),
    ("address", ADDRESS_CONTEXT),
)


def _identity_digest_state(identity: CustomerIdentity) -> dict[str, str]:
    """What the audit event digests: keyed indexes, never the values. A bare SM3 of an ID
    number could be reversed by trying every birth date and sequence (about 10^11 guesses);
    an HMAC under the blind-index key cannot be tried without the key."""
    state = {}
    for name, context in _IDENTITY_FIELDS:
        value = getattr(identity, name)
        purpose = context if name == "id_number" else f"audit.{context}"
        state[name] = blind_index(value, purpose=purpose) if value else ""
    return state


def set_customer_identity(
    *, customer: Customer, id_number: str, phone: str, address: str, actor: Actor
) -> Customer:
    """Validate and store the customer's ID number, phone and address, encrypted.

    "" clears a value. Refused with `bad_id_number` (not 18 characters of GB 11643 with a
    matching ISO 7064 MOD 11-2 check character, or an impossible birth date), `bad_phone`,
    `bad_address`, or `id_number_in_use` (another customer has it); nothing changes then.
    The audit event carries digests and masked values only.
    """
    try:
        clean = CustomerIdentity(
            id_number=normalize_id_number(id_number),
            phone=normalize_phone(phone),
            address=normalize_address(address),
        )
    except IdentityValueError as exc:
        raise ServiceError(exc.code, exc.message) from None
    index = blind_index(clean.id_number, purpose=ID_NUMBER_CONTEXT) if clean.id_number else ""
    with audited_action():
        row = Customer.objects.select_for_update().get(pk=customer.pk)
        if index and Customer.objects.filter(id_number_index=index).exclude(pk=row.pk).exists():
            raise ServiceError(
                "id_number_in_use", "another customer has this ID number", status=409
            )
        old = customer_identity(row, reason="customer.identity:update")
        changed = [
            name for name, _ctx in _IDENTITY_FIELDS if getattr(old, name) != getattr(clean, name)
        ]
        if not changed:
            return row
        owner = str(row.pk)
        for name, context in _IDENTITY_FIELDS:
            if name in changed:
                value = getattr(clean, name)
                token = (
                    encrypt_field(value, owner_type="customer", owner_id=owner, context=context)
                    if value
                    else None
                )
                setattr(row, name, SealedText(token) if token else None)
        row.id_number_index = index
        try:
            with transaction.atomic():
                row.save(update_fields=[*changed, "id_number_index"])
        except IntegrityError:  # the same number saved for another customer at this moment
            raise ServiceError(
                "id_number_in_use", "another customer has this ID number", status=409
            ) from None
        record_event(
            action="customer.identity_set",
            actor=actor,
            object_type="customer",
            object_id=row.pk,
            before=_identity_digest_state(old),
            after=_identity_digest_state(clean),
            details={
                "changed": changed,
                "id_number": mask_id_number(clean.id_number),
                "phone": mask_phone(clean.phone),
            },
        )
    customer.id_number, customer.phone, customer.address = row.id_number, row.phone, row.address
    customer.id_number_index = row.id_number_index
    return row


# --- staff login: lockout after failed attempts ------------------------------------------------

# Lockout counts failures per username (the account), from every address, unless
# LOGIN_LOCKOUT_PER_IP: then per username and address (an attacker cannot lock a colleague
# out from elsewhere, but one with many addresses gets more guesses).
REASON_PASSWORD = "password"  # noqa: S105 - a failure reason, not a secret
REASON_OTP = "otp"


def username_key(username: str) -> str:
    """A keyed digest of the username as typed (NFKC, trimmed, case-folded)."""
    normalized = unicodedata.normalize("NFKC", username or "").strip().casefold()
    return salted_hmac(
        "remotebank.accounts.login-throttle", normalized, algorithm="sha256"
    ).hexdigest()


def clean_ip(ip: str | None) -> str | None:
    """A valid IP address or None (REMOTE_ADDR can be empty or a socket path)."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def _auth_actor(ip: str | None) -> Actor:
    return Actor(ActorType.SYSTEM, "auth", ip)


def _user_by_username(username: str) -> AbstractBaseUser | None:
    model = get_user_model()
    return model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()


def _object_id(user: AbstractBaseUser | None) -> str:
    return str(user.pk) if user is not None else "-"


def login_locked_until(
    *, username: str, ip: str | None, now: datetime | None = None
) -> datetime | None:
    """When the lock on this username (from this address) ends, or None when not locked."""
    now = now or timezone.now()
    scopes = [""] + ([ip] if (ip := clean_ip(ip)) else [])
    lock = (
        LoginLock.objects.filter(
            username_key=username_key(username), ip__in=scopes, locked_until__gt=now
        )
        .order_by("-locked_until")
        .first()
    )
    return lock.locked_until if lock else None


def _set_lock(key: str, ip: str, until: datetime) -> None:
    if LoginLock.objects.filter(username_key=key, ip=ip).update(locked_until=until):
        return
    try:
        with transaction.atomic():
            LoginLock.objects.create(username_key=key, ip=ip, locked_until=until)
    except IntegrityError:  # another process locked it at the same moment
        LoginLock.objects.filter(username_key=key, ip=ip).update(locked_until=until)


def record_login_failure(
    *,
    username: str,
    ip: str | None,
    reason: str = REASON_PASSWORD,
    user: AbstractBaseUser | None = None,
) -> datetime | None:
    """Count a failed password or second-factor step; lock the username when it reaches
    LOGIN_FAILURE_LIMIT within LOGIN_FAILURE_WINDOW_SECONDS. Returns the lock's end or None.

    Unknown usernames are counted and locked alike, so the answers do not tell whether an
    account exists. The audit events hold no password, code or clear username.
    """
    ip = clean_ip(ip)
    key = username_key(username)
    user = user if user is not None else _user_by_username(username)
    now = timezone.now()
    since = now - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    scope_ip = (ip or "") if settings.LOGIN_LOCKOUT_PER_IP else ""
    limit = settings.LOGIN_FAILURE_LIMIT
    with audited_action():
        LoginFailure.objects.filter(at__lt=since).delete()  # outside every window now
        LoginLock.objects.filter(locked_until__lte=now).delete()
        LoginFailure.objects.create(username_key=key, ip=ip, at=now, reason=reason)
        failures = LoginFailure.objects.filter(username_key=key, at__gte=since)
        if scope_ip:
            failures = failures.filter(ip=scope_ip)
        count = failures.count()
        details = {"failures": count, "limit": limit, "known_user": user is not None}
        record_event(
            action="auth.otp_failed" if reason == REASON_OTP else "auth.login_failed",
            actor=_auth_actor(ip),
            object_type="user",
            object_id=_object_id(user),
            details={**details, "reason": reason, "username_key": key[:16]},
        )
        if count < limit:
            return None
        until = now + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
        _set_lock(key, scope_ip, until)
        failures.delete()  # after the lock, a fresh count
        record_event(
            action="auth.login_locked",
            actor=_auth_actor(ip),
            object_type="user",
            object_id=_object_id(user),
            details={
                **details,
                "until": until.isoformat(),
                "scope": "address" if scope_ip else "account",
                "username_key": key[:16],
            },
        )
    logger.warning("staff login locked (%s) from %s", key[:16], ip)
    return until


def record_login_refused(*, username: str, ip: str | None, until: datetime) -> None:
    """An attempt while locked: refused before any password check, and audited."""
    ip = clean_ip(ip)
    user = _user_by_username(username)
    with audited_action():
        record_event(
            action="auth.login_refused",
            actor=_auth_actor(ip),
            object_type="user",
            object_id=_object_id(user),
            details={
                "reason": "locked",
                "until": until.isoformat(),
                "known_user": user is not None,
                "username_key": username_key(username)[:16],
            },
        )


def record_login_success(*, user: AbstractBaseUser, ip: str | None, second_factor: bool) -> None:
    """The user is fully authenticated (password and, when enrolled, the code): reset the count."""
    ip = clean_ip(ip)
    key = username_key(user.get_username())
    with audited_action():
        failures = LoginFailure.objects.filter(username_key=key)
        if settings.LOGIN_LOCKOUT_PER_IP:
            failures = failures.filter(ip=ip)
        failures.delete()
        record_event(
            action="auth.login",
            actor=Actor.staff(user, ip),
            object_type="user",
            object_id=user.pk,
            details={"second_factor": second_factor},
        )


def unlock_login(*, username: str, actor: Actor) -> int:
    """Lift every lock on the username and forget its failures; returns the locks lifted."""
    key = username_key(username)
    with audited_action():
        lifted, _ = LoginLock.objects.filter(username_key=key).delete()
        LoginFailure.objects.filter(username_key=key).delete()
        record_event(
            action="auth.login_unlocked",
            actor=actor,
            object_type="user",
            object_id=_object_id(_user_by_username(username)),
            details={"locks": lifted, "username_key": key[:16]},
        )
    return lifted


# --- staff login: TOTP second factor (RFC 6238) ------------------------------------------------

TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
TOTP_VALID_WINDOW = 1  # steps either side accepted, for clock drift (RFC 6238 §5.2)
_CODE_RE = re.compile(r"\d{6}")


def totp_device(user: AbstractBaseUser) -> StaffTotp | None:
    return StaffTotp.objects.filter(user=user).first()


def confirmed_totp(user: AbstractBaseUser) -> StaffTotp | None:
    return StaffTotp.objects.filter(user=user, confirmed_at__isnull=False).first()


def _totp_secret(device: StaffTotp, *, reason: str) -> str:
    return device.secret.decrypt(reason=reason, context=TOTP_SECRET_CONTEXT)


def totp_uri(*, user: AbstractBaseUser, secret: str) -> str:
    """otpauth:// URI for authenticator apps (Key Uri Format: issuer, account, SHA1, 6, 30 s)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS).provisioning_uri(
        name=user.get_username(), issuer_name=settings.STAFF_TOTP_ISSUER
    )


def start_totp_enrolment(*, user: AbstractBaseUser, fresh: bool = False) -> tuple[StaffTotp, str]:
    """The user's unconfirmed device and its secret (to show once), created when missing or
    when `fresh`. Refused with `otp_already_enrolled` when a confirmed device exists."""
    with audited_action():
        device = StaffTotp.objects.select_for_update().filter(user=user).first()
        if device is not None and device.confirmed:
            raise ServiceError("otp_already_enrolled", "a second factor is already enrolled")
        if device is not None and not fresh:
            return device, _totp_secret(device, reason="totp:enrol")
        secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
        token = SealedText(
            encrypt_field(
                secret, owner_type="user", owner_id=str(user.pk), context=TOTP_SECRET_CONTEXT
            )
        )
        if device is None:
            device = StaffTotp.objects.create(user=user, secret=token)
        else:
            device.secret, device.created_at, device.last_used_step = token, timezone.now(), None
            device.save(update_fields=["secret", "created_at", "last_used_step"])
        record_event(
            action="auth.otp_enrol_started",
            actor=Actor.staff(user),
            object_type="user",
            object_id=user.pk,
        )
    return device, secret


def _normalize_code(code: object) -> str:
    if not isinstance(code, str):
        return ""
    return "".join(unicodedata.normalize("NFKC", code).split())


def _accept_code(device: StaffTotp, code: str, *, reason: str, now: datetime | None) -> None:
    """Check the code against the device; consume its time step. Raises otp_invalid or
    otp_replayed (a code, or an older one, after a newer step was used)."""
    code = _normalize_code(code)
    if not _CODE_RE.fullmatch(code):
        raise ServiceError("otp_invalid", "the code is 6 digits")
    totp = pyotp.TOTP(_totp_secret(device, reason=reason), digits=TOTP_DIGITS,
                      interval=TOTP_STEP_SECONDS)  # fmt: skip
    current = totp.timecode(now or timezone.now())
    step = next(
        (
            s
            for s in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1)
            if hmac.compare_digest(totp.generate_otp(s), code)
        ),
        None,
    )
    if step is None:
        raise ServiceError("otp_invalid", "wrong code")
    # A conditional UPDATE, so two processes cannot both accept the same step.
    accepted = (
        StaffTotp.objects.filter(pk=device.pk)
        .filter(Q(last_used_step__isnull=True) | Q(last_used_step__lt=step))
        .update(last_used_step=step)
    )
    if not accepted:
        raise ServiceError("otp_replayed", "this code was already used")


def confirm_totp_enrolment(
    *, user: AbstractBaseUser, code: str, ip: str | None = None, now: datetime | None = None
) -> StaffTotp:
    """The user proves the authenticator has the secret: the device becomes required at login."""
    ip = clean_ip(ip)
    device = StaffTotp.objects.filter(user=user).first()
    if device is None or device.confirmed:
        raise ServiceError("otp_not_pending", "no enrolment to confirm")
    try:
        _accept_code(device, code, reason="totp:enrol", now=now)
    except ServiceError as exc:
        with audited_action():
            record_event(
                action="auth.otp_enrol_failed",
                actor=Actor.staff(user, ip),
                object_type="user",
                object_id=user.pk,
                details={"reason": exc.code},
            )
        raise
    with audited_action():
        device.confirmed_at = timezone.now()
        device.save(update_fields=["confirmed_at"])
        record_event(
            action="auth.otp_enrolled",
            actor=Actor.staff(user, ip),
            object_type="user",
            object_id=user.pk,
        )
    return device


def verify_totp_login(
    *, user: AbstractBaseUser, code: str, ip: str | None = None, now: datetime | None = None
) -> None:
    """The second login step. A wrong or replayed code counts as a failed login (lockout) and
    is audited; a locked account is refused with `account_locked` before the code is checked."""
    ip = clean_ip(ip)
    username = user.get_username()
    if login_locked_until(username=username, ip=ip):
        raise ServiceError("account_locked", "too many failed attempts", status=403)
    device = confirmed_totp(user)
    if device is None:
        raise ServiceError("otp_not_enrolled", "no second factor enrolled")
    try:
        _accept_code(device, code, reason="totp:login", now=now)
    except ServiceError as exc:
        locked = record_login_failure(username=username, ip=ip, reason=REASON_OTP, user=user)
        if locked:
            raise ServiceError("account_locked", "too many failed attempts", status=403) from None
        raise exc from None


def disable_totp(*, user: AbstractBaseUser, code: str, ip: str | None = None) -> None:
    """The user removes their own second factor with a current code (not when required)."""
    if settings.STAFF_TOTP_REQUIRED:
        raise ServiceError("otp_required", "a second factor is required for staff")
    device = confirmed_totp(user)
    if device is None:
        raise ServiceError("otp_not_enrolled", "no second factor enrolled")
    try:
        _accept_code(device, code, reason="totp:disable", now=None)
    except ServiceError as exc:
        with audited_action():
            record_event(
                action="auth.otp_disable_failed",
                actor=Actor.staff(user, clean_ip(ip)),
                object_type="user",
                object_id=user.pk,
                details={"reason": exc.code},
            )
        raise
    reset_totp(user=user, actor=Actor.staff(user, clean_ip(ip)))


def reset_totp(*, user: AbstractBaseUser, actor: Actor) -> bool:
    """Remove the user's device (lost phone: an administrator resets it). True if one existed."""
    with audited_action():
        deleted, _ = StaffTotp.objects.filter(user=user).delete()
        if deleted:
            record_event(
                action="auth.otp_reset", actor=actor, object_type="user", object_id=user.pk
            )
    return bool(deleted)
