"""Scripted disclosure: the media job speaks the loan scenario's risk disclosure into the call
(espeak-ng, a virtual audio source), the customer's socket gets the captions sentence by
sentence, the key point is marked when playback ends, and confirmation is refused before it."""

from __future__ import annotations

import asyncio

import pytest
from remotebank_client import Participant
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

from apps.accounts.demo import DEMO_PASSWORD
from apps.banking import scenarios
from apps.calls.actions.tickets import issue_entry_ticket
from apps.recordings.models import KeyPoint
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOAN = {"purpose": "car", "amount": 80000, "term_months": "24", "monthly_income": 15000,
        "monthly_debt": 2000, "employer": "演示科技有限公司"}  # fmt: skip


def test_the_disclosure_is_spoken_captioned_and_marked_before_confirmation(api_client_obj):
    _, token = issue_entry_ticket(
        client=api_client_obj, customer_reference="DEMO0001", customer_name="",
        business_code="consumer_loan_interview", location=None,
    )  # fmt: skip

    async def scenario(base: str) -> dict:
        agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
        await agent.set_presence("ready")
        customer = await Participant.customer(base, f"/h5/enter/{token}")
        try:
            await customer.join_queue()
            offer = await agent.wait_offer()
            await agent.accept(offer["offer_id"])
            await customer.wait_for("call.connected")
            await asyncio.gather(
                customer.start_media(ToneAudioTrack(440.0), PatternVideoTrack(1)),
                agent.start_media(ToneAudioTrack(880.0), PatternVideoTrack(2)),
            )
            call_id = agent.call_id

            async def ask(kind, **fields):
                return await agent.request(kind, call_id=call_id, **fields)

            tx_id = (await ask("banking.start", scenario="consumer_loan_interview", form=LOAN))[
                "transaction"
            ]["id"]
            await ask(
                "banking.verify", transaction_id=tx_id, checks={"id_card": True, "face": True}
            )
            await ask("keypoint.mark", code="questionnaire_done", text="")
            try:
                await ask("banking.request_confirm", transaction_id=tx_id)
                refused = None
            except Exception as exc:  # the SDK raises ProtocolError with the code
                refused = getattr(exc, "code", str(exc))
            await ask("banking.disclose", transaction_id=tx_id)
            captions = []
            while True:
                event = await customer.wait_for("banking.caption", timeout=60)
                captions.append(event["text"])
                if not event["text"]:
                    break
            marked = await agent.wait_for(
                "keypoint.marked", lambda e: e["key_point"]["code"] == "risk_disclosed", timeout=20
            )
            confirm = await ask("banking.request_confirm", transaction_id=tx_id)
            await agent.hangup()
            return {"refused": refused, "captions": captions, "marked": marked, "confirm": confirm}
        finally:
            await customer.close()
            await agent.close()

    with daphne() as base, rq_worker("media"):
        result = asyncio.run(scenario(base))

    assert result["refused"] == "key_point_missing"
    script = list(scenarios.get("consumer_loan_interview").disclosure_zh)
    assert result["captions"] == [*script, ""]
    assert result["confirm"]["transaction"]["customer_action"] == "read_confirm"
    point = KeyPoint.objects.get(code="risk_disclosed")
    assert point.source == "auto" and point.text == "语音播报"
