"""Webhook endpoints of the calling client, their deliveries with every attempt, replays."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import checks, scopes
from apps.api import serializers as s
from apps.api.actions import webhooks as actions
from apps.api.auth import ApiPrincipal
from apps.api.models import WebhookDelivery, WebhookEndpoint
from apps.api.signing import endpoint_secret
from apps.api.views.base import ApiView
from apps.api.views.schema import documented, not_found
from apps.calls.models import Call

MANAGE = (scopes.WEBHOOKS_MANAGE,)


def endpoint_out(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    data = dict(s.WebhookEndpointOut(endpoint).data)
    if with_secret:
        data["secret"] = endpoint_secret(endpoint)
    return data


def visible_messages(principal: ApiPrincipal) -> Q:
    """Messages a client may have replayed: of its calls (or all), and checkpoints."""
    if principal.all_calls:
        return Q()
    own_calls = Q(call_id__in=_own_call_ids(principal))
    return own_calls | Q(call_id__isnull=True)


def _own_call_ids(principal: ApiPrincipal) -> QuerySet[Call, uuid.UUID]:
    return Call.objects.filter(ticket__client=principal.client).values_list("pk", flat=True)


class WebhookEndpoints(ApiView):
    required_scopes = {"GET": MANAGE, "POST": MANAGE}

    @documented(
        responses={200: s.WebhookEndpointList},
        summary="The client's webhook endpoints",
        operation_id="list_webhook_endpoints",
    )
    def get(self, request: Request) -> Response:
        rows = WebhookEndpoint.objects.filter(client=self.principal().client)
        return Response({"results": [endpoint_out(e) for e in rows]})

    @documented(
        request=s.WebhookEndpointIn,
        responses={201: s.WebhookEndpointSecretOut},
        post=True,
        summary="Register an endpoint (the answer carries its signing secret, once)",
        operation_id="create_webhook_endpoint",
    )
    def post(self, request: Request) -> Response:
        fields = checks.validated(s.WebhookEndpointIn, checks.body_of(request))
        endpoint = actions.create_endpoint(
            client=self.principal().client,
            url=checks.webhook_url(fields["url"]),
            events=fields["events"],
            signing=fields["signing"],
            description=fields.get("description", ""),
            active=fields["active"],
            actor=self.actor(),
        )
        self.audit_object = ("webhook_endpoint", str(endpoint.pk))
        return Response(endpoint_out(endpoint, with_secret=True), status=201)


class WebhookEndpointDetail(ApiView):
    required_scopes = {"GET": MANAGE, "PATCH": MANAGE, "DELETE": MANAGE}

    @documented(
        responses={200: s.WebhookEndpointOut, **not_found("endpoint")},
        summary="One endpoint",
        operation_id="get_webhook_endpoint",
    )
    def get(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        self.audit_object = ("webhook_endpoint", str(endpoint_id))
        return Response(endpoint_out(actions.endpoint_of(self.principal().client, endpoint_id)))

    @documented(
        request=s.WebhookEndpointPatch,
        responses={200: s.WebhookEndpointOut, **not_found("endpoint")},
        summary="Change an endpoint (URL, events, signing, active)",
        operation_id="update_webhook_endpoint",
    )
    def patch(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        self.audit_object = ("webhook_endpoint", str(endpoint_id))
        changes = checks.validated(s.WebhookEndpointPatch, checks.body_of(request))
        if "url" in changes:
            changes["url"] = checks.webhook_url(changes["url"])
        endpoint = actions.update_endpoint(
            client=self.principal().client,
            endpoint_id=endpoint_id,
            changes=changes,
            actor=self.actor(),
        )
        return Response(endpoint_out(endpoint))

    @documented(
        responses={204: None, **not_found("endpoint")},
        summary="Remove an endpoint (its messages stay in the outbox)",
        operation_id="delete_webhook_endpoint",
    )
    def delete(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        self.audit_object = ("webhook_endpoint", str(endpoint_id))
        actions.delete_endpoint(
            client=self.principal().client, endpoint_id=endpoint_id, actor=self.actor()
        )
        return Response(status=204)


class WebhookSecretRotation(ApiView):
    required_scopes = {"POST": MANAGE}

    @documented(
        request=None,
        responses={200: s.WebhookEndpointSecretOut, **not_found("endpoint")},
        post=True,
        summary="A new signing secret (the old one stops at once)",
        operation_id="rotate_webhook_secret",
    )
    def post(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        self.audit_object = ("webhook_endpoint", str(endpoint_id))
        endpoint = actions.rotate_secret(
            client=self.principal().client, endpoint_id=endpoint_id, actor=self.actor()
        )
        return Response(endpoint_out(endpoint, with_secret=True))


class WebhookDeliveries(ApiView):
    required_scopes = {"GET": MANAGE}

    @documented(
        responses={200: s.DeliveryList, **not_found("endpoint")},
        parameters=[
            OpenApiParameter(
                "state",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=["pending", "succeeded", "failed"],
            ),
            OpenApiParameter("limit", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("offset", OpenApiTypes.INT, OpenApiParameter.QUERY),
        ],
        summary="An endpoint's deliveries, newest first, with every attempt",
        operation_id="list_webhook_deliveries",
    )
    def get(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        self.audit_object = ("webhook_endpoint", str(endpoint_id))
        endpoint = actions.endpoint_of(self.principal().client, endpoint_id)
        query = checks.validated(checks.DeliveryQuery, request.query_params, query=True)
        page = checks.paging(query)
        rows = (
            WebhookDelivery.objects.filter(endpoint=endpoint)
            .select_related("message")
            .prefetch_related("tries")
            .order_by("-message_id")
        )
        if query.get("state"):
            rows = rows.filter(state=query["state"])
        chunk = list(rows[page.offset : page.offset + page.limit + 1])
        more = len(chunk) > page.limit
        return Response(
            {
                "results": s.DeliveryOut(chunk[: page.limit], many=True).data,
                "next_offset": page.offset + page.limit if more else None,
            }
        )


class WebhookReplay(ApiView):
    required_scopes = {"POST": MANAGE}

    @documented(
        request=s.ReplayIn,
        responses={
            202: OpenApiResponse(s.ReplayOut, description="Queued again."),
            **not_found("endpoint"),
        },
        post=True,
        summary="Send messages again: by id, or the subscribed events in a time window",
        operation_id="replay_webhooks",
    )
    def post(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        self.audit_object = ("webhook_endpoint", str(endpoint_id))
        principal = self.principal()
        endpoint = actions.endpoint_of(principal.client, endpoint_id)
        fields = checks.validated(s.ReplayIn, checks.body_of(request))
        count = actions.replay(
            endpoint=endpoint,
            msg_ids=fields.get("msg_ids"),
            since=fields.get("since"),
            until=fields.get("until"),
            visible=visible_messages(principal),
            actor=self.actor(),
        )
        return Response({"replayed": count}, status=202)
