"""Retention per business type, legal hold, purge_recordings (dry run, deletion through
storage, tombstones, audit) and scratch clean-up."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from apps.audit.audited import Actor
from apps.audit.models import AuditEvent
from apps.calls.models import Call
from apps.recordings import jobs
from apps.recordings import selectors as recording_selectors
from apps.recordings.actions import retention as recording_retention
from apps.recordings.models import Recording, RecordingSegment, RecordingState, RetentionRule
from apps.recordings.storage import get_storage
from apps.recordings.tests.test_jobs import record_call
from apps.recordings.verification import verify_recordings
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)


@pytest.fixture
def old(call) -> Recording:
    """A composed recording of a call that ended two years ago."""
    context, _ = record_call(call, seconds=3.0)
    jobs.compose_recording(str(context.recording_id))
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.READY, recording.error
    Call.objects.filter(pk=call.pk).update(ended_at=timezone.now() - timedelta(days=731))
    return Recording.objects.select_related("call").get(pk=recording.pk)


def files_of(recording: Recording) -> list[str]:
    return [s.storage_key for s in recording.segments.all()] + [recording.composed_key]


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_recordings", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_forever_is_the_default_and_keeps_everything(old, settings):
    assert settings.RECORDINGS_RETENTION_DEFAULT_YEARS == "forever"
    assert recording_selectors.purge_candidates() == []
    assert "0 recordings purged" in purge()
    assert all(get_storage().exists(k) for k in files_of(old))


def test_retention_rules_are_set_with_an_audit_and_validated(supervisor):
    actor = Actor.staff(supervisor)
    recording_retention.set_retention_rule(business_code="debit_pin_reset", years=5, actor=actor)
    recording_retention.set_retention_rule(
        business_code="debit_pin_reset", years="forever", actor=actor
    )
    assert RetentionRule.objects.get().years is None
    events = AuditEvent.objects.filter(action="recording.retention_set").order_by("seq")
    assert [e.details["years"] for e in events] == [5, None]
    for bad in (0, -1, "abc", 500):
        with pytest.raises(ServiceError) as refused:
            recording_retention.set_retention_rule(
                business_code="debit_pin_reset", years=bad, actor=actor
            )
        assert refused.value.code == "bad_retention"
    assert recording_selectors.retention_years("debit_pin_reset") is None


def test_a_longer_retention_keeps_the_recording(old, supervisor):
    recording_retention.set_retention_rule(business_code="debit_pin_reset", years=5,
                                actor=Actor.staff(supervisor))  # fmt: skip
    assert recording_selectors.purge_candidates() == []
    with pytest.raises(ServiceError) as refused:
        recording_retention.purge_recording(recording_id=old.pk)
    assert refused.value.code == "retention_not_over"


def test_purge_respects_legal_hold_and_deletes_only_when_retention_allows(old, supervisor, auditor):
    storage = get_storage()
    keys = files_of(old)
    recording_retention.set_retention_rule(business_code="debit_pin_reset", years=1,
                                actor=Actor.staff(supervisor))  # fmt: skip

    # Dry run: listed, nothing deleted, nothing audited.
    listed = json.loads(purge("--dry-run", "--json"))
    assert [r["recording"] for r in listed["recordings"]] == [str(old.pk)]
    assert listed["recordings"][0]["files"] == len(keys)
    assert "1 recordings would be purged" in purge("--dry-run")
    assert all(storage.exists(k) for k in keys)
    assert not AuditEvent.objects.filter(action="recording.purged").exists()

    # Legal hold (over HTTP, audited) blocks it.
    client = Client()
    client.force_login(auditor)
    hold_url = f"/recordings/{old.pk}/hold"
    refused = client.post(hold_url, {"on": True, "reason": ""}, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "reason_required"
    held = client.post(hold_url, {"on": True, "reason": "诉讼保全 (2026)京01民初123号"},
                       content_type="application/json")  # fmt: skip
    assert held.status_code == 200 and held.json()["legal_hold"] is True
    assert recording_selectors.purge_candidates() == []
    assert "0 recordings purged" in purge()
    with pytest.raises(ServiceError) as blocked:
        recording_retention.purge_recording(recording_id=old.pk)
    assert blocked.value.code == "legal_hold"
    assert all(storage.exists(k) for k in keys)
    agent_client = Client()
    agent_client.force_login(old.call.agent.user)
    not_allowed = agent_client.post(hold_url, {"on": False, "reason": "结案"},
                                    content_type="application/json")  # fmt: skip
    assert not_allowed.status_code == 403

    cleared = client.post(hold_url, {"on": False, "reason": "案件已结案"},
                          content_type="application/json")  # fmt: skip
    assert cleared.status_code == 200
    holds = AuditEvent.objects.filter(object_id=str(old.pk), action__startswith="recording.legal")
    assert list(holds.order_by("seq").values_list("action", flat=True)) == [
        "recording.legal_hold_set",
        "recording.legal_hold_cleared",
    ]

    # Now it goes: files deleted through storage, rows kept as tombstones, one audit event.
    assert "1 recordings purged" in purge()
    assert not any(storage.exists(k) for k in keys)
    old.refresh_from_db()
    assert old.purged_at is not None and old.composed_sm3  # digests stay as evidence
    assert not RecordingSegment.objects.filter(recording=old, purged_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="recording.purged")
    assert sorted(f["key"] for f in event.details["files"]) == sorted(keys)
    assert all(f["existed"] for f in event.details["files"])
    assert event.details["retention_years"] == 1
    assert list(verify_recordings()) == []  # purged files are not "missing"
    page = client.get(f"/recordings/{old.pk}/")
    assert page.status_code == 200 and "录像文件已于" in page.content.decode()
    assert client.get(f"/recordings/{old.pk}/video").status_code == 404
    assert "0 recordings purged" in purge()  # idempotent


def test_scratch_files_left_by_a_killed_job_are_removed(settings):
    storage = get_storage()
    with storage.scratch_file(".mp4") as live:
        stale = live.parent / "tmpkilled.mp4"
        stale.write_bytes(b"plain media a killed compose job left")
        hours_ago = time.time() - jobs.SCRATCH_MAX_AGE - 60
        os.utime(stale, (hours_ago, hours_ago))
        assert storage.clean_scratch(older_than=jobs.SCRATCH_MAX_AGE) == [
            f"{live.parent.name}/tmpkilled.mp4"
        ]
        assert live.exists() and not stale.exists()  # the running job's file stays
    assert not live.exists()


def test_the_scratch_of_a_process_that_ended_is_removed_at_once(settings):
    """A compose job killed by SIGKILL leaves plaintext: its folder names its process, so the
    sweep removes it as soon as the process is gone, however young the file."""
    storage = get_storage()
    gone = subprocess.Popen(["true"])
    gone.wait()
    with storage.scratch_file(".mp4") as live:
        folder = live.parent.parent / live.parent.name.replace(f"-{os.getpid()}", f"-{gone.pid}")
        folder.mkdir()
        (folder / "tmpplain.mp4").write_bytes(b"plain media of a job killed a moment ago")
        removed = storage.clean_scratch(older_than=jobs.SCRATCH_MAX_AGE)
        assert removed == [f"{folder.name}/tmpplain.mp4"]
        assert not folder.exists() and live.exists()


def test_a_retention_rule_saved_in_the_admin_is_audited(demo):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("root", password="x")
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/recordings/retentionrule/add/",
        {"business_code": "wealth_sale", "years": "20", "note": "监管要求"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RetentionRule.objects.get(business_code="wealth_sale").years == 20
    event = AuditEvent.objects.get(action="recording.retention_set")
    assert event.actor_id == str(admin_user.pk) and event.details["years"] == 20
