"""The counter scenarios: one module each (`SCENARIO`), registered in `BankingConfig.ready()`.

`get(code)` returns the registered Scenario or None; `require(code)` raises
ServiceError("unknown_scenario"); `all_scenarios()` lists them in registration order (the order
the workstation offers them). apps.qc reads `.requires_recording` and `.required_key_points`.
A ninth scenario is one new module here and one line in `BankingConfig.ready()`.
"""

from __future__ import annotations

import threading

from apps.banking.scenarios.base import Scenario
from remotebank.errors import ServiceError

_REGISTRY: dict[str, Scenario] = {}
_lock = threading.Lock()


def register(scenario: Scenario) -> Scenario:
    """Add (or, under the same code, replace) a scenario."""
    with _lock:
        _REGISTRY[scenario.code] = scenario
    return scenario


def get(code: object) -> Scenario | None:
    return _REGISTRY.get(code) if isinstance(code, str) else None


def require(code: object) -> Scenario:
    scenario = get(code)
    if scenario is None:
        raise ServiceError("unknown_scenario", "no such business scenario")
    return scenario


def all_scenarios() -> list[Scenario]:
    return list(_REGISTRY.values())
