"""The auditor's read-only audit log page: who may open it, what it shows, and that a tampered
entry is shown as broken (issue 13 item 12)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.audit.tests.conftest import append, raw_sql

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def test_only_auditors_may_read_the_log(auditor, supervisor, agent, outsider):
    url = reverse("audit-log")
    assert Client().get(url).status_code == 302  # to the sign-in page
    for user in (supervisor, agent, outsider):
        response = signed_in(user).get(url)
        assert response.status_code == 403, user
        assert "审计日志只供审计人员查看" in response.content.decode()
    assert signed_in(auditor).get(url).status_code == 200


def test_the_log_is_read_only(auditor):
    append(2)
    before = AuditEvent.objects.count()
    response = signed_in(auditor).post(reverse("audit-log"), {"action": "test.changed"})
    assert response.status_code == 405
    assert AuditEvent.objects.count() == before


def test_auditor_sees_entries_with_their_checks_and_a_verified_chain(auditor, checkpoint_now):
    events = append(3)
    checkpoint_now()
    client = signed_in(auditor)
    page = client.get(reverse("audit-log"), {"action": "test.changed"}).content.decode()
    for event in events:
        assert f'data-seq="{event.seq}" data-ok="1"' in page
    assert "✓ 一致" in page and "✗" not in page
    assert ">只读<" in page

    verified = client.get(reverse("audit-log"), {"verify": "1"}).content.decode()
    assert 'id="audit-status" role="status"' in verified
    assert "整条证据链校验通过" in verified


@pytest.mark.django_db(transaction=True)
def test_a_tampered_entry_is_shown_broken_and_the_chain_fails(auditor):
    events = append(3)
    target = events[1]
    raw_sql(
        "UPDATE audit_auditevent SET details = %s WHERE seq = %s",
        [json.dumps({"i": 99}), target.seq],
    )
    client = signed_in(auditor)
    page = client.get(reverse("audit-log"), {"action": "test.changed"}).content.decode()
    assert f'data-seq="{target.seq}" data-ok="0"' in page
    assert "内容与哈希不符" in page
    assert f'data-seq="{events[2].seq}" data-ok="1"' in page

    verified = client.get(reverse("audit-log"), {"verify": "1"}).content.decode()
    assert "证据链校验未通过" in verified
    assert 'data-reason="hash_mismatch"' in verified
    assert f"序号 {target.seq}" in verified


def test_log_page_in_english(auditor):
    append(1)
    client = signed_in(auditor)
    client.cookies["django_language"] = "en"
    page = client.get(reverse("audit-log")).content.decode()
    assert "Audit log" in page and "Read-only" in page
    assert "审计日志" not in page
