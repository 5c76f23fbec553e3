"""Per-client scopes: a view names the scopes it needs (`required_scopes`, one per method
where they differ); a client without them gets 403 `scope_denied`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.api.auth import ApiPrincipal
from apps.api.errors import ApiError

if TYPE_CHECKING:
    from rest_framework.views import APIView


def required_scopes(view: APIView, method: str) -> frozenset[str]:
    needed = getattr(view, "required_scopes", {})
    if isinstance(needed, dict):
        return frozenset(needed.get(method.upper(), ()))
    return frozenset(needed)


class HasScopes(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        missing = required_scopes(view, request.method or "") - principal.scopes
        if missing:
            raise ApiError("scope_denied", f"needs scope {', '.join(sorted(missing))}", status=403)
        return True
