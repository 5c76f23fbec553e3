"""The OpenAPI 3.1 schema validates, and every documented operation answers as documented:
each path and method is called with a signed client over a small world of rows, and the
status must be one the schema lists and the body must validate against its schema."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from apps.api.models import ClientPolicy
from apps.audit.audited import SYSTEM
from apps.banking.models import Transaction
from apps.calls.actions.ending import end_call
from apps.calls.actions.queue import join_queue
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.qc.models import QcFinding, QcReport
from apps.recordings.models import KeyPoint, Recording

pytestmark = pytest.mark.django_db


@pytest.fixture
def spec() -> dict[str, Any]:
    response = Client().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_generator_reports_no_warning(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
    assert (tmp_path / "s.yaml").read_text().startswith("openapi: 3.1")


def test_the_schema_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    assert "/api/v1/entry-tickets" in spec["paths"]
    assert len(spec["paths"]) >= 17


@pytest.fixture
def world(api_client_obj, agent) -> dict[str, str]:
    """A call with a transaction, a recording, a QC report and a key point."""
    ticket, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    redeem_entry_ticket(token=token)
    call = join_queue(ticket_id=ticket.pk, location=None)
    end_call(call_id=call.pk, reason="customer_cancelled", actor=SYSTEM)
    tx = Transaction.objects.create(
        call=call,
        scenario="debit_pin_reset",
        state="completed",
        created_by=agent,
        customer=call.customer,
        summary={"account": "6222 **** 0001"},
        result_code="ok",
    )
    recording = Recording.objects.create(
        call=call,
        state="ready",
        composed_key="calls/x/composed-01.mp4",
        composed_sm3="a" * 64,
        composed_sha256="b" * 64,
        composed_size=1234,
        duration_seconds=12.5,
        composed_at=timezone.now(),
    )
    report = QcReport.objects.create(
        recording=recording, call=call, state="done", verdict="pass", score=95
    )
    QcFinding.objects.create(report=report, category="media", code="silence", severity="info")
    KeyPoint.objects.create(call=call, recording=recording, at=timezone.now(), code="free")
    ClientPolicy.objects.filter(client=api_client_obj).update(
        widget_origins=["https://crm.example"]
    )
    return {
        "call_id": str(call.pk),
        "transaction_id": str(tx.pk),
        "recording_id": str(recording.pk),
        "report_id": str(report.pk),
    }


BODIES: dict[str, Any] = {
    "create_entry_ticket": {"customer_reference": "DEMO0002", "business_type": "debit_pin_reset"},
    "create_download_request": {"reason": "客户投诉复核，需调阅录像"},
    "create_webhook_endpoint": {"url": "https://hooks.example/rb", "events": ["call.ended"]},
    "update_webhook_endpoint": {"events": ["call.ended", "qc.completed"]},
    "replay_webhooks": {"since": "2020-01-01T00:00:00Z"},
    "create_seat_token": {"employee_no": "A1001", "origin": "https://crm.example"},
}
# Operations whose answer depends on an id made by another operation first.
ORDER = ["create_webhook_endpoint", "create_download_request"]


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "patch", "delete")
    ]

    def rank(entry: tuple[str, str, dict[str, Any]]) -> tuple[int, int]:
        op_id = entry[2]["operationId"]
        first = ORDER.index(op_id) if op_id in ORDER else len(ORDER)
        return (first, 1 if entry[1] == "delete" else 0)

    return sorted(ops, key=rank)


def check_against(spec: dict[str, Any], op: dict[str, Any], response: Any) -> None:
    status = str(response.status_code)
    documented = op["responses"]
    assert status in documented, (op["operationId"], status, response.content[:300])
    content = documented[status].get("content")
    if not content:
        assert not response.content, op["operationId"]
        return
    ctype = response["Content-Type"].split(";")[0]
    assert ctype in content, (op["operationId"], ctype, list(content))
    schema = content[ctype].get("schema", {})
    if ctype != "application/json":
        return
    root = {**schema, "components": spec["components"]}
    errors = sorted(Draft202012Validator(root).iter_errors(response.json()), key=str)
    assert not errors, (op["operationId"], [e.message for e in errors[:3]])


def test_every_documented_operation_answers_as_documented(spec, signed, world, agent):
    ids = dict(world)
    seen = set()
    for path, method, op in operations(spec):
        op_id = op["operationId"]
        url = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)
        if any(p["in"] == "query" and p.get("required") for p in op.get("parameters", [])):
            url += f"?call_id={ids['call_id']}"
        response = signed(method.upper(), url, BODIES.get(op_id), idem=f"k-{op_id}")
        check_against(spec, op, response)
        if op_id == "create_webhook_endpoint":
            assert response.status_code == 201
            ids["endpoint_id"] = response.json()["endpoint_id"]
        if op_id == "create_download_request":
            assert response.status_code == 201, response.content
            ids["request_id"] = response.json()["download_request_id"]
        if op_id.startswith("get_") or op_id.startswith("list_"):
            if op_id not in ("get_transaction_receipt",):
                assert response.status_code == 200, (op_id, response.content[:300])
        seen.add(op_id)
        # An unknown id answers the documented 404 with the error shape.
        if "{" in path and method == "get":
            missing = re.sub(r"\{(\w+)\}", lambda m: str(uuid.uuid4()), path)
            if "?" in url:
                missing += "?" + url.split("?", 1)[1]
            check_against(spec, op, signed("GET", missing))
    assert len(seen) == sum(
        1
        for item in spec["paths"].values()
        for m in item
        if m in ("get", "post", "patch", "delete")
    )


def test_the_committed_api_reference_is_the_schemas():
    """docs/api-reference.md is generated (`manage.py api_reference`): it must not go stale."""
    from pathlib import Path

    from django.conf import settings

    from apps.api.reference import markdown

    committed = (Path(settings.BASE_DIR) / "docs" / "api-reference.md").read_text()
    assert committed == markdown(), "run `manage.py api_reference` and commit docs/api-reference.md"
