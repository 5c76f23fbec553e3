"""Live media under batch work: the frames a live call keeps while compositions and QC run.

Usage: .venv/bin/python benchmarks/live_under_batch.py [--call-seconds 300] [--warmup 5]
           [--source-seconds 60] [--compose-workers 2] [--noise 40] [--settle 5]
           [--ready-timeout 900] [--worker-nice N] [--database-url URL] [--redis-url URL]
           [--no-pin]

Issue 13 item 11, "live media must win over batch work": a 1:1 call keeps >= 95% of its
frames while two compositions and one QC job of other recordings run on the same machine.

The stack is benchmarks/_stack.py's (dedicated database and Redis database, Daphne + router
on CPU 1, exactly one media worker on CPU 0) plus the batch workers as production starts them
(`remotebank.queues.WORKER_CLASSES`: `remotebank.workers.LowPriorityWorker`, so nice 15,
SCHED_BATCH and 2 threads per pool): --compose-workers (2) `rqworker compose` and one
`rqworker qc`, NOT pinned: like every process of a node where nothing is pinned, they may run
on both CPUs. The compose workers start through benchmarks/_batch_worker.py, which is
manage.py except that recordings of the load's source calls do not queue their own QC (see
there why); the measured calls' recordings are composed and inspected exactly as in production.

1. Batch inputs (not measured): --compose-workers + 1 source calls of --source-seconds, at
   once, through the real stack (customers LBATCH..., SDK clients sending pattern video and a
   tone), recorded by the media job and composed; then the machine is left to settle.
2. Idle: one measured 1:1 call (a fresh bench agent and customer; both SDK clients send
   PatternVideoTrack 640x480 @ 15 fps with --noise, VP8, and ToneAudioTrack, Opus, and decode
   what they receive like real clients). After media flows and --warmup, a window of
   --call-seconds: each side's decoded video frames are read back (the pattern gives the
   sender and the frame counter), so "kept" = distinct frames of the peer decoded / frames the
   peer sent in the window; also the lowest frame rate over 5 s windows, the longest gap
   between decoded frames, the one-way latency (frame made -> decoded at the other end, one
   clock: both clients run here), and decoded audio frames / sent. Then hang-up, and the
   database is polled until the recording is `ready` and its QC report `done`.
3. Loaded: the same with batch work running for the whole call and until its QC report is
   done: each compose source is recomposed (`enqueue_composition(again=True)`) as soon as its
   previous composition ends, and one QC run of the QC source (`request_qc`) is always queued
   or running, so --compose-workers compositions and one QC job run throughout (the share of
   the window they actually ran is printed). The measured call's own composition and QC queue
   behind the batch jobs that are running at its hang-up (FIFO, at most one job each).

Printed with the load average, each CPU's busy share and the CPU time of the media worker,
the clients (this process) and the batch workers (with their work horses) in each window:
the kept ratio idle and loaded, loaded / idle, and hang-up -> recording ready -> QC report
done with its parts (compose queue, waiting for the media job to seal, composing, QC queue,
QC). A sender that could not produce 95% of 15 fps, or a client event loop lagging > 100 ms
at p99, marks the window client-limited: its losses then say little about the server. One
JSON object at the end. Takes 2 x --call-seconds plus recording and composing the sources
and composing and inspecting both measured calls (noise 40 makes x264 work hard: minutes each
on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as stack
from _batch_worker import LOAD_CUSTOMER_PREFIX
from remotebank_client import Participant
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack, decode_pattern

from remotebank import queues

CUSTOMER_ID, AGENT_ID = 1, 2
FPS = 15
AUDIO_FRAME_SAMPLES = 960  # 20 ms of 48 kHz Opus
TARGET = 0.95
RATE_WINDOW_S = 5.0
STEP_TIMEOUT = 30.0
MEDIA_TIMEOUT = 45.0
RESCUE_AFTER_S = 3.0
FEED_PERIOD_S = 0.5
PROGRESS_EVERY_S = 30.0
DRAIN_S = 60.0  # at the end, how long running batch jobs may finish before they are killed
BATCH_WORKER = str(stack.BENCH_DIR / "_batch_worker.py")
# What the script may run on before it pins itself: the batch workers get all of it back.
ALL_CPUS = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


# ---------------------------------------------------------------------------------------------
# the stack: _stack.Stack plus the batch workers


def _unpin() -> None:  # preexec_fn of the batch workers: undo the affinity they inherit
    if ALL_CPUS is not None:
        os.sched_setaffinity(0, ALL_CPUS)


class BatchStack(stack.Stack):
    """_stack.Stack (Daphne, router, media worker) plus compose and QC workers, unpinned."""

    def __init__(self, env: dict[str, str], compose_workers: int, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.compose_workers = compose_workers
        self.batch: list[str] = []

    def start(self) -> BatchStack:
        import redis
        from rq import Queue

        connection = redis.Redis.from_url(self.env["REDIS_URL"])
        for name in (queues.COMPOSE, queues.QC):  # jobs an aborted earlier run left queued
            Queue(name, connection=connection).empty()
        super().start()
        for i in range(self.compose_workers):
            self._start_batch(
                f"compose-{i}",
                [BATCH_WORKER, "rqworker", queues.COMPOSE, *queues.worker_args(queues.COMPOSE)],
            )
        self._start_batch(
            "qc", ["manage.py", "rqworker", queues.QC, *queues.worker_args(queues.QC)]
        )
        self._wait_batch(connection)
        return self

    def _start_batch(self, name: str, argv: list[str]) -> None:
        stack.LOG_DIR.mkdir(parents=True, exist_ok=True)
        path = stack.LOG_DIR / f"{name}-{os.getpid()}.log"
        log = open(path, "w")  # noqa: SIM115 - closed in stop()
        self._files.append(log)
        self.procs[name] = subprocess.Popen(
            [sys.executable, *argv],
            cwd=stack.ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_unpin,
        )
        self.logs[name] = path
        self.batch.append(name)

    def _wait_batch(self, connection: Any, timeout: float = 90) -> None:
        from rq import Worker

        wanted = {self.procs[name].pid for name in self.batch}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if wanted <= {getattr(w, "pid", None) for w in Worker.all(connection=connection)}:
                return
            time.sleep(0.2)
        raise TimeoutError("the batch workers did not register with RQ")

    def batch_priorities(self) -> dict[str, str]:
        """What each batch worker runs at, read from outside (nice, policy, CPUs)."""
        import psutil

        policies = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_BATCH: "SCHED_BATCH"}
        out = {}
        for name in self.batch:
            pid = self.procs[name].pid
            cpus = ",".join(map(str, sorted(os.sched_getaffinity(pid))))
            policy = policies.get(os.sched_getscheduler(pid), str(os.sched_getscheduler(pid)))
            out[name] = f"nice {psutil.Process(pid).nice()}, {policy}, CPUs {cpus}"
        return out

    def batch_processes(self) -> dict[str, Any]:
        import psutil

        return {name: psutil.Process(self.procs[name].pid) for name in self.batch}

    def stop(self) -> None:
        """RQ's worker waits for its running job on the first SIGTERM and kills the job's work
        horse on the second; a SIGKILLed worker would leave its horse running."""
        import psutil

        horses = []
        for name in self.batch:
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(psutil.Error):
                    horses += psutil.Process(proc.pid).children(recursive=True)
                proc.send_signal(signal.SIGTERM)
        time.sleep(1)
        for name in self.batch:
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        for name in self.batch:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.procs[name].wait(10)
        for horse in horses:
            with contextlib.suppress(psutil.Error):
                horse.kill()
        super().stop()


def tree_cpu(processes: dict[str, Any]) -> float:
    """CPU seconds of processes with their children, live and reaped (RQ forks a work horse
    per job, and a horse's time reaches its parent's children_* only when it is reaped)."""
    import psutil

    total = 0.0
    for process in processes.values():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for child in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child_times = child.cpu_times()
                    total += child_times.user + child_times.system
    return total


# ---------------------------------------------------------------------------------------------
# database (sync: called through asyncio.to_thread from the event loop)


def fail_leftovers() -> None:
    """Compositions and QC runs an earlier run (this one's or call_setup.py's) left pending
    would be requeued by the router's housekeeping onto our batch workers: mark them failed,
    as prepare_database ends leftover calls."""
    from django.utils import timezone

    from apps.qc.models import QcReport, ReportState
    from apps.recordings.models import Recording, RecordingState

    note = "left pending by an earlier benchmark run"
    Recording.objects.filter(state__in=(RecordingState.RECORDING, RecordingState.COMPOSING)).update(
        state=RecordingState.FAILED, error=note
    )
    QcReport.objects.filter(state__in=(ReportState.QUEUED, ReportState.RUNNING)).update(
        state=ReportState.FAILED, error=note, finished_at=timezone.now()
    )


def issue_load_ticket(index: int) -> str:
    """An entry link for source call `index`: customer LBATCH..., whose recordings
    _batch_worker.py keeps out of automatic QC."""
    from apps.accounts.models import ApiClient
    from apps.calls.actions.tickets import issue_entry_ticket

    _, token = issue_entry_ticket(
        client=ApiClient.objects.get(key_id="demo-mobile-bank"),
        customer_reference=f"{LOAD_CUSTOMER_PREFIX}{index:05d}",
        customer_name="",
        business_code=stack.BUSINESS,
        location=None,
    )
    return f"/h5/enter/{token}"


def recording_states(call_ids: list[str]) -> dict[str, str]:
    from apps.recordings.models import Recording

    return {
        str(call_id): state
        for call_id, state in Recording.objects.filter(call_id__in=call_ids).values_list(
            "call_id", "state"
        )
    }


def recording_ids(call_ids: list[str]) -> list[uuid.UUID]:
    from apps.recordings.models import Recording

    by_call = dict(Recording.objects.filter(call_id__in=call_ids).values_list("call_id", "pk"))
    return [by_call[uuid.UUID(c)] for c in call_ids]


def recording_states_by_id(ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    from apps.recordings.models import Recording

    return dict(Recording.objects.filter(pk__in=ids).values_list("pk", "state"))


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # RQ's timestamps are UTC
    return value


def _seconds(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
    a, b = _aware(a), _aware(b)
    return None if a is None or b is None else round((b - a).total_seconds(), 2)


def _rq_job(queue: str, job_id: str) -> Any:
    import django_rq
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        return Job.fetch(job_id, connection=django_rq.get_queue(queue).connection)
    except NoSuchJobError:
        return None


def pipeline_state(call_id: str) -> dict[str, Any] | None:
    """Hang-up -> recording ready -> QC report done of a call, or None while not done."""
    from apps.calls.models import Call
    from apps.qc.actions.runs import run_job_id
    from apps.qc.models import QcReport, ReportState
    from apps.recordings.actions.composition import compose_job_id
    from apps.recordings.models import Recording, RecordingState

    recording = Recording.objects.filter(call_id=call_id).first()
    if recording is None or recording.state in (
        RecordingState.RECORDING,
        RecordingState.COMPOSING,
    ):
        return None
    ended = Call.objects.get(pk=call_id).ended_at
    row: dict[str, Any] = {"recording_state": recording.state, "error": recording.error}
    if recording.state == RecordingState.FAILED:
        return row
    report = (
        QcReport.objects.filter(recording=recording, supplement=None)
        .order_by("requested_at")
        .first()
    )
    if report is None or report.state in (ReportState.QUEUED, ReportState.RUNNING):
        return None
    compose = _rq_job(queues.COMPOSE, compose_job_id(recording.pk))
    qc = _rq_job(queues.QC, run_job_id(report.pk))
    row.update(
        hangup_to_ready_s=_seconds(ended, recording.composed_at),
        hangup_to_qc_done_s=_seconds(ended, report.finished_at),
        compose_queue_s=_seconds(compose.enqueued_at, compose.started_at) if compose else None,
        capture_wait_s=_seconds(compose.started_at, recording.compose_started_at)
        if compose
        else None,
        compose_s=_seconds(recording.compose_started_at, recording.composed_at),
        qc_queue_s=_seconds(qc.enqueued_at, qc.started_at) if qc else None,
        qc_s=_seconds(report.started_at, report.finished_at),
        recording_seconds=recording.duration_seconds,
        qc_state=report.state,
        qc_verdict=report.verdict,
    )
    return row


async def wait_pipeline(call_id: str, limit: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        row = await asyncio.to_thread(pipeline_state, call_id)
        if row is not None:
            return row
        await asyncio.sleep(0.5)
    return {"error": f"not done after {limit:.0f} s"}


# ---------------------------------------------------------------------------------------------
# the batch load


class Feeder:
    """Keeps the batch load going: each compose source always has its recomposition queued
    or running, and the QC source one QC run. A job is enqueued again only once the previous
    one ended, so the queues hold no backlog and a measured call's job waits at most for the
    batch job running at its hang-up."""

    def __init__(self, compose_sources: list[uuid.UUID], qc_source: uuid.UUID) -> None:
        from apps.recordings.actions.composition import compose_job_id

        self.compose_jobs = {compose_job_id(r): r for r in compose_sources}
        self.qc_source = qc_source
        self.qc_job: str | None = None
        self.enqueued: set[str] = set()
        # (time.monotonic() noticed, queue, status, seconds the job ran)
        self.ended: list[tuple[float, str, str, float | None]] = []
        # (time.monotonic(), compositions running, QC runs running)
        self.samples: list[tuple[float, int, int]] = []
        self.feeding = True
        self.errors: list[str] = []

    def _status(self, queue: str, job_id: str) -> tuple[str | None, Any]:
        job = _rq_job(queue, job_id)
        status = None if job is None else job.get_status()
        return getattr(status, "value", status), job  # JobStatus is an Enum

    def _ended(self, queue: str, job_id: str, status: str | None, job: Any) -> None:
        if job_id in self.enqueued:
            self.enqueued.discard(job_id)
            ran = _seconds(job.started_at, job.ended_at) if job is not None else None
            self.ended.append((time.monotonic(), queue, status or "gone", ran))

    def tick(self) -> None:
        from apps.qc.actions.runs import request_qc, run_job_id
        from apps.recordings.actions.composition import enqueue_composition

        running = {queues.COMPOSE: 0, queues.QC: 0}
        pending = {"queued", "started", "deferred", "scheduled"}
        states = recording_states_by_id(list(self.compose_jobs.values()))
        for job_id, recording_id in self.compose_jobs.items():
            status, job = self._status(queues.COMPOSE, job_id)
            if status in pending:
                running[queues.COMPOSE] += status == "started"
                continue
            self._ended(queues.COMPOSE, job_id, status, job)
            # never two compositions of one recording at once (the second would fail)
            if self.feeding and states.get(recording_id) in ("ready", "failed"):
                enqueue_composition(recording_id=recording_id, again=True)
                self.enqueued.add(job_id)
        status, job = self._status(queues.QC, self.qc_job) if self.qc_job else (None, None)
        if status in pending:
            running[queues.QC] += status == "started"
        else:
            if self.qc_job:
                self._ended(queues.QC, self.qc_job, status, job)
                self.qc_job = None
            if self.feeding:
                self.qc_job = run_job_id(request_qc(recording_id=self.qc_source).pk)
                self.enqueued.add(self.qc_job)
        self.samples.append((time.monotonic(), running[queues.COMPOSE], running[queues.QC]))

    async def run(self) -> None:
        while self.feeding or self.enqueued:
            try:
                await asyncio.to_thread(self.tick)
            except Exception as exc:  # keep feeding; a broken feeder shows in the coverage
                self.errors.append(repr(exc))
            await asyncio.sleep(FEED_PERIOD_S)

    async def wait_running(self, compositions: int, limit: float = 120) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.samples and self.samples[-1][1:] == (compositions, 1):
                return True
            await asyncio.sleep(FEED_PERIOD_S)
        return False

    def window(self, start: float, end: float, compositions: int) -> dict[str, Any]:
        """How much batch work ran between two time.monotonic() instants."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        done = [e for e in self.ended if start <= e[0] <= end]

        def share(test: Any) -> float | None:
            return round(sum(map(test, inside)) / len(inside), 3) if inside else None

        def jobs(queue: str) -> dict[str, Any]:
            mine = [e for e in done if e[1] == queue]
            ran = [e[3] for e in mine if e[3] is not None and e[2] == "finished"]
            return {
                "finished": sum(e[2] == "finished" for e in mine),
                "failed": sum(e[2] != "finished" for e in mine),
                "mean_s": round(sum(ran) / len(ran), 1) if ran else None,
            }

        return {
            "all_compositions_running_share": share(lambda s: s[1] >= compositions),
            "qc_running_share": share(lambda s: s[2] >= 1),
            "mean_compositions_running": round(sum(s[1] for s in inside) / len(inside), 2)
            if inside
            else None,
            "compose": jobs(queues.COMPOSE),
            "qc": jobs(queues.QC),
        }


# ---------------------------------------------------------------------------------------------
# the clients


class StampedPatternTrack(PatternVideoTrack):
    """PatternVideoTrack that remembers when each frame was made (for the one-way latency)."""

    def __init__(self, participant_id: int, **kwargs: Any) -> None:
        super().__init__(participant_id, **kwargs)
        self.made_at: dict[int, float] = {}

    async def recv(self) -> Any:
        frame = await super().recv()
        self.made_at[self.start_counter + self.frames_sent - 1] = time.monotonic()
        return frame


class Received:
    """What one side decodes of the other's camera and microphone.

    Every decoded video frame's pattern is read back: it counts only if it names the peer,
    and each frame counter once (these clients decode like real ones; _stack.ReceivedMedia
    checks the encoded bytes of light clients that do not)."""

    def __init__(
        self,
        participant: Any,
        peer_id: int,
        peer_video: StampedPatternTrack,
        peer_audio: ToneAudioTrack,
    ) -> None:
        self.participant = participant
        self.peer_id = peer_id
        self.peer_video = peer_video
        self.peer_audio = peer_audio
        self.arrivals: list[tuple[float, int]] = []  # (time.monotonic(), counter)
        self.unreadable = 0
        self.wrong_sender = 0
        # ~20 s of frames: a stalled reader must not drop frames the client did decode
        self.track = participant.remote_track("video", maxsize=300)
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            at = time.monotonic()
            decoded = decode_pattern(frame)
            if decoded is None:
                self.unreadable += 1
            elif decoded[0] != self.peer_id:
                self.wrong_sender += 1
            else:
                self.arrivals.append((at, decoded[1]))

    def mark(self) -> dict[str, Any]:
        media = self.participant.media
        return {
            "at": time.monotonic(),
            "sent": self.peer_video.frames_sent,
            "audio_sent": self.peer_audio.samples_sent // AUDIO_FRAME_SAMPLES,
            "audio_decoded": media.frames_received["audio"],
            "video_decoded": media.frames_received["video"],
            "unreadable": self.unreadable,
            "wrong_sender": self.wrong_sender,
            "reader_dropped": self.track.dropped,
            "connections": media.connections,
        }

    def figures(self, start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
        seconds = end["at"] - start["at"]
        first, last = start["sent"], end["sent"]
        sent = last - first
        kept = {c for _, c in self.arrivals if first <= c < last}
        times = [t for t, _ in self.arrivals if start["at"] <= t < end["at"]]
        windows = int(seconds // RATE_WINDOW_S)
        counts = [0] * windows
        for t in times:
            k = int((t - start["at"]) // RATE_WINDOW_S)
            if k < windows:
                counts[k] += 1
        gaps = [b - a for a, b in itertools.pairwise(times)]
        made = self.peer_video.made_at
        latencies = [
            t - made[c] for t, c in self.arrivals if start["at"] <= t < end["at"] and c in made
        ]
        audio_sent = end["audio_sent"] - start["audio_sent"]
        audio_got = end["audio_decoded"] - start["audio_decoded"]
        return {
            "sent": sent,
            "kept": len(kept),
            "kept_ratio": round(len(kept) / sent, 4) if sent else None,
            "sender_fps": round(sent / seconds, 2),
            "min_fps_5s": round(min(counts) / RATE_WINDOW_S, 1) if counts else None,
            "fps_5s": [round(c / RATE_WINDOW_S, 1) for c in counts],
            "max_gap_ms": round(1000 * max(gaps), 1) if gaps else None,
            "latency_p50_ms": _ms(stack.percentile(latencies, 50)),
            "latency_p99_ms": _ms(stack.percentile(latencies, 99)),
            "audio_sent": audio_sent,
            "audio_decoded": audio_got,
            "audio_ratio": round(audio_got / audio_sent, 4) if audio_sent else None,
            "unreadable": end["unreadable"] - start["unreadable"],
            "wrong_sender": end["wrong_sender"] - start["wrong_sender"],
            "reader_dropped": end["reader_dropped"] - start["reader_dropped"],
            "reconnects": end["connections"] - start["connections"],
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 1)


async def _rescue_agent_ready(agent: Any, customer: Any, rescued: list[int]) -> None:
    """The server race media_capacity.py works around (benchmarks/README.md): the agent's
    socket can join the call group after the job announced media.ready, and never hear it.
    After RESCUE_AFTER_S with the customer ready and the agent not, hand the agent the
    customer's epoch, and count it."""
    since: float | None = None
    while agent.media.ready_epoch is None:
        if customer.media.ready_epoch is not None:
            since = since or time.monotonic()
            if time.monotonic() - since > RESCUE_AFTER_S:
                rescued[0] += 1
                agent.media._ready(customer.media.ready_epoch)
                agent._notify()
                return
        await asyncio.sleep(0.1)


class BenchCall:
    """One 1:1 call through the real stack: a bench agent and a customer, both SDK clients
    with live pattern video and tone audio."""

    def __init__(self, noise: int) -> None:
        self.tracks = {
            "customer": (ToneAudioTrack(440.0), StampedPatternTrack(CUSTOMER_ID, noise=noise)),
            "agent": (ToneAudioTrack(880.0), StampedPatternTrack(AGENT_ID, noise=noise)),
        }
        self.participants: dict[str, Any] = {}
        self.rescued = [0]
        self.call_id = ""

    async def connect(self, base: str, agent_name: str, path: str) -> None:
        agent = await Participant.agent(base, agent_name, stack.BENCH_PASSWORD)
        self.participants["agent"] = agent
        await agent.set_presence("ready")
        customer = await Participant.customer(base, path)
        self.participants["customer"] = customer

        async def agent_side() -> None:
            offer = await agent.wait_offer(timeout=STEP_TIMEOUT)
            await agent.accept(offer["offer_id"])
            await agent.wait_for("call.connected", timeout=STEP_TIMEOUT)

        answering = asyncio.ensure_future(agent_side())
        await asyncio.sleep(0)  # the agent waits for the offer before the customer joins
        await customer.join_queue()
        await customer.wait_for("call.connected", timeout=STEP_TIMEOUT)
        await answering
        self.call_id = str(customer.call_id)
        rescue = asyncio.ensure_future(_rescue_agent_ready(agent, customer, self.rescued))
        try:
            await asyncio.gather(
                *(
                    self.participants[role].start_media(*self.tracks[role], timeout=MEDIA_TIMEOUT)
                    for role in ("customer", "agent")
                )
            )
        finally:
            rescue.cancel()

    async def hangup(self) -> None:
        await self.participants["agent"].hangup()
        await self.participants["customer"].wait_for("call.ended", timeout=STEP_TIMEOUT)

    async def close(self) -> None:
        for participant in self.participants.values():
            with contextlib.suppress(Exception):
                await participant.close()


# ---------------------------------------------------------------------------------------------
# phases


async def source_calls(
    base: str, agents: list[str], count: int, seconds: float, noise: int, limit: float
) -> list[uuid.UUID]:
    """The batch load's inputs: `count` calls at once, recorded and composed (not measured)."""
    calls = []
    try:
        for i in range(count):
            path = await asyncio.to_thread(issue_load_ticket, i)
            call = BenchCall(noise)
            calls.append(call)
            await call.connect(base, agents[i], path)
        await asyncio.sleep(seconds)
        for call in calls:
            await call.hangup()
    finally:
        for call in calls:
            await call.close()
    call_ids = [c.call_id for c in calls]
    began = time.monotonic()
    while time.monotonic() - began < limit:
        states = await asyncio.to_thread(recording_states, call_ids)
        if len(states) == count and all(s == "ready" for s in states.values()):
            return await asyncio.to_thread(recording_ids, call_ids)
        if any(s == "failed" for s in states.values()):
            raise RuntimeError(f"a source recording failed to compose: {states}")
        await asyncio.sleep(1)
    raise TimeoutError(f"the source recordings were not composed within {limit:.0f} s")


async def measured_call(
    base: str,
    agent_name: str,
    index: int,
    args: argparse.Namespace,
    label: str,
    processes: dict[str, Any],
    batch: dict[str, Any],
    feeder: Feeder | None,
) -> dict[str, Any]:
    path = await asyncio.to_thread(stack.issue_ticket, index)
    call = BenchCall(args.noise)
    lags: list[float] = []
    monitor = None
    try:
        await call.connect(base, agent_name, path)
        customer, agent = call.participants["customer"], call.participants["agent"]
        (c_audio, c_video), (a_audio, a_video) = call.tracks["customer"], call.tracks["agent"]
        received = {
            "customer": Received(customer, AGENT_ID, a_video, a_audio),
            "agent": Received(agent, CUSTOMER_ID, c_video, c_audio),
        }
        deadline = time.monotonic() + MEDIA_TIMEOUT
        while not all(r.arrivals for r in received.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label}: no decoded video from the other side")
            await asyncio.sleep(0.1)
        await asyncio.sleep(args.warmup)
        monitor = asyncio.ensure_future(stack.loop_lag_monitor(lags))
        window = stack.CpuWindow(processes)
        window.start()
        batch_before = tree_cpu(batch)
        start = {role: r.mark() for role, r in received.items()}
        load_before = stack.load_average()
        t0 = start["customer"]["at"]
        while (left := t0 + args.call_seconds - time.monotonic()) > 0:
            await asyncio.sleep(min(left, PROGRESS_EVERY_S))
            now = {role: r.mark() for role, r in received.items()}
            kept = {role: received[role].figures(start[role], now[role]) for role in received}
            print(
                f"  {label} {now['customer']['at'] - t0:5.0f} s: kept -> customer "
                f"{_pct(kept['customer']['kept_ratio'])}, -> agent "
                f"{_pct(kept['agent']['kept_ratio'])}; load {stack.load_average()}",
                flush=True,
            )
        end = {role: r.mark() for role, r in received.items()}
        cpu = window.stop()
        batch_cpu = tree_cpu(batch) - batch_before
        load_after = stack.load_average()
        monitor.cancel()
        coverage = (
            feeder.window(t0, end["customer"]["at"], args.compose_workers) if feeder else None
        )
        await asyncio.sleep(1.0)  # frames of the window still in flight
        directions = {role: received[role].figures(start[role], end[role]) for role in received}
        await call.hangup()
    finally:
        if monitor is not None:
            monitor.cancel()
        await call.close()
    wall = cpu["wall"]
    ordered = sorted(lags)
    row: dict[str, Any] = {
        "call_id": call.call_id,
        "seconds": round(wall, 1),
        # keyed by the receiving side: "customer" = what the customer decoded of the agent
        "to_customer": directions["customer"],
        "to_agent": directions["agent"],
        "media_worker_cpu_pct": round(100 * cpu["cpu"]["media worker"] / wall, 1),
        "clients_cpu_pct": round(100 * cpu["cpu"]["clients"] / wall, 1),
        "batch_cpu_pct": round(100 * batch_cpu / wall, 1),
        "cpu_busy_pct": [round(x, 1) for x in cpu["cpu_busy_pct"]],
        "cpu_steal_pct": [round(x, 1) for x in cpu["cpu_steal_pct"]],
        "client_loop_lag_p99_ms": _ms(ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0),
        "client_loop_lag_max_ms": _ms(ordered[-1] if ordered else 0),
        "missed_media_ready": call.rescued[0],
        "load_average_before": load_before,
        "load_average_after": load_after,
        "batch": coverage,
        "compose_workers": args.compose_workers,
    }
    row["kept_ratio"] = min(
        row["to_customer"]["kept_ratio"] or 0, row["to_agent"]["kept_ratio"] or 0
    )
    row["client_limited"] = bool(
        min(d["sender_fps"] for d in directions.values()) < 0.95 * FPS
        or (row["client_loop_lag_p99_ms"] or 0) > 100
    )
    return row


def _pct(ratio: float | None) -> str:
    return "   n/a" if ratio is None else f"{100 * ratio:6.2f}%"


def print_window(label: str, row: dict[str, Any]) -> None:
    print(
        f"{label} call ({row['seconds']:.0f} s window), load average "
        f"{row['load_average_before']} -> {row['load_average_after']}:"
    )
    for key, name in (("to_customer", "agent -> customer"), ("to_agent", "customer -> agent")):
        d = row[key]
        print(
            f"  {name}: video kept {_pct(d['kept_ratio'])} ({d['kept']}/{d['sent']}), min "
            f"{d['min_fps_5s']} fps per 5 s, longest gap {d['max_gap_ms']} ms, latency "
            f"p50/p99 {d['latency_p50_ms']}/{d['latency_p99_ms']} ms; audio "
            f"{_pct(d['audio_ratio'])} ({d['audio_decoded']}/{d['audio_sent']}); "
            f"unreadable {d['unreadable']}, reconnects {d['reconnects']}"
        )
    busy = ", ".join(
        f"CPU {i} {b:.0f}% (steal {s:.0f}%)"
        for i, (b, s) in enumerate(zip(row["cpu_busy_pct"], row["cpu_steal_pct"], strict=True))
    )
    print(
        f"  CPU: media worker {row['media_worker_cpu_pct']}% of a core, clients "
        f"{row['clients_cpu_pct']}%, batch workers {row['batch_cpu_pct']}%; {busy}; client "
        f"loop lag p99 {row['client_loop_lag_p99_ms']} ms (max {row['client_loop_lag_max_ms']})"
        + ("; CLIENT-LIMITED" if row["client_limited"] else "")
    )
    batch = row["batch"]
    if batch:
        print(
            f"  batch in the window: {row['compose_workers']} compositions running "
            f"{_pct(batch['all_compositions_running_share'])} of the time (mean "
            f"{batch['mean_compositions_running']}), a QC run "
            f"{_pct(batch['qc_running_share'])}; ended: {batch['compose']['finished']} "
            f"compositions (mean {batch['compose']['mean_s']} s, {batch['compose']['failed']} "
            f"failed), {batch['qc']['finished']} QC runs (mean {batch['qc']['mean_s']} s, "
            f"{batch['qc']['failed']} failed)"
        )


def print_pipeline(label: str, p: dict[str, Any]) -> None:
    if "hangup_to_ready_s" not in p:
        print(f"  {label}: {p}")
        return
    print(
        f"  {label}: recording ready {p['hangup_to_ready_s']} s (compose queue "
        f"{p['compose_queue_s']}, media job sealing {p['capture_wait_s']}, composing "
        f"{p['compose_s']}), QC report {p['qc_state']} {p['hangup_to_qc_done_s']} s (QC "
        f"queue {p['qc_queue_s']}, QC {p['qc_s']}); {p['recording_seconds']} s recorded"
    )


async def run(args: argparse.Namespace, st: BatchStack, agents: list[str]) -> dict[str, Any]:
    import psutil

    stack_cpu = {
        "media worker": psutil.Process(st.worker_pid),
        "clients": psutil.Process(),
    }
    batch = st.batch_processes()
    sources = args.compose_workers + 1
    began = time.monotonic()
    print(
        f"batch inputs: {sources} source calls of {args.source_seconds:.0f} s at once...",
        flush=True,
    )
    recordings = await source_calls(
        st.base_url, agents, sources, args.source_seconds, args.noise, args.ready_timeout
    )
    print(f"  recorded and composed in {time.monotonic() - began:.0f} s", flush=True)
    await asyncio.sleep(args.settle)

    out: dict[str, Any] = {}
    print(f"idle call: load average {stack.load_average()}", flush=True)
    out["idle"] = await measured_call(
        st.base_url, agents[sources], sources, args, "idle", stack_cpu, batch, None
    )
    print_window("idle", out["idle"])
    out["idle"]["pipeline"] = await wait_pipeline(out["idle"]["call_id"], args.ready_timeout)
    print_pipeline("idle hang-up ->", out["idle"]["pipeline"])
    await asyncio.sleep(args.settle)

    feeder = Feeder(recordings[:-1], recordings[-1])
    feeding = asyncio.ensure_future(feeder.run())
    try:
        if not await feeder.wait_running(args.compose_workers):
            print("  WARNING: the batch jobs did not all start within 120 s", flush=True)
        await asyncio.sleep(args.settle)
        print(f"loaded call: load average {stack.load_average()}", flush=True)
        index = sources + 1
        out["loaded"] = await measured_call(
            st.base_url, agents[index], index, args, "loaded", stack_cpu, batch, feeder
        )
        print_window("loaded", out["loaded"])
        out["loaded"]["pipeline"] = await wait_pipeline(
            out["loaded"]["call_id"], args.ready_timeout
        )
        print_pipeline("loaded hang-up ->", out["loaded"]["pipeline"])
    finally:
        feeder.feeding = False
        try:
            await asyncio.wait_for(feeding, timeout=DRAIN_S)
        except TimeoutError:  # stopping the workers kills their work horses
            print(f"  batch jobs still running {DRAIN_S:.0f} s after the end: stopped", flush=True)
    out["feeder_errors"] = feeder.errors[:5]
    out["batch_jobs_ended"] = len(feeder.ended)
    await asyncio.to_thread(drop_superseded_files, recordings[:-1])
    return out


def drop_superseded_files(recording_ids: list[uuid.UUID]) -> None:
    """Each recomposition writes a new MP4 and keeps the earlier ones (evidence); of the
    load's own source recordings only the last is kept, so runs do not fill the disk."""
    from apps.recordings.actions.composition import composed_key
    from apps.recordings.models import Recording
    from apps.recordings.storage import get_storage

    storage = get_storage()
    for recording in Recording.objects.filter(pk__in=recording_ids):
        for attempt in range(1, recording.compose_attempts + 1):
            key = composed_key(call_id=recording.call_id, attempt=attempt)
            if key != recording.composed_key and storage.exists(key):
                storage.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--call-seconds", type=float, default=300.0, help="measured window of each call (300)"
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of media before the window (5)"
    )
    parser.add_argument(
        "--source-seconds",
        type=float,
        default=60.0,
        help="length of the source calls the batch jobs compose and inspect (60)",
    )
    parser.add_argument(
        "--compose-workers", type=int, default=2, help="compose workers = compositions at once (2)"
    )
    parser.add_argument(
        "--noise",
        type=int,
        default=40,
        help="luma noise of the pattern cameras (40, as call_setup.py: a camera's bitrate)",
    )
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between phases (5)")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=900.0,
        help="longest wait for the source recordings, and for a measured call's recording and QC "
        "report after hang-up (900)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="nice of the media worker (0, production's default; negative needs root)",
    )
    stack.add_stack_arguments(parser)
    args = parser.parse_args()
    env = stack.configure(args)
    pin_cpus = not args.no_pin and stack.can_pin()
    if pin_cpus:
        stack.pin(stack.CLIENT_CPUS)  # the SDK clients run in this process
    layout = stack.cpu_layout() + ("" if pin_cpus else " (NOT pinned)")
    print(
        f"live call under batch work: {args.call_seconds:.0f} s per call; {layout}, "
        f"{args.compose_workers} compose + 1 QC workers on any CPU; load average "
        f"{stack.load_average()}",
        flush=True,
    )
    stack.setup_django(args)
    agents = stack.prepare_database(args.compose_workers + 3)
    fail_leftovers()
    with BatchStack(
        env, args.compose_workers, pin_cpus=pin_cpus, worker_nice=args.worker_nice
    ) as st:
        priorities = st.batch_priorities()
        for name, text in priorities.items():
            print(f"  {name} worker: {text}", flush=True)
        out = asyncio.run(run(args, st, agents))
    idle, loaded = out["idle"], out["loaded"]
    ratio = round(loaded["kept_ratio"] / idle["kept_ratio"], 4) if idle["kept_ratio"] else None
    print(f"\nframes kept (worst direction), {args.call_seconds:.0f} s each; {layout}")
    print(f"  idle   {_pct(idle['kept_ratio'])}  (load average {idle['load_average_after']})")
    print(f"  loaded {_pct(loaded['kept_ratio'])}  (load average {loaded['load_average_after']})")
    print(f"  loaded / idle {ratio}; target: >= {100 * TARGET:.0f}% kept under load: "
          + ("met" if loaded["kept_ratio"] >= TARGET else "MISSED")
          + (" (client-limited window)" if loaded["client_limited"] else ""))  # fmt: skip
    print("hang-up -> recording ready -> QC report done:")
    print_pipeline("idle  ", idle["pipeline"])
    print_pipeline("loaded", loaded["pipeline"])
    print(f"load average at the end {stack.load_average()}")
    report = {
        "call_seconds": args.call_seconds,
        "source_seconds": args.source_seconds,
        "compose_workers": args.compose_workers,
        "noise": args.noise,
        "cpu_layout": layout,
        "batch_workers": priorities,
        "target_kept": TARGET,
        "idle": idle,
        "loaded": loaded,
        "loaded_over_idle": ratio,
        "target_met": loaded["kept_ratio"] >= TARGET,
        "feeder_errors": out["feeder_errors"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
