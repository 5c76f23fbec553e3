"""Identity evidence from the live video: the customer's camera shows an ID card; the agent asks
for a capture; the media job grabs a still from the forwarded VP8 stream (media_worker/snapshot.py),
OCR reads it and the result reaches the workstation; the frame is stored encrypted."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest
from aiortc import VideoStreamTrack
from PIL import Image, ImageDraw, ImageFont
from remotebank_client import Participant
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

from apps.accounts.demo import DEMO_PASSWORD, demo_identity
from apps.banking.gateway.sandbox import demo_card
from apps.banking.models import IdentityFrame
from apps.calls.actions.tickets import issue_entry_ticket
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def id_card_frame(name: str, id_number: str) -> np.ndarray:
    """A 640x480 camera picture of a mock ID card held up close."""
    font = ImageFont.truetype(FONT, 26, index=2)
    image = Image.new("RGB", (640, 480), (90, 80, 70))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([10, 40, 630, 430], 20, fill=(235, 240, 245))
    draw.text((40, 70), f"姓名  {name}", font=font, fill=(10, 10, 10))
    draw.text((40, 130), "性别  男     民族  汉", font=font, fill=(10, 10, 10))
    draw.text((40, 190), "住址  北京市朝阳区建国路1号", font=font, fill=(10, 10, 10))
    draw.text((40, 360), f"公民身份号码 {id_number}", font=font, fill=(10, 10, 10))
    return np.asarray(image)


class StillTrack(VideoStreamTrack):
    def __init__(self, rgb: np.ndarray) -> None:
        super().__init__()
        self.rgb = rgb

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.rgb, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def test_the_media_job_grabs_the_id_card_from_the_live_video_and_ocr_checks_it(api_client_obj):
    _, token = issue_entry_ticket(
        client=api_client_obj, customer_reference="DEMO0001", customer_name="",
        business_code="debit_pin_reset", location=None,
    )  # fmt: skip
    number = demo_identity(1)[0]

    async def scenario(base: str) -> tuple[str, dict]:
        agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
        await agent.set_presence("ready")
        customer = await Participant.customer(base, f"/h5/enter/{token}")
        try:
            await customer.join_queue()
            offer = await agent.wait_offer()
            await agent.accept(offer["offer_id"])
            await customer.wait_for("call.connected")
            await asyncio.gather(
                customer.start_media(
                    ToneAudioTrack(440.0), StillTrack(id_card_frame("张三", number))
                ),
                agent.start_media(ToneAudioTrack(880.0), PatternVideoTrack(2)),
            )
            call_id = agent.call_id
            started = await agent.request(
                "banking.start", call_id=call_id, scenario="debit_pin_reset",
                form={"card_no": demo_card(1)},
            )  # fmt: skip
            tx_id = started["transaction"]["id"]
            await asyncio.sleep(1.5)  # let the encoder settle on the still picture
            ack = await agent.request(
                "banking.capture", call_id=call_id, transaction_id=tx_id, frame="id_card"
            )
            assert ack["requested"] == "id_card"
            done = await agent.wait_for(
                ("banking.transaction", "banking.capture_failed"),
                lambda e: (
                    e["type"] == "banking.capture_failed"
                    or "id_card" in e["transaction"].get("frames", {})
                ),
                timeout=60,
            )
            assert done["type"] == "banking.transaction", done
            verified = await agent.request(
                "banking.verify", call_id=call_id, transaction_id=tx_id,
                checks={"id_card": True, "face": True},
            )  # fmt: skip
            await agent.hangup()
            return tx_id, {"frames": done["transaction"]["frames"], **verified}
        finally:
            await customer.close()
            await agent.close()

    with daphne() as base, rq_worker("media"):
        tx_id, result = asyncio.run(scenario(base))

    assert result["frames"] == {"id_card": True}
    assert result["transaction"]["state"] == "identity_verified"
    frame = IdentityFrame.objects.get(transaction_id=tx_id)
    assert frame.source == "media" and frame.passed and (frame.width, frame.height) == (640, 480)
    assert frame.result["name_match"] and frame.result["id_match"]
