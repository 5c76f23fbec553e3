"""The API's base view: authentication, scopes and the rate limit (DRF), then the handler; a
POST with an `Idempotency-Key` runs inside one audited action with its stored answer, and
every request, refused or not, leaves one `api.request` audit event (docs/api.md "Audit")."""

from __future__ import annotations

import logging
import uuid
from typing import Any, ClassVar, cast

from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api import idempotency
from apps.api.auth import ApiPrincipal, signed_path
from apps.api.errors import error_response
from apps.audit.audited import Actor, AuditedWrite, audited_action
from apps.audit.models import ActorType

logger = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


# Subclasses set `required_scopes` ({method: scopes}) and may set `self.audit_object` (type,
# id) and `self.audit_call_id` while handling, for the access event. (A comment, not a
# docstring: drf-spectacular would print a docstring into every operation's description.)
class ApiView(APIView):
    required_scopes: ClassVar[dict[str, tuple[str, ...]]] = {}
    audit_object: tuple[str, str] | None = None
    audit_call_id: uuid.UUID | None = None

    def principal(self) -> ApiPrincipal:
        user = self.request.user
        assert isinstance(user, ApiPrincipal)  # the permission check let only these through
        return user

    def actor(self) -> Actor:
        return Actor.api_client(self.principal().client.pk, client_ip(self.request._request))

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """DRF's dispatch, with the handler inside the audited write for unsafe methods."""
        self.args = args
        self.kwargs = kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request, *args, **kwargs)
            response: HttpResponseBase
            if (drf_request.method or "").upper() in SAFE_METHODS:
                response = self._handle(drf_request, *args, **kwargs)
                response = self.finalize_response(
                    drf_request, cast(Response, response), *args, **kwargs
                )
                with audited_action() as write:
                    self._record_access(write, drf_request, response)
            else:
                response = self._handle_unsafe(drf_request, *args, **kwargs)
        except Exception as exc:
            response = self._refusal(drf_request, exc)
        self.response = cast(Response, response)  # DRF's attribute; any response at run time
        return response

    def _handle(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        method = (request.method or "").lower()
        handler = getattr(self, method, None) if method in self.http_method_names else None
        if handler is None:
            handler = self.http_method_not_allowed
        try:
            result: HttpResponseBase = handler(request, *args, **kwargs)
        except Exception as exc:
            result = self.handle_exception(exc)
        return result

    def _handle_unsafe(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        principal = self.principal()
        key = idempotency.key_of(request._request.headers.get(idempotency.HEADER))
        print_ = idempotency.fingerprint(
            request.method or "", signed_path(request), request._request.body
        )
        with audited_action() as write:
            stored = (
                idempotency.replay(client=principal.client, key=key, print_=print_) if key else None
            )
            if stored is not None:
                response: HttpResponseBase = stored
            else:
                response = self._handle(request, *args, **kwargs)
                response = self.finalize_response(
                    request, cast(Response, response), *args, **kwargs
                )
                if isinstance(response, Response):
                    response.render()
                if key and idempotency.storable(response.status_code):
                    idempotency.store(
                        client=principal.client, key=key, print_=print_, response=response
                    )
            self._record_access(write, request, response, replayed=stored is not None)
        return response

    def _refusal(self, request: Request, exc: Exception) -> HttpResponseBase:
        try:
            response: HttpResponseBase = self.handle_exception(exc)
        except Exception:
            logger.exception("api request failed: %s %s", request.method, request._request.path)
            response = error_response("internal_error", "internal error", status=500)
        response = self.finalize_response(request, cast(Response, response))
        with audited_action() as write:
            self._record_access(write, request, response)
        return response

    def _record_access(
        self,
        write: AuditedWrite,
        request: Request,
        response: HttpResponseBase,
        *,
        replayed: bool = False,
    ) -> None:
        principal = getattr(request, "_user", None)
        ip = client_ip(request._request)
        if isinstance(principal, ApiPrincipal):
            actor = Actor.api_client(principal.client.pk, ip)
        else:
            actor = Actor(ActorType.API_CLIENT, "", ip)  # not authenticated: who it claimed
        object_type, object_id = self.audit_object or ("api", request._request.path[:64])
        code = getattr(getattr(response, "data", None), "get", lambda _k: None)("error")
        details: dict[str, Any] = {
            "method": request.method,
            "path": request._request.path,
            "query": sorted(request._request.GET.keys()),
            "status": response.status_code,
            "key_id": request._request.headers.get("X-RB-Key-Id", "")[:64],
        }
        if isinstance(code, dict):
            details["code"] = code.get("code")
        if replayed:
            details["idempotent_replay"] = True
        write.record(
            action="api.request",
            actor=actor,
            object_type=object_type,
            object_id=object_id,
            call_id=self.audit_call_id,
            details=details,
        )
