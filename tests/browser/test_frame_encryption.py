"""Frame-level media encryption in a real call: the customer's Chromium and the workstation's
Chromium encrypt their encoded frames in RTCRtpScriptTransform workers, the media job decrypts
them (before forwarding and recording) and encrypts what it sends to each page.

MEDIA_FRAME_ENCRYPTION=required, so a frame in clear would be dropped (and an offer without
frame encryption refused): both pages playing video therefore means every frame crossed the
wire encrypted and authenticated under the call's key, and the job's counters say so too.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import av
import pytest
from playwright.sync_api import expect
from remotebank_client import Participant

from apps.accounts.demo import DEMO_PASSWORD
from tests.browser.support import (
    DESKTOP,
    Loop,
    launch,
    new_context,
    orm,
    require_static,
    sign_in,
)
from tests.browser.test_media_call import (  # noqa: F401 - fixtures
    MEDIA_TIMEOUT_MS,
    assert_plays,
    customer_browser,
    face_video,
    open_customer,
    playwright,
    queue,
)
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CIPHERS = {"gm": "SM4-CTR+HMAC-SM3", "intl": "AES-256-GCM"}

JOB_STATS = """() => {
  const rows = (RB.media.stats && RB.media.stats.rows) || [];
  return rows.map((r) => ({role: r.role, cipher: r.frame_encryption,
    opened: r.frames_opened, sealed: r.frames_sealed, dropped: r.frames_dropped}));
}"""


DIAGNOSE = """async () => ({
  frames: Object.assign({}, RB.frameCrypto, {worker: null, requests: null}),
  stats: await RB.frameCrypto.stats(),
  media: {status: RB.media.status, log: RB.media.log.slice(-15)},
  job: RB.media.stats,
})"""


def worker_stats(page):
    return page.evaluate("RB.frameCrypto.stats()")


@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_pages_and_media_job_encrypt_every_frame_and_the_recording_is_plaintext(
    suite,
    demo,
    playwright,  # noqa: F811
    face_video,  # noqa: F811
):
    problems: list[str] = []
    env = {"MEDIA_FRAME_ENCRYPTION": "required", "CRYPTO_SUITE": suite}
    cipher = CIPHERS[suite]
    with daphne(**env) as base, rq_worker("media", **env):
        require_static(base)
        phone_browser = customer_browser(playwright, face_video)
        desk_browser = launch(playwright)
        try:
            customer = open_customer(
                phone_browser, base, problems, permissions=["geolocation", "camera", "microphone"]
            )
            queue(customer)
            assert customer.evaluate("RB.frameCrypto.supported")  # RTCRtpScriptTransform
            desk = new_context(desk_browser, base, problems, **DESKTOP)
            agent = desk.new_page()
            sign_in(agent, "agent01")
            agent.click("[data-presence-set=ready]")
            agent.locator("#ring-panel [data-action=accept]").click()
            panel = agent.locator("#call-panel")
            expect(panel).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
            try:
                assert_plays(agent)
                assert_plays(customer)
            except Exception:
                for page in (agent, customer):
                    print("DIAG", page.url, page.evaluate(DIAGNOSE))
                raise

            # The call view says which protection is active.
            for page in (agent, customer):
                badge = page.locator("[data-media-protection]").first
                expect(badge).to_have_attribute("data-media-protection", "frames")
                expect(badge).to_have_attribute("data-cipher", cipher)
                expect(badge).to_contain_text("DTLS-SRTP + 帧加密 " + cipher)

            # Each page sealed its frames and opened the job's; nothing was dropped.
            for page in (agent, customer):
                stats = worker_stats(page)
                assert stats["suite"] == suite, stats
                assert stats["sealed"] > 50 and stats["opened"] > 50, stats
                assert stats["dropped"] == 0 and stats["nokey"] == 0, stats

            # The media job opened (authenticated) what each page sent, sealed what it sent back.
            agent.wait_for_function(
                "() => (RB.media.stats && RB.media.stats.rows || []).length === 2"
                " && RB.media.stats.rows.every((r) => r.frames_opened > 50)",
                timeout=MEDIA_TIMEOUT_MS,
            )
            rows = agent.evaluate(JOB_STATS)
            assert {r["role"] for r in rows} == {"agent", "customer"}, rows
            for row in rows:
                assert row["cipher"] == cipher and row["sealed"] > 50, rows
                assert row["dropped"] == 0, rows

            # A client that does not encrypt its frames (the Python SDK) is refused.
            call_id = agent.evaluate("RB.media.call.call_id")
            with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
                refused = pool.submit(asyncio.run, _plain_offer_refused(base, call_id)).result()
            assert refused == "frame_encryption_required"

            agent.locator("#hangup").click()
            agent.locator("#hangup").click()
            expect(panel).to_have_attribute("data-call-state", "ended")
        finally:
            phone_browser.close()
            desk_browser.close()
    assert problems == []

    # The media job recorded plaintext: every segment decodes.
    from apps.recordings.models import RecordingSegment
    from apps.recordings.storage import KeyRing, get_storage

    def decoded() -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for segment in RecordingSegment.objects.filter(call_id=call_id):
            if not segment.sealed:
                continue
            reader = get_storage().open_read(segment.storage_key, keys=KeyRing(reason="test"))
            with av.open(reader) as container:
                stream = container.streams[0]
                frames = sum(1 for _ in container.decode(stream))
            key = (segment.role, segment.kind)
            counts[key] = counts.get(key, 0) + frames
        return counts

    counts = orm(decoded)
    for role in ("agent", "customer"):
        assert counts.get((role, "video"), 0) > 20, counts
        assert counts.get((role, "audio"), 0) > 50, counts


async def _plain_offer_refused(base: str, call_id: str) -> str:
    """A second socket of the agent (the SDK) offers media without frame encryption."""
    agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
    try:
        offer = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        offer += "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        await agent.request("media.offer", call_id=call_id, sdp=offer)
        event = await agent.wait_for(
            "error", lambda e: str(e.get("code", "")).startswith("frame"), timeout=20
        )
        return event["code"]
    finally:
        await agent.close()


NO_SCRIPT_TRANSFORM = "delete window.RTCRtpScriptTransform;"


async def sdk_agent_accepts(base: str) -> Participant:
    agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
    await agent.set_presence("ready")
    offer = await agent.wait_offer(timeout=30)
    await agent.accept(offer["offer_id"])
    return agent


def test_a_browser_without_encoded_transforms_is_refused_media_when_required_and_told_why(
    demo,
    playwright,  # noqa: F811
    face_video,  # noqa: F811
):
    problems: list[str] = []
    loop = Loop()
    with (
        daphne(MEDIA_FRAME_ENCRYPTION="required") as base,
        rq_worker("media", MEDIA_FRAME_ENCRYPTION="required"),
    ):
        require_static(base)
        phone_browser = customer_browser(playwright, face_video)
        try:
            customer = open_customer(
                phone_browser, base, problems, permissions=["geolocation", "camera", "microphone"]
            )
            customer.context.add_init_script(NO_SCRIPT_TRANSFORM)
            customer.reload()
            queue(customer)
            assert customer.evaluate("RB.frameCrypto.supported") is False
            agent = loop.run(sdk_agent_accepts(base))
            badge = customer.locator("[data-media-protection]").first
            expect(badge).to_have_attribute(
                "data-media-protection", "refused", timeout=MEDIA_TIMEOUT_MS
            )
            expect(badge).to_contain_text("此浏览器不支持")
            assert customer.evaluate("RB.media.status") != "connected"
            loop.run(agent.close())
        finally:
            phone_browser.close()
            loop.close()
    # The refusals are console warnings of the media retry loop, not page errors.
    assert [p for p in problems if "frame_encryption_required" not in p] == []
