"""Call set-up time: from the customer's `queue.join` to the first decoded remote video frame.

Usage: .venv/bin/python benchmarks/call_setup.py [--calls 20] [--warmup-calls 1] [--gap 1]
                                              [--database-url URL] [--redis-url URL] [--json]

The real stack on loopback: Daphne + run_router (CPU 1) and exactly one media worker
(`rqworker media --worker-class media_worker.worker.MediaWorker`, CPU 0), with a dedicated
database and Redis database (benchmarks/_stack.py). Calls run one after another; for each, a
fresh bench agent logs in and goes ready, a customer redeems a fresh ticket and connects its
socket (not timed), then the clock starts as the customer sends `queue.join`. The agent
accepts the offer as soon as it arrives; both sides start media on `call.connected` through
the SDK with live sources (PatternVideoTrack 640x480 @ 15 fps with texture noise, encoded to
VP8 by aiortc; ToneAudioTrack, Opus) and decode what they receive, like a real client. The
clock stops at each end when its first remote video frame has been decoded (the SDK's
`first_remote_video_frame_at`); the frame's pattern is then checked to come from the other
side.

Per call and end, the time splits into:
  signaling  join -> `call.connected` at that end (routing, offer, accept)
  media      `call.connected` -> first decoded remote frame, itself split into
             job start    call.connected -> `media.ready` (RQ picks up the job, DB, layer)
             offer        media.ready -> `media.offer` sent (the SDK's ICE gathering)
             answer       media.offer sent -> job's answer applied
             transport    answer -> peer connection "connected" (ICE checks + DTLS)
             first frame  connected -> first decoded remote frame (keyframe through the job)

Median and p95 (linear interpolation, numpy's default) over --calls calls; the first
--warmup-calls calls (the media worker imports aiortc on its first job) are shown, not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as stack

CUSTOMER_ID, AGENT_ID = 1, 2
TEXTURE_NOISE = 40  # as forwarding_floor: the encoder spends a camera's bitrate
STEP_TIMEOUT = 30.0


def _stamp(participant: Any) -> dict[str, float]:
    """Record when each event type first arrives and each message type is first sent."""
    seen: dict[str, float] = {}
    dispatch = participant._dispatch
    send = participant._send

    def _dispatch(message: dict[str, Any]) -> None:
        seen.setdefault("event:" + message["type"], time.monotonic())
        dispatch(message)

    def _send(kind: str, fields: dict[str, Any]) -> Any:
        seen.setdefault("sent:" + kind, time.monotonic())
        return send(kind, fields)

    participant._dispatch = _dispatch
    participant._send = _send
    return seen


async def _first_frame(participant: Any, peer_id: int) -> bool:
    """Wait for the first decoded remote frame; True if frames decode as the peer's pattern."""
    from remotebank_client.media import decode_pattern

    await participant.next_video_frame(timeout=STEP_TIMEOUT)
    # The first decodable frames after the keyframe must carry the other side's id.
    for _ in range(5):
        decoded = decode_pattern(await participant.next_video_frame(timeout=STEP_TIMEOUT))
        if decoded is not None:
            return decoded[0] == peer_id
    return False


async def one_call(base: str, index: int, username: str) -> dict[str, Any]:
    from remotebank_client import Participant
    from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

    path = await asyncio.to_thread(stack.issue_ticket, index)
    agent = await Participant.agent(base, username, stack.BENCH_PASSWORD)
    customer = None
    try:
        await agent.set_presence("ready")
        customer = await Participant.customer(base, path)
        seen = {"customer": _stamp(customer), "agent": _stamp(agent)}
        marks: dict[str, float] = {}

        async def agent_side() -> bool:
            offer = await agent.wait_offer(timeout=STEP_TIMEOUT)
            marks["offer_seen"] = time.monotonic()
            await agent.accept(offer["offer_id"])
            await agent.wait_for("call.connected", timeout=STEP_TIMEOUT)
            await agent.start_media(
                ToneAudioTrack(880.0), PatternVideoTrack(AGENT_ID, noise=TEXTURE_NOISE)
            )
            return await _first_frame(agent, CUSTOMER_ID)

        async def customer_side() -> bool:
            marks["join"] = time.monotonic()
            await customer.join_queue()
            await customer.wait_for("call.connected", timeout=STEP_TIMEOUT)
            await customer.start_media(
                ToneAudioTrack(440.0), PatternVideoTrack(CUSTOMER_ID, noise=TEXTURE_NOISE)
            )
            return await _first_frame(customer, AGENT_ID)

        agent_task = asyncio.ensure_future(agent_side())
        await asyncio.sleep(0)  # the agent waits for the offer before the customer joins
        customer_ok, agent_ok = await asyncio.gather(customer_side(), agent_task)
        row: dict[str, Any] = {"call": index, "content_ok": customer_ok and agent_ok}
        t0 = marks["join"]

        def ms(t: float | None) -> float | None:
            return None if t is None else round(1000 * (t - t0), 1)

        row["offer_at_agent"] = ms(marks["offer_seen"])
        for role, p in (("customer", customer), ("agent", agent)):
            s = seen[role]
            media = p.media
            row[role] = {
                "connected": ms(s.get("event:call.connected")),
                # media.ready may also come inside call.connected (media_ready: true)
                "media_ready": ms(s.get("event:media.ready") or s.get("event:call.connected")),
                "offer_sent": ms(s.get("sent:media.offer")),
                "answered": ms(media.negotiated_at),
                "transport": ms(media.connected_at),
                "first_frame": ms(p.first_remote_video_frame_at),
            }
        await agent.hangup()
        await customer.wait_for("call.ended", timeout=STEP_TIMEOUT)
        return row
    finally:
        for p in (customer, agent):
            if p is not None:
                with contextlib.suppress(Exception):
                    await p.close()


PHASES = (
    ("signaling", None, "connected"),
    ("media", "connected", "first_frame"),
    ("  job start", "connected", "media_ready"),
    ("  offer", "media_ready", "offer_sent"),
    ("  answer", "offer_sent", "answered"),
    ("  transport", "answered", "transport"),
    ("  first frame", "transport", "first_frame"),
    ("total", None, "first_frame"),
)


def phase(row: dict[str, Any], role: str, start: str | None, end: str) -> float | None:
    values = row[role]
    b = values.get(end)
    a = 0.0 if start is None else values.get(start)
    return None if a is None or b is None else round(b - a, 1)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for role in ("customer", "agent"):
        out[role] = {}
        for name, start, end in PHASES:
            values = [v for r in rows if (v := phase(r, role, start, end)) is not None]
            out[role][name.strip()] = {
                "median_ms": stack.percentile(values, 50),
                "p95_ms": stack.percentile(values, 95),
                "n": len(values),
            }
    offers = [r["offer_at_agent"] for r in rows]
    out["offer_at_agent"] = {
        "median_ms": stack.percentile(offers, 50),
        "p95_ms": stack.percentile(offers, 95),
    }
    return out


def _quiet_close_race(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """aiortc 1.16 can run RTCPeerConnection.close() twice when the far end closes DTLS while
    the SDK closes too (InvalidStateError at teardown, after the figures are taken): count it
    instead of printing a traceback per call."""
    exc = context.get("exception")
    if isinstance(exc, asyncio.InvalidStateError) and "RTCPeerConnection.close" in repr(
        context.get("future")
    ):
        CLOSE_RACES[0] += 1
        return
    loop.default_exception_handler(context)


CLOSE_RACES = [0]


async def run_calls(base: str, agents: list[str], total: int, gap: float) -> list[dict]:
    asyncio.get_running_loop().set_exception_handler(_quiet_close_race)
    rows = []
    for index in range(total):
        row = await one_call(base, index, agents[index])
        row["loadavg_1m"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        c, a = row["customer"], row["agent"]
        print(
            f"  call {index:2d}: customer {c['first_frame']:7.1f} ms (signaling "
            f"{c['connected']:6.1f}), agent {a['first_frame']:7.1f} ms (signaling "
            f"{a['connected']:6.1f}); content {'ok' if row['content_ok'] else 'WRONG'}; "
            f"load {row['loadavg_1m']:.2f}",
            flush=True,
        )
        await asyncio.sleep(gap)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="measured calls (default 20)")
    parser.add_argument("--warmup-calls", type=int, default=1, help="calls not counted")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between calls")
    parser.add_argument("--json", action="store_true", help="also print one JSON object")
    stack.add_stack_arguments(parser)
    args = parser.parse_args()
    env = stack.configure(args)
    pin_cpus = not args.no_pin and stack.can_pin()
    if pin_cpus:
        stack.pin(stack.CLIENT_CPUS)  # the two SDK clients run in this process
    total = args.calls + args.warmup_calls
    print(
        f"call set-up: {total} sequential calls ({args.warmup_calls} warm-up), "
        + stack.cpu_layout()
        + ("" if pin_cpus else " (NOT pinned)")
        + f"; load average {stack.load_average()}",
        flush=True,
    )
    stack.setup_django(args)
    agents = stack.prepare_database(total)
    with stack.Stack(env, pin_cpus=pin_cpus) as st:
        rows = asyncio.run(run_calls(st.base_url, agents, total, args.gap))
    measured = rows[args.warmup_calls :]
    summary = summarize(measured)
    print(
        f"\n{len(measured)} calls, ms from the customer's queue.join (median / p95); "
        f"load average {stack.load_average()}"
    )
    print(f"  {'':14} {'customer':>17} {'agent':>17}")
    for name, _, _ in PHASES:
        key = name.strip()
        c, a = summary["customer"][key], summary["agent"][key]
        print(
            f"  {name:14} {c['median_ms']:7.1f} / {c['p95_ms']:7.1f} "
            f"{a['median_ms']:7.1f} / {a['p95_ms']:7.1f}"
        )
    o = summary["offer_at_agent"]
    print(f"  (offer reaches the agent {o['median_ms']:.1f} / {o['p95_ms']:.1f})")
    if CLOSE_RACES[0]:
        print(f"  ({CLOSE_RACES[0]} aiortc double-close errors at teardown, ignored)")
    if not all(r["content_ok"] for r in measured):
        print("  WARNING: some first frames did not decode as the other side's pattern")
    if args.json:
        print(json.dumps({"summary": summary, "calls": rows}))


if __name__ == "__main__":
    main()
