"""Supplementary recording (补录): a valid backup uploaded after a failed QC is stored encrypted,
anchored with both copies' digests and QC'd; corrupt, oversize, unrelated, mismatched and
unauthorised uploads are refused with a clear code and change nothing."""

from __future__ import annotations

import fractions
import hashlib
import io
import time

import av
import django_rq
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rq import SimpleWorker

from apps.audit.models import AuditEvent
from apps.calls.models import Call, Participant
from apps.qc import evidence
from apps.qc.models import QcReport, ReportState, Supplement
from apps.qc.tests.conftest import at
from apps.qc.tests.test_misses_and_pages import GAP, finished_report
from apps.recordings.actions import capture as recording_capture
from apps.recordings.models import Recording
from apps.recordings.storage import KeyRing, get_storage
from medialib.tests import synth
from remotebank import queues

pytestmark = pytest.mark.django_db

CALL_SECONDS = 40.0


def backup_webm(seconds: float) -> bytes:
    """What the workstation's MediaRecorder makes: WebM, VP8 + Opus; here the customer's face
    and a tone."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=synth.FPS)
        video.width, video.height, video.pix_fmt = synth.WIDTH, synth.HEIGHT, "yuv420p"
        video.bit_rate = 600_000
        video.options = {"deadline": "realtime", "cpu-used": "8"}
        audio = container.add_stream("libopus", rate=48_000, layout="mono")
        chroma = np.full((synth.HEIGHT // 2, synth.WIDTH), 128, np.uint8)
        for index in range(round(seconds * synth.FPS)):
            image = np.concatenate([synth.face_luma(index / synth.FPS), chroma])
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts = index
            frame.time_base = fractions.Fraction(1, synth.FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for index in range(round(seconds / 0.02)):
            n = np.arange(index * 960, (index + 1) * 960)
            wave = np.round(0.3 * 32767 * np.sin(2 * np.pi * 440 * n / 48_000)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48_000, index * 960
            frame.time_base = fractions.Fraction(1, 48_000)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return out.getvalue()


@pytest.fixture(scope="module")
def backup() -> bytes:
    return backup_webm(38.0)


@pytest.fixture
def failed_call(call):
    """The call (40 s, ended) whose server recording is ready and failed QC."""
    t0 = float(int(time.time()) - 300)
    Participant.objects.filter(call=call).update(joined_at=at(t0))
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    Call.objects.filter(pk=call.pk).update(
        connected_at=at(t0), ended_at=at(t0 + CALL_SECONDS), state="ended"
    )
    Recording.objects.filter(pk=context.recording_id).update(
        state="ready", timeline_start=at(t0), timeline_end=at(t0 + CALL_SECONDS),
        duration_seconds=CALL_SECONDS, composed_sm3="a" * 64, composed_sha256="b" * 64,
    )  # fmt: skip
    recording = Recording.objects.get(pk=context.recording_id)
    finished_report(recording, [GAP])
    call.refresh_from_db()
    call.t0 = t0
    return call


def post(client, call, data: bytes, *, started: float, sha256: str | None = None):
    return client.post(
        reverse("qc-supplement", args=[call.pk]),
        {
            "file": SimpleUploadedFile("backup.webm", data, content_type="video/webm"),
            "sha256": sha256 or hashlib.sha256(data).hexdigest(),
            "started_at": at(started).isoformat(),
        },
    )


def test_a_valid_backup_is_stored_encrypted_anchored_and_qcd(
    client, agent, supervisor, failed_call, backup, django_capture_on_commit_callbacks
):
    client.force_login(agent)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, failed_call, backup, started=failed_call.t0 + 1.0)
    assert response.status_code == 201, response.content
    body = response.json()
    supplement = Supplement.objects.get(pk=body["supplement"])
    assert supplement.sha256 == hashlib.sha256(backup).hexdigest() == body["sha256"]
    assert supplement.duration_seconds == pytest.approx(38.0, abs=0.2)
    assert supplement.uploaded_by == agent and supplement.call_id == failed_call.pk
    # Stored through recordings storage, encrypted at rest, readable back as uploaded.
    storage = get_storage()
    raw = (storage.root / supplement.storage_key).read_bytes()
    assert raw[:4] == b"RBEF" and backup[:64] not in raw
    reader = storage.open_read(supplement.storage_key, keys=KeyRing(reason="test"))
    assert reader.read() == backup
    # Both copies' digests in the evidence chain.
    event = AuditEvent.objects.get(seq=supplement.anchor_seq)
    assert event.action == "qc.supplement_stored"
    assert (event.details["sm3"], event.details["sha256"]) == (supplement.sm3, supplement.sha256)
    assert event.details["server_recording"]["sm3"] == "a" * 64
    # In the call's evidence bundle, and re-verified by verify_evidence's digest verifier.
    bundle = evidence.bundle_items(failed_call)
    assert [(i["sm3"], i["anchor_seq"]) for i in bundle] == [(supplement.sm3, event.seq)]
    assert list(evidence.digest_failures()) == []
    # QC'd on the qc queue: the face is there all along, the sound too, it covers the call.
    queue = django_rq.get_queue(queues.QC)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    report = QcReport.objects.get(pk=body["report"])
    assert report.state == ReportState.DONE, report.error
    assert report.supplement_id == supplement.pk
    assert list(report.findings.values_list("code", flat=True)) == []
    assert report.verdict == "pass"
    assert report.metrics["face_share"] == 1.0
    # Reviewers see it with the failed report.
    client.force_login(supervisor)
    page = client.get(reverse("qc-report", args=[supplement.failed_report_id])).content.decode()
    assert f'data-supplement="{supplement.pk}"' in page
    # A changed byte in storage is caught.
    path = storage.root / supplement.storage_key
    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 1
    path.write_bytes(bytes(tampered))
    [failure] = list(evidence.digest_failures())
    assert failure.object_id == str(supplement.pk) and "unreadable" in failure.reason


def test_refusals_change_nothing(client, agent, second_agent, failed_call, backup, settings):
    t0 = failed_call.t0
    client.force_login(agent)

    def refused(response, status, code):
        assert response.status_code == status, response.content
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]

    rng = np.random.default_rng(7)
    garbage = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    refused(post(client, failed_call, garbage, started=t0 + 1), 400, "corrupt")
    refused(post(client, failed_call, backup[:300] + garbage, started=t0 + 1), 400, "corrupt")
    # The whole header and the start of the first cluster, then random bytes: FFmpeg reads
    # one packet and stops quietly; the container walk finds the garbage.
    cluster = backup.find(b"\x1f\x43\xb6\x75")
    for cut in (cluster, cluster + 12, cluster + 40):
        damaged = backup[:cut] + garbage
        refused(post(client, failed_call, damaged, started=t0 + 1), 400, "corrupt")
    # Cut off (an interrupted copy): corrupt, not a short recording of something else.
    for cut in (len(backup) * 2 // 3, len(backup) - 1):
        refused(post(client, failed_call, backup[:cut], started=t0 + 1), 400, "corrupt")
    short = backup_webm(10.0)
    refused(post(client, failed_call, short, started=t0 + 1), 400, "unrelated")
    refused(post(client, failed_call, backup, started=t0 - 86_400), 400, "unrelated")
    refused(post(client, failed_call, backup, started=t0 + 1, sha256="0" * 64), 400,
            "digest_mismatch")  # fmt: skip
    settings.QC_SUPPLEMENT_MAX_BYTES = len(backup) - 1
    refused(post(client, failed_call, backup, started=t0 + 1), 400, "too_large")
    settings.QC_SUPPLEMENT_MAX_BYTES = 512 * 1024 * 1024
    client.force_login(second_agent)
    refused(post(client, failed_call, backup, started=t0 + 1), 403, "forbidden")
    assert Supplement.objects.count() == 0
    assert not list(get_storage().iter_keys(f"calls/{failed_call.pk.hex}/supplement"))
    assert not AuditEvent.objects.filter(action="qc.supplement_stored").exists()


def test_nothing_to_supplement_before_a_failed_qc(client, agent, call, backup):
    client.force_login(agent)
    Call.objects.filter(pk=call.pk).update(
        connected_at=at(time.time() - 60), ended_at=at(time.time())
    )
    response = post(client, call, backup, started=time.time() - 59)
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_failed"
