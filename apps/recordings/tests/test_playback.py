"""Playback (双录回放), range streaming, downloads with reason / approval / watermark, and
who may see what: through the real URLs with Django's test client."""

from __future__ import annotations

import hashlib
import io

import av
import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.audit.models import AuditEvent
from apps.recordings import jobs, streaming
from apps.recordings.models import DownloadRequest, DownloadState, Recording, RecordingState
from apps.recordings.storage import KeyRing, get_storage
from apps.recordings.tests.conftest import streamed
from apps.recordings.tests.test_jobs import record_call
from medialib.layout import HEIGHT, WIDTH
from medialib.watermark import watermark_boxes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)
    streaming.forget_keyrings()


@pytest.fixture
def qc(demo):
    return get_user_model().objects.get(username="qc01")  # a QC reviewer (质检员)


@pytest.fixture
def ready(call) -> Recording:
    from datetime import UTC, datetime

    from apps.recordings.models import KeyPoint

    context, t0 = record_call(call, seconds=4.0)
    KeyPoint.objects.create(call=call, code="signed", at=datetime.fromtimestamp(t0 + 1, tz=UTC))
    jobs.compose_recording(str(context.recording_id))
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.READY, recording.error
    return recording


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def plaintext(recording: Recording) -> bytes:
    return get_storage().read_range(recording.composed_key, 0, None, keys=KeyRing(reason="test"))


def test_agents_see_their_own_calls_reviewers_all_and_others_nothing(
    ready, agent, second_agent, supervisor, auditor, qc, outsider
):
    url = f"/recordings/{ready.pk}/"
    for user in (agent, supervisor, auditor, qc):
        page = as_user(user).get(url)
        assert page.status_code == 200, user
        assert ready.call.number in page.content.decode()
        assert f"/recordings/{ready.pk}/video" in page.content.decode()
        listing = as_user(user).get("/recordings/", {"number": ready.call.number})
        assert f"/recordings/{ready.pk}/" in listing.content.decode()
    for user in (second_agent, outsider):
        assert as_user(user).get(url).status_code == 404
        assert as_user(user).get(url + "video").status_code == 404
    assert (
        f"/recordings/{ready.pk}/" not in as_user(second_agent).get("/recordings/").content.decode()
    )
    assert Client().get(url).status_code == 302  # to the login page
    views = AuditEvent.objects.filter(action="recording.viewed", object_id=str(ready.pk))
    assert sorted(views.values_list("actor_id", flat=True)) == sorted(
        str(u.pk) for u in (agent, supervisor, auditor, qc)
    )


def test_the_page_carries_the_timeline_with_times_into_the_file(ready, agent, supervisor):
    from datetime import timedelta

    from apps.recordings.models import KeyPoint

    KeyPoint.objects.create(call=ready.call, recording=ready, code="risk_disclosed",
                            at=ready.timeline_start + timedelta(seconds=2.5))  # fmt: skip
    page = as_user(supervisor).get(f"/recordings/{ready.pk}/").content.decode()
    assert 'data-kind="key_point" data-t="2.500000"' in page
    assert 'data-seek="2.500000"' in page and "风险揭示" in page


def test_the_video_streams_with_range_requests(ready, supervisor):
    data = plaintext(ready)
    size = len(data)
    assert size == ready.composed_size and hashlib.sha256(data).hexdigest() == ready.composed_sha256
    client = as_user(supervisor)
    url = f"/recordings/{ready.pk}/video"

    whole = client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert whole["Content-Type"] == "video/mp4" and int(whole["Content-Length"]) == size
    assert streamed(whole) == data

    part = client.get(url, HTTP_RANGE="bytes=100-4195")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-4195/{size}"
    assert int(part["Content-Length"]) == 4096 and part.content == data[100:4196]

    tail = client.get(url, HTTP_RANGE="bytes=-50")
    assert tail.status_code == 206 and tail.content == data[-50:]
    assert tail["Content-Range"] == f"bytes {size - 50}-{size - 1}/{size}"

    open_ended = client.get(url, HTTP_RANGE="bytes=7-")
    last = min(size - 1, 7 + streaming.MAX_RANGE - 1)
    assert open_ended["Content-Range"] == f"bytes 7-{last}/{size}"
    assert open_ended.content == data[7 : last + 1]

    refused = client.get(url, HTTP_RANGE=f"bytes={size}-")
    assert refused.status_code == 416 and refused["Content-Range"] == f"bytes */{size}"
    assert client.get(url, HTTP_RANGE="bytes=x-y").status_code == 416
    # Streaming is audited once per session, and the data key unwrapped once per viewer.
    assert AuditEvent.objects.filter(action="recording.streamed").count() == 1
    uses = AuditEvent.objects.filter(action="key.used")
    assert sum("playback" in str(e.details.get("reason")) for e in uses) == 1


def test_a_download_needs_a_download_role_and_a_reason(ready, agent, second_agent, supervisor):
    url = f"/recordings/{ready.pk}/downloads"
    own = as_user(agent).post(url, {"reason": "客户投诉复核"}, content_type="application/json")
    assert own.status_code == 403 and own.json()["error"]["code"] == "download_not_allowed"
    other = as_user(second_agent).post(url, {"reason": "x" * 10}, content_type="application/json")
    assert other.status_code == 404
    for reason in ("", "  ", "ab", None):
        refused = as_user(supervisor).post(url, {"reason": reason}, content_type="application/json")
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "reason_required"
    assert not DownloadRequest.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="recording.download").exists()


def luma_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray()[:HEIGHT].astype(np.int16) for f in container.decode(video=0)]


def test_a_download_is_a_watermarked_copy_and_every_step_is_audited(ready, supervisor, auditor):
    client = as_user(supervisor)
    made = client.post(f"/recordings/{ready.pk}/downloads", {"reason": "监管检查调阅"},
                       content_type="application/json")  # fmt: skip
    assert made.status_code == 201, made.content
    request = DownloadRequest.objects.get()
    assert request.state == DownloadState.QUEUED and request.reason == "监管检查调阅"
    # Only the requester fetches the copy, and only once it is ready.
    assert client.get(f"/recordings/downloads/{request.pk}/file").status_code == 409

    jobs.watermark_download(str(request.pk))

    status = client.get(f"/recordings/downloads/{request.pk}").json()
    assert status["state"] == "ready" and status["progress"] == 1.0
    assert as_user(auditor).get(status["file_url"]).status_code == 404
    got = client.get(status["file_url"])
    assert got.status_code == 200 and "attachment" in got["Content-Disposition"]
    copy = streamed(got)
    request.refresh_from_db()
    assert hashlib.sha256(copy).hexdigest() == request.copy_sha256
    assert "supervisor01" in request.watermark_text and "北京时间" in request.watermark_text

    original, marked = luma_frames(plaintext(ready)), luma_frames(copy)
    assert len(marked) == len(original)
    inside = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for x0, y0, x1, y1 in watermark_boxes(WIDTH, HEIGHT):
        inside[y0:y1, x0:x1] = True
    for index in (0, len(original) // 2, len(original) - 1):
        diff = marked[index] - original[index]
        # Text is brightened in the bands: many pixels much brighter than the original...
        assert int((diff[inside] > 40).sum()) > 2000, index
        # ...and outside them only re-encoding noise.
        assert float(np.abs(diff[~inside]).mean()) < 3.0, index
    with av.open(io.BytesIO(copy)) as container:  # the key points' chapters are kept
        assert [c["metadata"]["title"] for c in container.chapters()] == ["通话开始", "客户签名"]

    actions = list(
        AuditEvent.objects.filter(object_id=str(request.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "recording.download_requested",
        "recording.download_prepared",
        "recording.downloaded",
    ]
    requested = AuditEvent.objects.get(action="recording.download_requested")
    assert (
        requested.actor_id == str(supervisor.pk) and requested.details["reason"] == "监管检查调阅"
    )


def test_with_approval_on_a_second_person_must_approve(ready, supervisor, auditor, qc, settings):
    settings.RECORDINGS_DOWNLOAD_APPROVAL = True
    made = as_user(supervisor).post(f"/recordings/{ready.pk}/downloads", {"reason": "诉讼证据"},
                                    content_type="application/json")  # fmt: skip
    request = DownloadRequest.objects.get(pk=made.json()["id"])
    assert request.state == DownloadState.PENDING_APPROVAL
    decide = f"/recordings/downloads/{request.pk}/decision"
    own = as_user(supervisor).post(decide, {"approve": True}, content_type="application/json")
    assert own.status_code == 403 and own.json()["error"]["code"] == "second_person_required"
    assert (
        as_user(qc).post(decide, {"approve": True}, content_type="application/json").status_code
        == 404
    )
    ok = as_user(auditor).post(
        decide, {"approve": True, "note": "同意"}, content_type="application/json"
    )
    assert ok.status_code == 200 and ok.json()["state"] == "queued"
    request.refresh_from_db()
    assert request.decided_by == auditor
    approved = AuditEvent.objects.get(action="recording.download_approved")
    assert approved.actor_id == str(auditor.pk)
    again = as_user(auditor).post(decide, {"approve": False}, content_type="application/json")
    assert again.status_code == 400 and again.json()["error"]["code"] == "wrong_state"
