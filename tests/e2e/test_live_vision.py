"""Live compliance end to end: Daphne, an RQ media worker and two headless SDK clients. The
customer's camera shows a real face (scikit-image's astronaut), then a scene without one, then
the face again; the agent gets ``vision.alert`` within 3 s (the problem must hold 1.2 s:
hysteresis against flapping) and ``vision.clear`` once it is back,
both land on the call's timeline as CallEvents, and the customer is told nothing."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

from apps.audit.models import AuditEvent
from apps.calls.models import CallEvent
from medialib.tests import synth
from tests.e2e.test_media_call import (
    AGENT_ID,
    AGENT_TONE,
    CUSTOMER_TONE,
    entry_path,
    hang_up,
    in_call,
)
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class PictureTrack(MediaStreamTrack):
    """A live camera showing `picture(t)` (a luma plane), paced in real time at 15 fps."""

    kind = "video"

    def __init__(self, picture) -> None:
        super().__init__()
        self.picture = picture
        self._start: float | None = None
        self._index = 0
        self._chroma = np.full((synth.HEIGHT // 2, synth.WIDTH), 128, np.uint8)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._index / synth.FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        luma = self.picture(self._index / synth.FPS)
        frame = VideoFrame.from_ndarray(np.concatenate([luma, self._chroma]), format="yuv420p")
        frame.pts = round(self._index * 90_000 / synth.FPS)
        frame.time_base = Fraction(1, 90_000)
        self._index += 1
        return frame


def test_the_agent_is_alerted_when_the_customer_leaves_the_frame(api_client_obj):
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> tuple[str, float, float]:
        camera = PictureTrack(synth.face_luma)
        async with in_call(base, path, media=False) as (customer, agent):
            await asyncio.gather(
                customer.start_media(ToneAudioTrack(CUSTOMER_TONE), camera),
                agent.start_media(ToneAudioTrack(AGENT_TONE), PatternVideoTrack(AGENT_ID)),
            )
            await agent.next_video_frame(timeout=10, fresh=True)
            # Face in frame: no alert.
            with pytest.raises(TimeoutError):
                await agent.wait_for("vision.alert", timeout=4)
            camera.picture = synth.scene_luma
            left = time.monotonic()
            alert = await agent.wait_for("vision.alert", timeout=10)
            alert_after = time.monotonic() - left
            assert alert["problem"] == "no_face" and alert["role"] == "customer"
            await asyncio.sleep(1.0)
            camera.picture = synth.face_luma
            back = time.monotonic()
            cleared = await agent.wait_for("vision.clear", timeout=10)
            clear_after = time.monotonic() - back
            assert cleared["problem"] == "no_face"
            with pytest.raises(TimeoutError):  # staff only
                await customer.wait_for(("vision.alert", "vision.clear"), timeout=0.5)
            return await hang_up(agent, customer), alert_after, clear_after

    with daphne() as base, rq_worker("media"):
        call_id, alert_after, clear_after = asyncio.run(scenario(base))

    print(f"vision alert after {alert_after:.2f} s, cleared after {clear_after:.2f} s")
    assert alert_after <= 3.0, alert_after
    assert clear_after <= 3.0, clear_after
    events = list(
        CallEvent.objects.filter(call_id=call_id, kind__startswith="vision_").values_list(
            "kind", "data__problem"
        )
    )
    assert events == [("vision_alert", "no_face"), ("vision_clear", "no_face")]
    assert AuditEvent.objects.filter(call_id=call_id, action="qc.vision_alert").count() == 1
