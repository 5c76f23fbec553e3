"""公安联网核查 (the bank-external online ID check): name + ID number against the national
citizen database. `get_online_id_check()` returns settings.BANKING_ONLINE_ID_CHECK (a dotted
path), by default `SandboxOnlineIdCheck`, a SANDBOX that answers from the sandbox core's own
customer table; a bank plugs in its adapter to the real service.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.banking.models import SandboxCustomer
from apps.security.at_rest import blind_index


@dataclass(frozen=True)
class OnlineIdResult:
    consistent: bool  # name and number belong together
    code: str  # "consistent" | "name_mismatch" | "not_found" | "expired"
    source: str


class OnlineIdCheck(abc.ABC):
    @abc.abstractmethod
    def check(self, *, name: str, id_number: str) -> OnlineIdResult: ...


class SandboxOnlineIdCheck(OnlineIdCheck):
    """SANDBOX ONLY: not the real 公安 service; consults the sandbox core's customers."""

    source = "sandbox-online-id"

    def check(self, *, name: str, id_number: str) -> OnlineIdResult:
        row = SandboxCustomer.objects.filter(
            id_number_index=blind_index(id_number, purpose="sandbox.id_number")
        ).first()
        if row is None:
            return OnlineIdResult(False, "not_found", self.source)
        if row.name != name:
            return OnlineIdResult(False, "name_mismatch", self.source)
        if row.id_expiry < timezone.localdate():
            return OnlineIdResult(False, "expired", self.source)
        return OnlineIdResult(True, "consistent", self.source)


def get_online_id_check() -> OnlineIdCheck:
    path = getattr(
        settings, "BANKING_ONLINE_ID_CHECK", "apps.banking.gateway.online_id.SandboxOnlineIdCheck"
    )
    return import_string(path)()
