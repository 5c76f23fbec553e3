"""Shared pieces of benchmarks/call_setup.py and benchmarks/media_capacity.py.

* The stack: a dedicated database and Redis database, Daphne + `run_router` + exactly one media
  worker (`rqworker media --worker-class media_worker.worker.MediaWorker`) as subprocesses,
  the media worker pinned to CPU 0 and everything else (Daphne, router, load clients, this
  process) to CPU 1.
* Bench agents (`mbench000`...) and entry tickets for bench customers (`MBENCH00000`...).
* Light load clients: SDK `Participant`s whose media are pre-encoded VP8/Opus loops (the
  packets of `forwarding_floor._pre_encode`, so the floor and the job carry the same bits) and
  whose received media are counted and checked without decoding: every received video frame's
  bytes are looked up among the frames the peer sends (exact match = right sender, right
  frame, intact), which also gives the one-way latency through the media job.

Not a library: imported by the two scripts only. Nothing here runs against a real database
without being asked: the bench database's calls are ended and its agents set offline at start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
for _path in (ROOT, ROOT / "sdk" / "python", BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/remotebank_bench"
# Not db 0: RQ's queue keys (rq:queue:media) carry no prefix, and the test suites of other
# checkouts run their media workers on redis://127.0.0.1:6379/0. A worker of theirs would take
# our jobs (and ours theirs). Pub/sub channels ignore the db number, hence CHANNEL_PREFIX too.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
DEFAULT_CHANNEL_PREFIX = "rbbench"
# CPU of the media worker (and the floor's forwarder), and CPUs of everything else. Kept in
# the environment so spawned load processes see what the parent was told.
WORKER_CPU = int(os.environ.get("BENCH_WORKER_CPU", "0"))
CLIENT_CPUS = frozenset(int(c) for c in os.environ.get("BENCH_CLIENT_CPUS", "1").split(","))
AGENT_USERNAME = "mbench{:03d}"
AGENT_EMPLOYEE_NO = "MB{:04d}"
CUSTOMER_REFERENCE = "MBENCH{:05d}"
BUSINESS = "debit_pin_reset"  # a retail business type of seed_demo
# Login is not measured: bench agents get the MD5 hasher of the test settings
# (TEST_FAST_PASSWORD_HASHER, honoured with DEBUG on only), so logging in 40 agents takes
# milliseconds instead of 40 PBKDF2 rounds on the clients' core.
BENCH_PASSWORD = "bench-media-pw-1"
LOG_DIR = ROOT / "var" / "bench"
LOOP_CACHE = LOG_DIR / "loops"


# ---------------------------------------------------------------------------------------------
# environment, CPUs, machine load


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", default=DEFAULT_DATABASE_URL, help=f"default {DEFAULT_DATABASE_URL}"
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help=f"default {DEFAULT_REDIS_URL} (db 0 is where other checkouts' tests run RQ)",
    )
    parser.add_argument(
        "--channel-prefix", default=DEFAULT_CHANNEL_PREFIX, help="CHANNEL_PREFIX of every process"
    )
    parser.add_argument(
        "--stack-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for Daphne, router and worker (repeatable), e.g. "
        "MEDIA_STATS_SECONDS=3600 to see what a setting costs",
    )
    parser.add_argument(
        "--worker-cpu", type=int, default=WORKER_CPU, help="CPU of the media worker (0)"
    )
    parser.add_argument(
        "--client-cpus",
        default=",".join(map(str, sorted(CLIENT_CPUS))),
        help="CPUs of Daphne, router and load clients, comma-separated (1); on a bigger "
        "machine give the clients more than one so they are not the limit",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the media worker to CPU 0 and the rest to CPU 1",
    )


def configure(args: argparse.Namespace, *, worker_capacity: int = 60) -> dict[str, str]:
    """Set this process's environment for Django and return the env for the subprocesses."""
    global WORKER_CPU, CLIENT_CPUS
    WORKER_CPU = args.worker_cpu
    CLIENT_CPUS = frozenset(int(c) for c in str(args.client_cpus).split(","))
    if WORKER_CPU in CLIENT_CPUS:
        raise SystemExit("--worker-cpu must not be one of --client-cpus")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="remotebank.settings",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        CHANNEL_PREFIX=args.channel_prefix,
        MEDIA_WORKER_CAPACITY=str(worker_capacity),
        TEST_FAST_PASSWORD_HASHER="1",
        PYTHONUNBUFFERED="1",
        BENCH_WORKER_CPU=str(WORKER_CPU),
        BENCH_CLIENT_CPUS=",".join(map(str, sorted(CLIENT_CPUS))),
        # Each call has an agent of its own; one whose call ended must not come back as
        # "ready" 30 s later (the longest-idle agent, with its socket closed) and ring out the
        # next customer for RING_TIMEOUT_SECONDS.
        AFTER_CALL_WORK_SECONDS="3600",
    )
    os.environ.setdefault("LOG_LEVEL", "INFO")
    env = dict(os.environ)
    for item in getattr(args, "stack_env", []):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--stack-env wants KEY=VALUE, not {item!r}")
        env[key] = value
    return env


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin(cpus: int | frozenset[int]) -> None:
    """Pin the calling process (and what it starts later) to `cpus`, if there are two CPUs."""
    if can_pin():
        os.sched_setaffinity(0, {cpus} if isinstance(cpus, int) else set(cpus))


def _pin_worker() -> None:  # preexec_fn of the media worker
    pin(WORKER_CPU)


def _pin_clients() -> None:
    pin(CLIENT_CPUS)


def cpu_layout() -> str:
    clients = ",".join(map(str, sorted(CLIENT_CPUS)))
    return f"media worker on CPU {WORKER_CPU}, Daphne/router/clients on CPU {clients}"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


class CpuWindow:
    """CPU time of given processes and busy share of each CPU between start() and stop()."""

    def __init__(self, processes: dict[str, Any]) -> None:
        self.processes = processes  # name -> psutil.Process
        self._cpu0: dict[str, float] = {}
        self._percpu0: list[Any] = []
        self._t0 = 0.0

    @staticmethod
    def _seconds(process: Any) -> float:
        times = process.cpu_times()  # the whole process: every thread
        return times.user + times.system

    def start(self) -> None:
        import psutil

        self._cpu0 = {name: self._seconds(p) for name, p in self.processes.items()}
        self._percpu0 = psutil.cpu_times(percpu=True)
        self._t0 = time.monotonic()

    def stop(self) -> dict[str, Any]:
        import psutil

        wall = time.monotonic() - self._t0
        cpu = {name: self._seconds(p) - self._cpu0[name] for name, p in self.processes.items()}
        busy = []
        steal = []
        for before, after in zip(self._percpu0, psutil.cpu_times(percpu=True), strict=True):
            total = sum(after) - sum(before)
            idle = (after.idle + getattr(after, "iowait", 0)) - (
                before.idle + getattr(before, "iowait", 0)
            )
            busy.append(100 * (1 - idle / total) if total > 0 else 0.0)
            steal.append(
                100 * (getattr(after, "steal", 0) - getattr(before, "steal", 0)) / total
                if total > 0
                else 0.0
            )
        return {"wall": wall, "cpu": cpu, "cpu_busy_pct": busy, "cpu_steal_pct": steal}


# ---------------------------------------------------------------------------------------------
# database


def ensure_database(url: str) -> None:
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(args: argparse.Namespace) -> None:
    ensure_database(args.database_url)
    import logging

    import django

    django.setup()
    # This process only issues tickets and prepares rows: keep its INFO/WARNING audit lines
    # out of the figures (the subprocesses log to var/bench/).
    logging.disable(logging.WARNING)


def prepare_database(agents: int) -> list[str]:
    """Migrate, seed, end leftovers of earlier runs, and make `agents` bench agents.

    Every call still open in the bench database is ended and every agent set offline, so the
    router can only pair our customers with our agents (routing_throughput.py, which shares
    the database, leaves hundreds of queued calls and ready agents behind).
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone

    from apps.accounts.models import AgentProfile, Presence, Skill
    from apps.calls.models import Call, CallOffer, CallState, OfferState

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    now = timezone.now()
    CallOffer.objects.filter(state=OfferState.PENDING).update(
        state=OfferState.EXPIRED, responded_at=now
    )
    Call.objects.exclude(state=CallState.ENDED).update(
        state=CallState.ENDED, end_reason="system", ended_at=now
    )
    AgentProfile.objects.exclude(presence=Presence.OFFLINE).update(presence=Presence.OFFLINE)
    group = Group.objects.get(name="agent")
    skill = Skill.objects.get(code="retail")
    users = get_user_model()
    names = []
    for i in range(agents):
        name = AGENT_USERNAME.format(i)
        user, created = users.objects.get_or_create(
            username=name, defaults={"last_name": "压测", "first_name": f"{i:03d}"}
        )
        if created or not user.password.startswith("md5$"):
            user.set_password(BENCH_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(group)
        profile, _ = AgentProfile.objects.get_or_create(
            user=user, defaults={"employee_no": AGENT_EMPLOYEE_NO.format(i)}
        )
        profile.skills.set([skill])
        names.append(name)
    return names


def issue_ticket(index: int) -> str:
    """A fresh entry link path for bench customer `index` (sync ORM: not on an event loop)."""
    from apps.accounts.models import ApiClient
    from apps.calls.actions.tickets import issue_entry_ticket

    client = ApiClient.objects.get(key_id="demo-mobile-bank")
    _, token = issue_entry_ticket(
        client=client,
        customer_reference=CUSTOMER_REFERENCE.format(index),
        customer_name="",
        business_code=BUSINESS,
        location=None,
    )
    return f"/h5/enter/{token}"


# ---------------------------------------------------------------------------------------------
# the processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """Daphne + router (CPU 1) and one media worker (CPU 0), with the bench environment."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        pin_cpus: bool = True,
        host: str = "127.0.0.1",
        worker_nice: int = 0,
    ) -> None:
        self.env = env
        # benchmarks/network.py: the media worker ahead of the machine's other load, as on a
        # media node of its own (a negative value needs root)
        self.worker_nice = worker_nice
        self.host = host  # Daphne's address (benchmarks/network.py: the lab's server address)
        self.pin_cpus = pin_cpus and can_pin()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.base_url = ""
        self._files: list[Any] = []

    def _start(self, name: str, argv: list[str], worker: bool) -> subprocess.Popen[bytes]:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        path = LOG_DIR / f"{name}-{os.getpid()}.log"
        log = open(path, "w")  # noqa: SIM115 - closed in stop()
        self._files.append(log)
        preexec: Callable[[], None] | None = None
        if self.pin_cpus:
            preexec = _pin_worker if worker else _pin_clients
        if worker and self.worker_nice:
            nice, pin = self.worker_nice, preexec

            def preexec() -> None:
                os.nice(nice)
                if pin is not None:
                    pin()

        proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )
        self.procs[name] = proc
        self.logs[name] = path
        return proc

    def start(self) -> Stack:
        clear_media_queue(self.env["REDIS_URL"])
        port = _free_port()
        self.base_url = f"http://{self.host}:{port}"
        daphne = self._start(
            "daphne",
            ["-m", "remotebank.serve", "-b", self.host, "-p", str(port)],
            False,
        )
        self._start("router", ["manage.py", "run_router"], False)
        worker = self._start(
            "media-worker",
            ["manage.py", "rqworker", "media", "--worker-class", "media_worker.worker.MediaWorker"],
            True,
        )
        self._wait_port(port, daphne)
        self._wait_worker(worker)
        return self

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.logs[name]}")

    def _wait_port(self, port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with socket.socket() as s:
                if s.connect_ex((self.host, port)) == 0:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"Daphne is not listening on {port}")

    def _wait_worker(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        """Until the media worker has registered with RQ (it then takes jobs at once)."""
        import redis
        from rq import Queue, Worker

        connection = redis.Redis.from_url(self.env["REDIS_URL"])
        queue = Queue("media", connection=connection)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if any(
                getattr(w, "pid", None) == proc.pid
                for w in Worker.all(connection=connection, queue=queue)
            ):
                return
            time.sleep(0.2)
        raise TimeoutError("the media worker did not register with RQ")

    @property
    def worker_pid(self) -> int:
        return self.procs["media-worker"].pid

    def stop(self) -> None:
        for name in ("router", "daphne", "media-worker"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for log in self._files:
            log.close()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def clear_media_queue(redis_url: str) -> None:
    """Jobs an aborted earlier run left queued would start on our worker: drop them."""
    import redis
    from rq import Queue

    Queue("media", connection=redis.Redis.from_url(redis_url)).empty()


# ---------------------------------------------------------------------------------------------
# the forwarding floor's forwarder, pinned (a picklable target for its spawn context)


def pinned_forwarder_process(conn: Any) -> None:
    pin(WORKER_CPU)
    import forwarding_floor

    profile = os.environ.get("BENCH_PROFILE_FLOOR")  # "delay,seconds,path": py-spy ourselves
    if profile:
        import threading

        delay, seconds, path = profile.split(",", 2)
        threading.Timer(
            float(delay), start_py_spy, (os.getpid(), float(seconds), Path(path))
        ).start()

    forwarding_floor.forwarder_process(conn)


def run_floor(
    calls: int, duration: float, warmup: float, video_kbps: int, profile: str | None = None
) -> dict[str, Any]:
    """forwarding_floor.run with its forwarder on the worker's CPU, its clients on theirs.

    `profile` ("delay,seconds,path") has the forwarder py-spy itself after `delay` seconds.
    """
    import forwarding_floor

    original = forwarding_floor.forwarder_process
    forwarding_floor.forwarder_process = pinned_forwarder_process  # type: ignore[assignment]
    if profile:
        os.environ["BENCH_PROFILE_FLOOR"] = profile
    try:
        return forwarding_floor.run(calls, duration, warmup, video_kbps, 2)
    finally:
        forwarding_floor.forwarder_process = original  # type: ignore[assignment]
        os.environ.pop("BENCH_PROFILE_FLOOR", None)


# ---------------------------------------------------------------------------------------------
# light load clients (run inside load processes)


def loop_media(participant_id: int, video_kbps: int) -> tuple[list[bytes], list[bytes]]:
    """The pre-encoded VP8 frames and Opus packets of one participant, cached under var/."""
    import av
    import forwarding_floor as ff

    key = (
        f"p{participant_id}-{video_kbps}k-{ff.LOOP_SECONDS}s-{ff.WIDTH}x{ff.HEIGHT}@{ff.FPS}"
        f"-n{ff.TEXTURE_NOISE}-av{av.__version__}.pkl"
    )
    path = LOOP_CACHE / key
    with contextlib.suppress(OSError, pickle.UnpicklingError, EOFError), path.open("rb") as f:
        return pickle.load(f)
    video, audio = asyncio.run(ff._pre_encode(participant_id, video_kbps))
    LOOP_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump((video, audio), f)
    tmp.replace(path)
    return video, audio


class LoopSource:
    """A participant's pre-encoded stream, paced in real time, as av.Packet (forwarding_floor's
    LoopTrack plus what the job needs from a camera: a keyframe when one is asked for).

    The VP8 loop has one keyframe, at position 0; a PLI makes the next frame position 0.
    `sent_at[position]` is when that loop position was last handed to the sender.
    """

    def __init__(
        self, kind: str, frames: list[bytes], step: int, clock_rate: int, period: float
    ) -> None:
        self.kind = kind
        self.frames = frames
        self.step = step
        self.time_base = fractions.Fraction(1, clock_rate)
        self.period = period
        self.count = 0  # frames handed out (pacing, pts)
        self.position = 0  # position in the loop
        self.keyframes_forced = 0
        self.sent_at = [0.0] * len(frames)
        self._jump = False
        self._start: float | None = None

    def request_keyframe(self) -> None:
        if self.kind == "video" and self.position != 0:
            self._jump = True

    async def next_packet(self) -> Any:
        import av

        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            wait = self._start + self.count * self.period - now
            if wait > 0:
                await asyncio.sleep(wait)
        if self._jump:
            self._jump = False
            if self.position != 0:
                self.position = 0
                self.keyframes_forced += 1
        packet = av.Packet(self.frames[self.position])
        packet.pts = self.count * self.step
        packet.time_base = self.time_base
        self.sent_at[self.position] = time.monotonic()
        self.count += 1
        self.position = (self.position + 1) % len(self.frames)
        return packet


def make_source_track(source: LoopSource) -> Any:
    """A MediaStreamTrack over a LoopSource that passes keyframe requests on to it."""
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class SourceTrack(MediaStreamTrack):
        kind = source.kind

        async def recv(self) -> Any:
            if self.readyState != "live":
                raise MediaStreamError
            return await source.next_packet()

        def request_keyframe(self) -> None:
            source.request_keyframe()

    return SourceTrack()


class DirectRelay:
    """Stands in for the SDK session's MediaRelay (`MediaSession._relay`): the sender gets the
    source track itself, so PLIs reach `request_keyframe` (a relay proxy would swallow them)
    and no relay task sits between source and sender. Fine for one connection per source."""

    def subscribe(self, track: Any, buffered: bool = True) -> Any:
        return track


def install_light_clients() -> None:
    """Make the SDK's media connections hand over encoded frames instead of decoding them.

    Patches the RTCPeerConnection the SDK session module uses (in this load process only)
    to call media_worker.aiortc_forwarding.enable_forwarding: received frames stay encoded
    (no VP8/Opus decode), and PLIs that reach a sender call its track's request_keyframe.
    """
    import remotebank_client.session as session
    from aiortc import RTCPeerConnection

    from media_worker import aiortc_forwarding as fwd

    if getattr(session.RTCPeerConnection, "_bench_forwarding", False):
        return

    class ForwardingPeerConnection(RTCPeerConnection):
        _bench_forwarding = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            fwd.enable_forwarding(self)

    session.RTCPeerConnection = ForwardingPeerConnection  # type: ignore[misc]

    # Count the RTCP the job's receivers send to our senders (REMB, NACK, PLI, RR...).
    from aiortc import RTCRtpSender

    handle = RTCRtpSender._handle_rtcp_packet

    async def _handle_rtcp_packet(self: Any, packet: Any) -> None:
        name = type(packet).__name__.removeprefix("Rtcp").removesuffix("Packet")
        label = _RTCP_FEEDBACK.get((name, getattr(packet, "fmt", None)), name)
        RTCP_RECEIVED[label] = RTCP_RECEIVED.get(label, 0) + 1
        await handle(self, packet)

    RTCRtpSender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]


_RTCP_FEEDBACK = {
    ("Rtpfb", 1): "NACK",
    ("Psfb", 1): "PLI",
    ("Psfb", 4): "FIR",
    ("Psfb", 15): "REMB",
}
RTCP_RECEIVED: dict[str, int] = {}


class ReceivedMedia:
    """Counts what one participant receives; checks each video frame against known streams."""

    def __init__(self, expected_sender: int, index: dict[int, tuple[int, int]], sources: dict):
        self.expected_sender = expected_sender
        self.index = index  # hash(frame bytes) -> (participant id, loop position)
        self.sources = sources  # participant id -> {"video": LoopSource, ...}
        self.video = 0
        self.audio = 0
        self.valid = 0
        self.wrong_sender = 0
        self.unknown = 0
        self.first_video_at: float | None = None
        self.first_audio_at: float | None = None
        self.latencies: list[float] = []

    def on_video(self, packet: Any, info: Any) -> None:
        now = time.monotonic()
        self.video += 1
        if self.first_video_at is None:
            self.first_video_at = now
        hit = self.index.get(hash(bytes(packet)))
        if hit is None:
            self.unknown += 1
            return
        sender, position = hit
        if sender != self.expected_sender:
            self.wrong_sender += 1
            return
        self.valid += 1
        sent = self.sources[sender]["video"].sent_at[position]
        if sent:
            self.latencies.append(now - sent)

    def on_audio(self, packet: Any, info: Any) -> None:
        self.audio += 1
        if self.first_audio_at is None:
            self.first_audio_at = time.monotonic()

    def snapshot(self) -> dict[str, int]:
        return {
            "video": self.video,
            "audio": self.audio,
            "valid": self.valid,
            "wrong_sender": self.wrong_sender,
            "unknown": self.unknown,
        }


def attach_receiver(pc: Any, received: ReceivedMedia) -> bool:
    """Point the taps of `pc`'s receivers at `received`; False if a tap is missing."""
    from media_worker import aiortc_forwarding as fwd

    found = 0
    for transceiver in pc.getTransceivers():
        tap = fwd.find_tap(transceiver.receiver)
        if tap is None:
            continue
        tap.set_sink(received.on_video if transceiver.kind == "video" else received.on_audio)
        found += 1
    return found == 2


async def loop_lag_monitor(lags: list[float], period: float = 0.1) -> None:
    while True:
        before = time.perf_counter()
        await asyncio.sleep(period)
        lags.append(time.perf_counter() - before - period)


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default); None for no values."""
    if not values:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))


# ---------------------------------------------------------------------------------------------
# profiling (optional: py-spy is not a project dependency; `pip install py-spy` to use it)


def py_spy_path() -> str | None:
    import shutil

    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def start_py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Sample `pid` (all threads, busy samples only) into collapsed stacks at `out`."""
    exe = py_spy_path()
    if exe is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log").open("w")
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "100",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_pin_clients if can_pin() else None,
    )


def summarize_profile(path: Path, top: int = 25) -> str:
    """Self and inclusive share per function of the samples in which an asyncio loop was busy.

    py-spy's idle detection does not work reliably here (threads blocked on a queue or in
    epoll_wait show as active), so only stacks under `run_forever` count, minus those waiting
    in the selector: what the event loop that carries the media spends its time on.
    """
    from collections import Counter

    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack_text.split(";")]
        if not any(f.startswith("BaseEventLoop.run_forever") for f in frames):
            continue
        if frames[-1].startswith(("EpollSelector.select", "BaseEventLoop._run_once")):
            idle += count
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no busy samples"
    lines = [f"{total} busy event-loop samples (+{idle} waiting in select); self time:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("inclusive time:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _frame_name(frame: str) -> str:
    """'func (path/file.py:12)' -> 'func (file.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name
