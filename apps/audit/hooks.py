"""Hooks other apps register with, so the audit app checks and exports what it does not own.

Register from your app's `AppConfig.ready()`:

    from apps.audit.hooks import register_bundle_contributor, register_digest_verifier

    register_digest_verifier(verify_recording_digests, name="recordings")
    register_bundle_contributor(recording_digests_for_call, name="recordings")

A digest verifier takes no argument and yields a `DigestFailure` for every stored object whose
digest no longer matches (e.g. a recording file whose SM3 differs from the digest written in
its audit event); `verify_evidence` runs them all. A bundle contributor takes the `Call` and
returns a list of JSON-serializable dicts put into the bundle under `contributions[name]`; each
item that names a digest should say which audit event anchors it:

    {"kind": "recording", "id": "...", "sm3": "<hex>", "anchor_seq": 1234, ...}

The standalone verifier checks that the anchoring event is in the bundle and carries that
digest (as its `after_digest` or as a value in its `details`).

An event listener takes each `AuditEvent` as `record_event` appends it, inside the same
transaction and before the commit: what it writes commits or rolls back with the change it
describes (apps.api writes its webhook outbox this way). It must be quick, must not open
another audited action, and an exception from it undoes the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DigestFailure:
    object_type: str
    object_id: str
    reason: str


DigestVerifier = Callable[[], Iterable[DigestFailure]]
BundleContributor = Callable[[Any], list[dict[str, Any]]]
EventListener = Callable[[Any], None]

_digest_verifiers: dict[str, DigestVerifier] = {}
_bundle_contributors: dict[str, BundleContributor] = {}
_event_listeners: dict[str, EventListener] = {}


def _name_of(fn: Callable[..., Any], name: str | None) -> str:
    return name or f"{fn.__module__}.{fn.__qualname__}"


def register_digest_verifier(fn: DigestVerifier, *, name: str | None = None) -> DigestVerifier:
    """Add `fn` to what `verify_evidence` runs. Registering the same name again replaces it."""
    _digest_verifiers[_name_of(fn, name)] = fn
    return fn


def register_bundle_contributor(
    fn: BundleContributor, *, name: str | None = None
) -> BundleContributor:
    _bundle_contributors[_name_of(fn, name)] = fn
    return fn


def register_event_listener(fn: EventListener, *, name: str | None = None) -> EventListener:
    """Call `fn(event)` for every audit event appended from now on (see the module doc)."""
    _event_listeners[_name_of(fn, name)] = fn
    return fn


def unregister(name: str) -> None:
    _digest_verifiers.pop(name, None)
    _bundle_contributors.pop(name, None)
    _event_listeners.pop(name, None)


def event_listeners() -> tuple[EventListener, ...]:
    return tuple(_event_listeners.values())


def digest_verifiers() -> dict[str, DigestVerifier]:
    return dict(_digest_verifiers)


def bundle_contributors() -> dict[str, BundleContributor]:
    return dict(_bundle_contributors)


# --- names of actions for people (the audit log page) -------------------------------------------
#: An app's names for the audit actions it records: action -> name (lazy, in the active
#: language), or a function of the action returning its name or None (actions built from a
#: state, e.g. ``call.connected``).
ActionNames = Mapping[str, Any] | Callable[[str], Any]
_ACTION_NAMES: dict[str, ActionNames] = {}


def register_action_names(names: ActionNames, *, name: str) -> None:
    """Register an app's names for its audit actions (from its `AppConfig.ready()`)."""
    _ACTION_NAMES[name] = names


def action_name(action: str) -> str:
    """The action's name in the active language; "" when no app names it."""
    for names in _ACTION_NAMES.values():
        found = names(action) if callable(names) else names.get(action)
        if found:
            return str(found)
    return ""
