"""Calls between two Chromiums in network namespaces, shared by benchmarks/network.py and
tests/browser/test_shaped_link.py: the direct browser-to-browser baseline (a static page pair,
signaling relayed by this process through Playwright) and a RemoteBank call (the H5 page and
the workstation), and the browsers' getStats() figures of either.

Test support, imported by the benchmark and the shaped-link test.
"""

from __future__ import annotations

import itertools
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

CHROMIUM = "/usr/bin/chromium"
DIRECT_ORIGIN = "http://direct.test"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
SHANGHAI = {"latitude": 31.2304, "longitude": 121.4737, "accuracy": 25}
# The call's caps, as apps.calls.media.media_config() gives them to the RemoteBank pages
# (MEDIA_MAX_* settings): the direct pages apply the same.
CAPS = {"max_width": 640, "max_height": 480, "max_fps": 25, "max_bitrate_kbps": 800}

# The direct call: getUserMedia and sender parameters as static/js/media.js sets them, VP8
# only (what the media job forwards), the offer sent once ICE gathering is complete.
DIRECT_PAGE = """<!doctype html><meta charset=utf-8><title>direct</title>
<video id=remote autoplay playsinline muted></video>
<script>
const CAPS = %(caps)s;
let pc = null;
async function start(offer) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: {
      width: {ideal: CAPS.max_width, max: CAPS.max_width},
      height: {ideal: CAPS.max_height, max: CAPS.max_height},
      frameRate: {ideal: CAPS.max_fps, max: CAPS.max_fps},
    },
  });
  pc = new RTCPeerConnection();
  window.pc = pc;
  pc.ontrack = (e) => {
    const v = document.getElementById("remote");
    if (v.srcObject !== e.streams[0]) v.srcObject = e.streams[0];
    v.play().catch(() => null);
  };
  if (offer) await pc.setRemoteDescription({type: "offer", sdp: offer});
  // addTrack takes the offer's transceivers on the answering side, makes new ones otherwise
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  for (const t of pc.getTransceivers()) {
    if (t.receiver.track.kind === "video" && t.setCodecPreferences) {
      t.setCodecPreferences(RTCRtpReceiver.getCapabilities("video").codecs.filter(
        (c) => /vp8|rtx/i.test(c.mimeType)));
    }
  }
}
function gathered() {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}
function caps() {
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  const params = sender.getParameters();
  for (const e of params.encodings) {
    e.maxBitrate = CAPS.max_bitrate_kbps * 1000;
    e.maxFramerate = CAPS.max_fps;
  }
  params.degradationPreference = "maintain-framerate";
  return sender.setParameters(params).catch(() => {
    delete params.degradationPreference;
    return sender.setParameters(params);
  });
}
async function makeOffer() {
  await start();
  await pc.setLocalDescription(await pc.createOffer());
  await gathered();
  return pc.localDescription.sdp;
}
async function makeAnswer(sdp) {
  await start(sdp);
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered();
  await caps();
  return pc.localDescription.sdp;
}
async function acceptAnswer(sdp) {
  await pc.setRemoteDescription({type: "answer", sdp});
  await caps();
}
</script>
"""

# One sample of a connection's video figures (the inbound stream that carries the most bytes,
# the outbound camera stream, the selected candidate pair).
STATS_JS = """async (pc) => {
  if (!pc) return null;
  const report = await pc.getStats();
  const out = {t: performance.now() / 1000, in: null, out: null};
  let best = -1;
  let bestOut = -1;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video" && (s.bytesReceived || 0) > best) {
      best = s.bytesReceived || 0;
      out.in = {
        framesDecoded: s.framesDecoded || 0, fps: s.framesPerSecond || 0,
        freezeCount: s.freezeCount || 0, freezeDuration: s.totalFreezesDuration || 0,
        packetsLost: s.packetsLost || 0, packetsReceived: s.packetsReceived || 0,
        bytesReceived: s.bytesReceived || 0, keyFrames: s.keyFramesDecoded || 0,
        jitterBufferDelay: s.jitterBufferDelay || 0,
        jitterBufferEmitted: s.jitterBufferEmittedCount || 0,
        width: s.frameWidth || 0, height: s.frameHeight || 0,
        nacks: s.nackCount || 0, plis: s.pliCount || 0,
      };
    }
    if (s.type === "outbound-rtp" && s.kind === "video" && (s.bytesSent || 0) > bestOut) {
      bestOut = s.bytesSent || 0;
      out.out = {
        bytesSent: s.bytesSent || 0, framesEncoded: s.framesEncoded || 0,
        width: s.frameWidth || 0, height: s.frameHeight || 0,
        targetBitrate: s.targetBitrate || 0, keyFrames: s.keyFramesEncoded || 0,
        limitation: s.qualityLimitationReason || "",
      };
    }
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      out.rtt = s.currentRoundTripTime;
      out.outgoing = s.availableOutgoingBitrate || null;
    }
  });
  return out;
}"""


def chromium_args(origins: list[str]) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        # Real host candidates (no mDNS names, which would need multicast resolution).
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        # Pages on the lab's plain-HTTP addresses get getUserMedia like https pages do.
        "--unsafely-treat-insecure-origin-as-secure=" + ",".join(origins),
        # Background tabs must not be throttled: each call's pages are alone in a browser.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
    ]


def launch(playwright: Playwright, executable: str, origins: list[str]) -> Browser:
    return playwright.chromium.launch(executable_path=executable, args=chromium_args(origins))


# ------------------------------------------------------------------------------------------------
# Samples and figures


@dataclass
class Samples:
    """getStats() samples of one page over a call, with marks (e.g. the drop)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)

    def take(self, page: Page, pc_expression: str) -> None:
        row = page.evaluate(f"pc => ({STATS_JS})(pc)", page.evaluate_handle(pc_expression))
        if row is not None:
            row["wall"] = time.monotonic()
            self.rows.append(row)

    def window(self, start: float, end: float) -> list[dict[str, Any]]:
        return [r for r in self.rows if start <= r["wall"] <= end]


def _delta(rows: list[dict[str, Any]], side: str, key: str) -> float:
    values = [r[side][key] for r in rows if r.get(side)]
    return values[-1] - values[0] if len(values) >= 2 else 0.0


def receive_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page received over `rows` (cumulative counters, first to last)."""
    rows = [r for r in rows if r.get("in")]
    if len(rows) < 2:
        return {}
    seconds = rows[-1]["wall"] - rows[0]["wall"]
    minutes = seconds / 60
    emitted = _delta(rows, "in", "jitterBufferEmitted")
    widths = [r["in"]["width"] for r in rows if r["in"]["width"]]
    return {
        "seconds": round(seconds, 1),
        "fps": round(_delta(rows, "in", "framesDecoded") / seconds, 1),
        "fps_min": round(min(_per_second(rows, "framesDecoded")), 1),
        "freezes_per_min": round(_delta(rows, "in", "freezeCount") / minutes, 1),
        "frozen_s_per_min": round(_delta(rows, "in", "freezeDuration") / minutes, 2),
        "lost": int(_delta(rows, "in", "packetsLost")),
        "kbps": round(_delta(rows, "in", "bytesReceived") * 8 / seconds / 1000),
        "keyframes_per_min": round(_delta(rows, "in", "keyFrames") / minutes, 1),
        "jitter_buffer_ms": round(1000 * _delta(rows, "in", "jitterBufferDelay") / emitted)
        if emitted
        else None,
        "width": round(statistics.mean(widths)) if widths else 0,
        "nacks": int(_delta(rows, "in", "nacks")),
        "plis": int(_delta(rows, "in", "plis")),
    }


def send_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in rows if r.get("out")]
    if len(rows) < 2:
        return {}
    seconds = rows[-1]["wall"] - rows[0]["wall"]
    widths = [r["out"]["width"] for r in rows if r["out"]["width"]]
    heights = [r["out"]["height"] for r in rows if r["out"]["height"]]
    limits = [r["out"]["limitation"] for r in rows]
    return {
        "kbps": round(_delta(rows, "out", "bytesSent") * 8 / seconds / 1000),
        "target_kbps": round(statistics.mean(r["out"]["targetBitrate"] for r in rows) / 1000),
        "width": round(statistics.mean(widths)) if widths else 0,
        "height": round(statistics.mean(heights)) if heights else 0,
        "keyframes_per_min": round(_delta(rows, "out", "keyFrames") / seconds * 60, 1),
        "limited": max(set(limits), key=limits.count) if limits else "",
    }


def _per_second(rows: list[dict[str, Any]], key: str) -> list[float]:
    rates = []
    for a, b in itertools.pairwise(rows):
        dt = b["wall"] - a["wall"]
        if dt > 0:
            rates.append((b["in"][key] - a["in"][key]) / dt)
    return rates or [0.0]


def recovery_seconds(
    rows: list[dict[str, Any]], drop_at: float, hold: float = 3.0, share: float = 0.9
) -> float | None:
    """Seconds from `drop_at` until the received frame rate is back to `share` of its median
    in the 10 s before (see `fluid_after`); None if it never is."""
    baseline = fps_before(rows, drop_at)
    return None if baseline is None else fluid_after(rows, drop_at, share * baseline, hold)


def fps_before(rows: list[dict[str, Any]], at: float) -> float | None:
    """The median received frame rate in the 10 s before `at`; None with under 3 samples."""
    before = [r for r in rows if r.get("in") and at - 10 <= r["wall"] < at]
    return statistics.median(_per_second(before, "framesDecoded")) if len(before) >= 3 else None


def decoded_fps(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Frames the page decoded a second between samples `a` and `b`."""
    return (b["in"]["framesDecoded"] - a["in"]["framesDecoded"]) / (b["wall"] - a["wall"])


def fluid_after(
    rows: list[dict[str, Any]], start: float, fps: float, hold: float = 3.0
) -> float | None:
    """Seconds from `start` until a `hold`-second window in which the page decoded at least
    `fps` frames a second with no freeze; None if there is none. Over a window, not sample by
    sample: samples taken by a busy test process bunch up and one short interval says little."""
    after = [r for r in rows if r.get("in") and r["wall"] >= start]
    for i, a in enumerate(after):
        b = next((r for r in after[i + 1 :] if r["wall"] - a["wall"] >= hold), None)
        if b is None:
            return None
        if decoded_fps(a, b) >= fps and b["in"]["freezeCount"] == a["in"]["freezeCount"]:
            return round(a["wall"] - start, 1)
    return None


# ------------------------------------------------------------------------------------------------
# The direct call


class DirectCall:
    """The baseline: the customer's and the agent's browsers connected to each other."""

    def __init__(self, customer: Browser, agent: Browser) -> None:
        page = DIRECT_PAGE % {"caps": _json(CAPS)}
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []
        for browser in (customer, agent):
            context = browser.new_context()
            context.route(
                f"{DIRECT_ORIGIN}/**",
                lambda route: route.fulfill(status=200, content_type="text/html", body=page),
            )
            self.contexts.append(context)
            tab = context.new_page()
            tab.goto(f"{DIRECT_ORIGIN}/call")
            self.pages.append(tab)
        self.customer, self.agent = self.pages
        self.pc = "window.pc"

    def connect(self, timeout: float = 30) -> None:
        offer = self.agent.evaluate("makeOffer()")
        answer = self.customer.evaluate("sdp => makeAnswer(sdp)", offer)
        self.agent.evaluate("sdp => acceptAnswer(sdp)", answer)
        for page in self.pages:
            page.wait_for_function(
                "() => { const v = document.getElementById('remote');"
                " return v.videoWidth > 0 && v.currentTime > 0; }",
                timeout=timeout * 1000,
            )

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


# ------------------------------------------------------------------------------------------------
# The RemoteBank call


def entry_path() -> str:
    """A fresh entry link of the demo mobile bank (needs the ORM: call it through `orm`)."""
    from apps.accounts.models import ApiClient
    from tests.e2e.test_media_call import entry_path as entry_path_of

    return entry_path_of(ApiClient.objects.get(key_id="demo-mobile-bank"))


class RemoteBankCall:
    """The H5 page (customer) and the workstation (agent), media through the media job."""

    def __init__(
        self, customer: Browser, agent: Browser, base: str, entry_path: str, username: str,
        password: str,
    ) -> None:  # fmt: skip
        self.base = base
        self.customer_context = customer.new_context(
            base_url=base,
            locale="zh-CN",
            geolocation=SHANGHAI,
            permissions=["geolocation", "camera", "microphone"],
            **PHONE,
        )
        self.agent_context = agent.new_context(
            base_url=base, locale="zh-CN", viewport={"width": 1440, "height": 900}
        )
        self.customer = self.customer_context.new_page()
        self.agent = self.agent_context.new_page()
        self.entry_path = entry_path
        self.username = username
        self.password = password
        self.pc = "RB.media.pc"

    def connect(self, timeout: float = 45) -> None:
        agent = self.agent
        agent.goto("/agent/")
        expect(agent).to_have_url(re.compile(r"/accounts/login/"))
        agent.fill("#id_username", self.username)
        agent.fill("#id_password", self.password)
        agent.click("#login-submit")
        expect(agent).to_have_url(re.compile(r"/agent/$"))
        expect(agent.locator("#conn-status")).to_have_attribute("data-state", "open")
        customer = self.customer
        customer.goto(self.entry_path)
        expect(customer).to_have_url(re.compile(r"/h5/$"))
        customer.click("#start-button")
        expect(customer.locator("#queue-position")).to_be_visible(timeout=timeout * 1000)
        agent.click("[data-presence-set=ready]")
        agent.locator("#ring-panel [data-action=accept]").click(timeout=timeout * 1000)
        panel = agent.locator("#call-panel")
        expect(panel).to_have_attribute("data-call-state", "connected", timeout=timeout * 1000)
        expect(panel).to_have_attribute("data-media", "connected", timeout=timeout * 1000)
        expect(customer.locator("[data-screen=call]")).to_have_attribute(
            "data-media", "connected", timeout=timeout * 1000
        )
        for page in (customer, agent):
            page.wait_for_function(
                "() => { const v = document.getElementById('remote-video');"
                " return v.videoWidth > 0 && v.currentTime > 0; }",
                timeout=timeout * 1000,
            )

    def job_stats(self) -> dict[str, Any] | None:
        """The media job's last `media.stats` rows by role, as the agent page got them."""
        return self.agent.evaluate(
            "() => RB.media.stats ? Object.fromEntries(RB.media.stats.rows.map("
            "(r) => [r.role, r])) : null"
        )

    def close(self) -> None:
        try:
            self.agent.locator("#hangup").click(timeout=5000)
            self.agent.locator("#hangup").click(timeout=5000)
        except Exception:  # the figures are taken; a stuck page is closed anyway
            pass
        self.customer_context.close()
        self.agent_context.close()
