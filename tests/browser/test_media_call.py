"""Live video and audio in the real pages, through a real media job.

The customer's Chromium films a real face (scikit-image's astronaut, panning slightly so frames
change) from a Y4M file; the agent is either the Python SDK, which lets the test decode and
inspect what the customer sent, or the workstation in a second Chromium with the default fake
camera. Media goes browser → Daphne signaling → RQ media worker (aiortc, forwarding) → far side.
"""

from __future__ import annotations

import math
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from remotebank_client import Participant
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack, audio_frame_mono
from skimage import data as skimage_data

from apps.accounts.demo import DEMO_PASSWORD
from apps.calls.media import heartbeat
from tests.browser.support import (
    DESKTOP,
    PHONE,
    SHANGHAI,
    Loop,
    issue_link,
    launch,
    new_context,
    orm,
    require_static,
    screenshot,
    sign_in,
)
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT, FPS, SECONDS = 320, 240, 15, 3
AGENT_PATTERN_ID = 2
AGENT_TONE_HZ = 880.0
FACE_CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
MEDIA_TIMEOUT_MS = 30_000


# -- the customer's camera: a real face ----------------------------------------------------------


@dataclass
class FaceVideo:
    path: Path
    frames: list[np.ndarray]  # the RGB frames written, for comparison with what arrives


def face_frames() -> list[np.ndarray]:
    """A 4:3 window over the astronaut's head and shoulders, panning left and right."""
    image = skimage_data.astronaut()  # 512x512 RGB, face in the upper middle
    frames = []
    count = FPS * SECONDS
    for i in range(count):
        dx = round(16 + 16 * math.sin(2 * math.pi * i / count))
        crop = image[8 : 8 + 360, dx : dx + 480]
        frames.append(cv2.resize(crop, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
    return frames


def write_y4m(path: Path, frames: list[np.ndarray]) -> None:
    """YUV4MPEG2, 4:2:0, what Chromium's --use-file-for-fake-video-capture plays (looping)."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> FaceVideo:
    frames = face_frames()
    path = tmp_path_factory.mktemp("camera") / "astronaut.y4m"
    write_y4m(path, frames)
    # The source itself must pass the checks applied to what arrives, or they prove nothing.
    assert all(find_face(f) is not None for f in frames)
    return FaceVideo(path=path, frames=frames)


def gray(rgb: np.ndarray) -> np.ndarray:
    if rgb.shape[:2] != (HEIGHT, WIDTH):
        rgb = cv2.resize(rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum() + 1e-9))


def best_match(frame: np.ndarray, references: list[np.ndarray]) -> tuple[float, int]:
    """(highest correlation with any reference frame, index of that frame)."""
    g = gray(frame)
    scores = [correlation(g, gray(ref)) for ref in references]
    index = int(np.argmax(scores))
    return scores[index], index


def find_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    cascade = cv2.CascadeClassifier(FACE_CASCADE)
    faces = cascade.detectMultiScale(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), scaleFactor=1.1, minNeighbors=5, minSize=(30, 30)
    )
    if len(faces) == 0:
        return None
    return tuple(int(v) for v in max(faces, key=lambda f: f[2] * f[3]))


# -- an SDK agent on a loop of its own (Playwright's sync API owns this thread) ------------------


async def sdk_agent_takes_call(base: str) -> Participant:
    agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
    await agent.set_presence("ready")
    offer = await agent.wait_offer(timeout=30)
    await agent.accept(offer["offer_id"])
    await agent.start_media(ToneAudioTrack(AGENT_TONE_HZ), PatternVideoTrack(AGENT_PATTERN_ID))
    return agent


async def video_frames(agent: Participant, count: int) -> list[np.ndarray]:
    await agent.next_video_frame(timeout=15, fresh=True)
    return [
        (await agent.next_video_frame(timeout=10)).to_ndarray(format="rgb24") for _ in range(count)
    ]


async def audio_rms(agent: Participant, seconds: float) -> float:
    await agent.next_audio_frame(timeout=10, fresh=True)
    chunks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunks.append(audio_frame_mono(await agent.next_audio_frame(timeout=10)))
    samples = np.concatenate(chunks).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2)))


# -- page steps ----------------------------------------------------------------------------------


@pytest.fixture
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


def customer_browser(playwright: Playwright, face_video: FaceVideo) -> Browser:
    return launch(playwright, f"--use-file-for-fake-video-capture={face_video.path}")


COUNT_GET_USER_MEDIA = """
window.getUserMediaCalls = 0;
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) => {
    window.getUserMediaCalls += 1;
    return original(constraints);
  };
}
"""


# Phones' autoplay rule (iOS Safari): a page plays sound only once the user has touched it.
# Chromium's own rule cannot be used here: Playwright's evaluate() counts as a user gesture.
SOUND_NEEDS_A_TAP = """
(() => {
  let touched = false;
  const touch = (ev) => { if (ev.isTrusted) touched = true; };
  document.addEventListener("pointerdown", touch, true);
  document.addEventListener("keydown", touch, true);
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    if (!touched && !this.muted) {
      return Promise.reject(new DOMException("play() needs a user gesture", "NotAllowedError"));
    }
    return play.call(this);
  };
})();
"""


def open_customer(browser: Browser, base: str, problems: list[str], **options: Any) -> Page:
    context = new_context(browser, base, problems, geolocation=SHANGHAI, **PHONE, **options)
    context.add_init_script(COUNT_GET_USER_MEDIA)
    page = context.new_page()
    issue_link(page)
    page.click("#open-link")
    expect(page).to_have_url(re.compile(r"/h5/$"))
    return page


def queue(customer: Page) -> None:
    customer.click("#start-button")
    expect(customer.locator("[data-check=media]")).to_have_attribute("data-status", "ok")
    expect(customer.locator("#queue-position")).to_have_text("1")


def assert_plays(page: Page, seconds: float = 2.0) -> dict[str, float]:
    """#remote-video shows frames and keeps playing: its clock advances in real time."""
    page.wait_for_function(
        "() => { const v = document.getElementById('remote-video');"
        " return v.videoWidth > 0 && v.currentTime > 0 && !v.paused; }",
        timeout=MEDIA_TIMEOUT_MS,
    )
    read = "() => { const v = document.getElementById('remote-video');"
    read += " return {t: v.currentTime, w: v.videoWidth, h: v.videoHeight,"
    read += " frames: v.getVideoPlaybackQuality().totalVideoFrames}; }"
    before = page.evaluate(read)
    page.wait_for_timeout(seconds * 1000)
    after = page.evaluate(read)
    assert after["t"] - before["t"] > seconds * 0.7, (before, after)
    # Frames keep coming (a loaded 2-core machine may encode and decode well below 15 fps).
    assert after["frames"] - before["frames"] >= seconds * 4, (before, after)
    return after


SENDER_ENABLED = """kind => {
  const sender = RB.media.pc.getSenders().find((s) => s.track && s.track.kind === kind);
  return sender ? sender.track.enabled : null;
}"""


def test_customer_page_sends_its_camera_and_plays_the_agent(demo, playwright, face_video):
    problems: list[str] = []
    sdk = Loop()
    with daphne() as base, rq_worker("media"):
        require_static(base)
        browser = customer_browser(playwright, face_video)
        customer = open_customer(
            browser, base, problems, permissions=["geolocation", "camera", "microphone"]
        )
        queue(customer)
        agent = sdk.run(sdk_agent_takes_call(base))
        try:
            call_screen = customer.locator("[data-screen=call]")
            expect(call_screen).to_be_visible()
            expect(call_screen).to_have_attribute(
                "data-media", "connected", timeout=MEDIA_TIMEOUT_MS
            )
            # The step-1 camera was handed over, not asked for a second time.
            assert customer.evaluate("window.getUserMediaCalls") == 1
            assert customer.evaluate("RB.media.ownedPreview !== null")

            # The agent receives the customer's camera: the astronaut, moving, face and all.
            frames = sdk.run(video_frames(agent, 20))
            assert frames[0].shape == (HEIGHT, WIDTH, 3)
            matches = [best_match(f, face_video.frames) for f in frames]
            assert min(score for score, _ in matches) > 0.9, matches
            assert len({index for _, index in matches}) >= 3, matches  # not one frozen frame
            faces = [find_face(f) for f in frames]
            assert sum(face is not None for face in faces) >= 18, faces
            # Where the face is, by the median over the frames: Haar's largest box on one frame
            # of a call's first, low-bitrate seconds was once the helmet beside it.
            centres = [(x + w / 2, y + h / 2) for x, y, w, h in filter(None, faces)]
            cx, cy = (float(np.median([c[i] for c in centres])) for i in (0, 1))
            assert 70 < cx < 190 and 40 < cy < 110, faces
            # Control: the same measure rejects an image that is not the customer's camera.
            mirrored = [np.ascontiguousarray(f[:, ::-1]) for f in face_video.frames]
            assert best_match(frames[0], mirrored)[0] < 0.8

            # The customer page plays the agent's video and hears its tone.
            played = assert_plays(customer)
            assert (played["w"], played["h"]) == (640, 480)
            expect(customer.locator(".video-remote")).to_have_class(re.compile(r"\bis-speaking\b"))
            expect(customer.locator("#remote-video")).to_have_js_property("muted", False)

            # Own network quality from media.stats, with the numbers behind it.
            net = customer.locator("#net-self")
            expect(net).to_have_attribute("data-quality", re.compile(r"^(good|fair|poor)$"))
            expect(net.locator(".net-label")).to_have_text(re.compile(r"^(良好|一般|较差)$"))
            expect(net.locator(".net-tip")).to_contain_text("kbps")
            expect(net.locator(".net-tip")).to_contain_text("320×240")

            # Mute: the microphone's sender track is disabled, and the agent hears silence.
            loud = sdk.run(audio_rms(agent, 1.5))
            mute = customer.locator("#customer-mute")
            assert customer.evaluate(SENDER_ENABLED, "audio") is True
            mute.click()
            expect(mute).to_have_attribute("aria-pressed", "true")
            expect(mute).to_have_text("取消静音")
            assert customer.evaluate(SENDER_ENABLED, "audio") is False
            expect(customer.locator(".video-local")).to_have_attribute("data-mic", "off")
            customer.wait_for_timeout(500)
            quiet = sdk.run(audio_rms(agent, 1.5))
            assert loud > 100 and quiet < loud / 20, (loud, quiet)
            mute.click()
            expect(mute).to_have_attribute("aria-pressed", "false")
            assert customer.evaluate(SENDER_ENABLED, "audio") is True

            # Camera off: the agent gets black frames and the page shows why; on again: the face.
            camera = customer.locator("#customer-camera")
            camera.click()
            expect(camera).to_have_attribute("aria-pressed", "true")
            assert customer.evaluate(SENDER_ENABLED, "video") is False
            expect(customer.locator(".video-local .cam-off")).to_be_visible()
            customer.wait_for_timeout(1500)
            dark = sdk.run(video_frames(agent, 3))[-1]
            assert dark.mean() < 20, dark.mean()
            camera.click()
            expect(camera).to_have_attribute("aria-pressed", "false")
            customer.wait_for_timeout(1500)
            back = sdk.run(video_frames(agent, 3))[-1]
            assert best_match(back, face_video.frames)[0] > 0.9

            # One camera here: no switch button to offer.
            expect(customer.locator("#customer-switch")).to_be_hidden()
            assert (
                customer.evaluate(
                    "async () => (await navigator.mediaDevices.enumerateDevices())"
                    ".filter((d) => d.kind === 'videoinput').length"
                )
                == 1
            )

            # The page is closed and opened again mid-call: it rejoins the call's media by itself,
            # asking for the camera again (no step 1 this time). Not touched yet, so the browser
            # refuses sound: the picture plays muted and a button turns the sound on.
            customer.context.add_init_script(SOUND_NEEDS_A_TAP)
            customer.goto("about:blank")
            customer.goto("/h5/")
            expect(call_screen).to_have_attribute(
                "data-media", "connected", timeout=MEDIA_TIMEOUT_MS
            )
            assert customer.evaluate("window.getUserMediaCalls") == 1
            play = customer.locator("[data-media-action=play]")
            expect(play).to_be_visible()
            assert_plays(customer)
            screenshot(customer, "media-customer-sound-button-390x844")
            expect(customer.locator("#remote-video")).to_have_js_property("muted", True)
            play.click()
            expect(play).to_be_hidden()
            expect(customer.locator("#remote-video")).to_have_js_property("muted", False)
            assert_plays(customer)
            assert best_match(sdk.run(video_frames(agent, 3))[-1], face_video.frames)[0] > 0.9

            customer.fill("#customer-chat-input", "您好，我的画面清楚吗？")
            customer.press("#customer-chat-input", "Enter")
            expect(customer.locator("#customer-chat .msg-mine")).to_have_count(1)
            screenshot(customer, "media-customer-390x844")

            # Hanging up releases the camera and microphone.
            customer.click("#hangup-button")
            customer.click("#hangup-button")
            expect(customer.locator("[data-screen=ended]")).to_be_visible()
            assert customer.evaluate("RB.media.pc === null && RB.media.videoTrack === null")
        finally:
            sdk.run(agent.close())
            sdk.close()
            browser.close()
    assert problems == []


def live_heartbeat(call_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (hb := orm(lambda: heartbeat(call_id))) is None:
        assert time.monotonic() < deadline, "the call's media job has no heartbeat"
        time.sleep(0.2)
    return hb


def wait_connected(page: Page, epoch: int) -> None:
    try:
        page.wait_for_function(
            "epoch => RB.media.pcEpoch === epoch && RB.media.status === 'connected'",
            arg=epoch,
            timeout=MEDIA_TIMEOUT_MS,
        )
    except PlaywrightTimeoutError:
        state = page.evaluate(
            "({status: RB.media.status, epoch: RB.media.pcEpoch, log: RB.media.log})"
        )
        pytest.fail(f"{page.url} did not reconnect to media epoch {epoch}: {state}")


RECORD_STATUSES = """() => {
  window.mediaStatuses = [RB.media.status];
  RB.media.on("change", (m) => {
    const last = window.mediaStatuses[window.mediaStatuses.length - 1];
    if (m.status !== last) window.mediaStatuses.push(m.status);
  });
}"""


def test_workstation_and_customer_page_see_each_other_and_reconnect(demo, playwright, face_video):
    problems: list[str] = []
    # Two media workers: the second takes the call over when the first one is killed.
    with daphne() as base, rq_worker("media"), rq_worker("media"):
        require_static(base)
        phone_browser = customer_browser(playwright, face_video)
        desk_browser = launch(playwright)  # Chromium's own fake camera: a moving test pattern
        try:
            customer = open_customer(
                phone_browser,
                base,
                problems,
                permissions=["geolocation", "camera", "microphone"],
            )
            queue(customer)
            desk = new_context(desk_browser, base, problems, **DESKTOP)
            agent = desk.new_page()
            sign_in(agent, "agent01")
            agent.click("[data-presence-set=ready]")
            agent.locator("#ring-panel [data-action=accept]").click()

            panel = agent.locator("#call-panel")
            expect(panel).to_have_attribute("data-call-state", "connected")
            expect(panel).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
            expect(customer.locator("[data-screen=call]")).to_have_attribute(
                "data-media", "connected", timeout=MEDIA_TIMEOUT_MS
            )
            at_agent = assert_plays(agent)
            assert (at_agent["w"], at_agent["h"]) == (WIDTH, HEIGHT)  # the customer's file
            at_customer = assert_plays(customer)
            assert (at_customer["w"], at_customer["h"]) == (640, 480)  # Chromium's fake camera
            expect(agent.locator("#remote-name")).to_have_text("张三")

            # The agent sees the network quality of both sides, with numbers on hover.
            for selector in ("#net-customer", "#net-agent"):
                net = agent.locator(selector)
                expect(net).to_have_attribute("data-quality", re.compile(r"^(good|fair|poor)$"))
                expect(net.locator(".net-label")).to_have_text(re.compile(r"^(良好|一般|较差)$"))
            agent.locator("#net-customer").hover()
            tip = agent.locator("#net-customer .net-tip")
            expect(tip).to_be_visible()
            expect(tip).to_contain_text("客户网络")
            expect(tip).to_contain_text("kbps")
            expect(tip).to_contain_text("320×240")
            screenshot(agent, "media-agent-1440x900")
            agent.mouse.move(0, 0)

            # Mute on the workstation disables the agent's microphone sender.
            agent.click("#agent-mute")
            assert agent.evaluate(SENDER_ENABLED, "audio") is False
            expect(agent.locator(".video-local .mic-off-badge")).to_be_visible()
            agent.click("#agent-mute")
            assert agent.evaluate(SENDER_ENABLED, "audio") is True

            # The agent's reconnect button: a new connection; the customer is told it is back.
            first_pc = agent.evaluate_handle("RB.media.pc")
            agent.click("#agent-reconnect")
            expect(panel).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
            assert agent.evaluate("pc => pc !== RB.media.pc && pc.connectionState", first_pc) in (
                "closed",
            )
            banner = customer.locator("[data-media-banner]")
            expect(banner).to_have_text("工作人员已重新连接。", timeout=MEDIA_TIMEOUT_MS)
            assert_plays(agent)
            assert_plays(customer)
            screenshot(customer, "media-customer-with-agent-390x844")

            # The worker running the call's media dies: both pages get media.restart, wait for
            # the new job's media.ready and connect to it by themselves.
            call_id = agent.evaluate("RB.media.call.call_id")
            hb = live_heartbeat(call_id)
            for page in (agent, customer):
                assert page.evaluate("RB.media.pcEpoch") == hb["epoch"]
                page.evaluate(RECORD_STATUSES)
            os.kill(hb["pid"], signal.SIGKILL)
            for page in (agent, customer):
                wait_connected(page, epoch=hb["epoch"] + 1)
                statuses = page.evaluate("window.mediaStatuses")
                assert statuses[0] == "connected" and statuses[-1] == "connected", statuses
                assert "reconnecting" in statuses, statuses
            assert_plays(agent)
            assert_plays(customer)

            agent.locator("#hangup").click()
            agent.locator("#hangup").click()
            expect(panel).to_have_attribute("data-call-state", "ended")
            expect(customer.locator("[data-screen=ended]")).to_be_visible()
            assert agent.evaluate("RB.media.pc === null && RB.media.audioTrack === null")
            expect(agent.locator("#net-customer")).to_have_attribute("data-quality", "unknown")
        finally:
            phone_browser.close()
            desk_browser.close()
    assert problems == []

    def events():
        from apps.calls.models import CallEvent

        return list(CallEvent.objects.values_list("kind", flat=True))

    kinds = orm(events)
    assert "participant_media_reconnected" in kinds, kinds  # the reconnect button
    assert "media_lost" in kinds and kinds.count("media_ready") >= 2, kinds  # the takeover


@pytest.mark.parametrize(
    ("case", "expected_notice", "mode"),
    [
        (
            "no-devices",
            "没有找到可用的摄像头和麦克风，对方将看不到也听不到您。您仍可以看到和听到对方。",
            "receive",
        ),
        (
            "camera-denied",
            "您没有允许使用摄像头，对方将看不到您的画面。通话将以语音方式继续。",
            "audio",
        ),
    ],
)
def test_customer_without_camera_is_told_why_and_the_call_goes_on(
    demo, playwright, case, expected_notice, mode
):
    problems: list[str] = []
    sdk = Loop()
    with daphne() as base, rq_worker("media"):
        require_static(base)
        if case == "no-devices":
            # No fake devices: this machine has no camera or microphone at all.
            browser = launch(playwright, fake_devices=False)
            permissions = ["geolocation", "camera", "microphone"]
        else:
            # Fake devices, but only the microphone is allowed.
            browser = launch(playwright, fake_ui=False)
            permissions = ["geolocation", "microphone"]
        agent = None
        try:
            customer = open_customer(browser, base, problems, permissions=permissions)
            customer.click("#start-button")
            check = customer.locator("[data-check=media]")
            expect(check).to_have_attribute("data-status", "warn")
            expected_check = (
                "没有找到可用的摄像头或麦克风。"
                if case == "no-devices"
                else "您没有允许使用摄像头或麦克风。"
            )
            expect(check.locator("[data-check-text]")).to_contain_text(expected_check)
            customer.click("#continue-button")  # queue without them
            expect(customer.locator("#queue-position")).to_have_text("1")

            agent = sdk.run(sdk_agent_takes_call(base))
            screen = customer.locator("[data-screen=call]")
            expect(screen).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
            notice = customer.locator("[data-media-notice]")
            expect(notice).to_be_visible()
            expect(notice).to_have_attribute("data-mode", mode)
            expect(notice.locator("[data-media-notice-text]")).to_have_text(expected_notice)
            expect(notice.locator("[data-media-action=retry-devices]")).to_be_enabled()
            expect(customer.locator("#customer-camera")).to_be_disabled()
            if mode == "audio":
                expect(customer.locator("#customer-mute")).to_be_enabled()
                expect(customer.locator(".video-local")).to_have_attribute("data-camera", "none")
            else:
                expect(customer.locator("#customer-mute")).to_be_disabled()
                local = customer.locator(".video-local")
                expect(local).to_have_attribute("data-camera", "none")
                expect(local).to_have_attribute("data-mic", "none")
                expect(local.locator(".cam-off")).to_contain_text("没有摄像头画面")
                expect(local.locator(".mic-off-badge")).to_be_visible()
            # Still a call: the customer sees the agent.
            assert_plays(customer)
            screenshot(customer, f"media-customer-{case}-390x844")
            # Retrying changes nothing here, and says so again rather than failing silently.
            notice.locator("[data-media-action=retry-devices]").click()
            expect(notice.locator("[data-media-notice-text]")).to_have_text(expected_notice)
            if mode == "audio":
                # The microphone's sound reaches the agent.
                assert sdk.run(audio_rms(agent, 1.5)) > 100
        finally:
            if agent is not None:
                sdk.run(agent.close())
            sdk.close()
            browser.close()
    assert problems == []


# A phone's second camera: Chromium's fake devices report no facingMode and its second fake
# device is a depth camera, so the page gets a back camera the way a phone offers one: asked for
# with facingMode "environment", reported back with it. It films a blue card with a white square.
BACK_CAMERA = """
(() => {
  const md = navigator.mediaDevices;
  if (!md) return;
  const realGetUserMedia = md.getUserMedia.bind(md);
  const realEnumerate = md.enumerateDevices.bind(md);
  const facing = (track, mode) => {
    const settings = track.getSettings.bind(track);
    track.getSettings = () => Object.assign(settings(), { facingMode: mode });
    return track;
  };
  const backCamera = () => {
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 480;
    const ctx = canvas.getContext("2d");
    let n = 0;
    const draw = () => {
      ctx.fillStyle = "#1846c8";
      ctx.fillRect(0, 0, 640, 480);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect((n++ * 8) % 600, 220, 40, 40);
    };
    draw();
    const timer = setInterval(draw, 50);
    const track = facing(canvas.captureStream(20).getVideoTracks()[0], "environment");
    const stop = track.stop.bind(track);
    track.stop = () => { clearInterval(timer); stop(); };
    return track;
  };
  md.getUserMedia = async (constraints) => {
    const video = constraints && constraints.video;
    const mode = video && video.facingMode;
    if ((mode && (mode.exact || mode.ideal || mode)) === "environment") {
      window.backCameraOpened = (window.backCameraOpened || 0) + 1;
      return new MediaStream([backCamera()]);
    }
    const stream = await realGetUserMedia(constraints);
    stream.getVideoTracks().forEach((t) => facing(t, "user"));
    return stream;
  };
  md.enumerateDevices = async () => (await realEnumerate()).concat([
    { kind: "videoinput", deviceId: "back-camera", groupId: "back", label: "back camera" },
  ]);
})();
"""


def colour_cast(frame: np.ndarray) -> float:
    """How much bluer than grey a frame is (the back camera films a blue card)."""
    r, g, b = (frame[..., i].astype(np.float64).mean() for i in range(3))
    return b - (r + g) / 2


def test_customer_switches_between_front_and_back_camera(demo, playwright, face_video):
    problems: list[str] = []
    sdk = Loop()
    with daphne() as base, rq_worker("media"):
        require_static(base)
        browser = customer_browser(playwright, face_video)
        agent = None
        try:
            context = new_context(
                browser,
                base,
                problems,
                geolocation=SHANGHAI,
                permissions=["geolocation", "camera", "microphone"],
                **PHONE,
            )
            context.add_init_script(BACK_CAMERA)
            customer = context.new_page()
            issue_link(customer)
            customer.click("#open-link")
            queue(customer)
            agent = sdk.run(sdk_agent_takes_call(base))
            screen = customer.locator("[data-screen=call]")
            expect(screen).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
            local = customer.locator("#local-video")
            expect(local).to_have_class(re.compile(r"\bis-mirrored\b"))  # the front camera
            assert best_match(sdk.run(video_frames(agent, 3))[-1], face_video.frames)[0] > 0.9

            switch = customer.locator("#customer-switch")
            expect(switch).to_be_visible()
            switch.click()
            customer.wait_for_function("window.backCameraOpened === 1")
            expect(switch).to_be_enabled()
            expect(local).not_to_have_class(re.compile(r"\bis-mirrored\b"))  # the back camera
            # The new camera went onto the live sender (no renegotiation) and into the preview.
            assert customer.evaluate(
                """() => {
                  const sender = RB.media.pc.getSenders().find(
                    (s) => s.track && s.track.kind === "video");
                  const preview = document.getElementById("local-video").srcObject;
                  return sender.track === RB.media.videoTrack
                    && preview.getVideoTracks()[0] === RB.media.videoTrack
                    && RB.media.videoTrack.getSettings().facingMode === "environment";
                }"""
            )
            customer.wait_for_timeout(1500)
            back = sdk.run(video_frames(agent, 3))[-1]
            assert colour_cast(back) > 60, colour_cast(back)
            screenshot(customer, "media-customer-back-camera-390x844")

            switch.click()  # and back to the face
            expect(local).to_have_class(re.compile(r"\bis-mirrored\b"))
            customer.wait_for_timeout(1500)
            front = sdk.run(video_frames(agent, 3))[-1]
            assert best_match(front, face_video.frames)[0] > 0.9
            assert customer.evaluate("window.backCameraOpened") == 1
        finally:
            if agent is not None:
                sdk.run(agent.close())
            sdk.close()
            browser.close()
    assert problems == []
