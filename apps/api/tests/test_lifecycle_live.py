"""A bank system's whole life cycle through REST API v1, with a signed client (the Python SDK's
`remotebank_client.api.ApiClient`) against real processes: an entry ticket; the call driven by
headless clients (customer and agent, with media); a business transaction completed on the
call; the recording composed; QC run; the receipt and a recording download request. Along the
way a webhook receiver (verifying with `standardwebhooks`) hears every state change in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from remotebank_client import Participant
from remotebank_client.api import ApiClient, ApiError
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

from apps.accounts.demo import DEMO_PASSWORD
from apps.accounts.signing import client_secret
from apps.api.tests.receiver import Receiver, by_call
from apps.api.tests.test_webhooks_live import sweeper
from apps.banking.tests.conftest import signature_png
from tests.live import daphne, recordings_env, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ALL_EVENTS = [
    "call.queued",
    "call.connected",
    "call.ended",
    "transaction.completed",
    "recording.ready",
    "qc.completed",
]


async def poll(api: ApiClient, path: str, done: Any, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        body = await api.get(path)
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} not done in {timeout} s: {body}")
        await asyncio.sleep(1)


async def life_cycle(base: str, receiver: Receiver) -> dict[str, Any]:
    api = ApiClient(base, key_id="demo-mobile-bank", secret=client_secret("demo-mobile-bank"))
    hook = await api.post("/api/v1/webhook-endpoints", {"url": receiver.url, "events": ALL_EVENTS})
    receiver.secret = hook["secret"]
    ticket = await api.post(
        "/api/v1/entry-tickets",
        {"customer_reference": "DEMO0001", "business_type": "customer_info_update"},
        idempotency_key="lifecycle-ticket-1",
    )
    again = await api.post(
        "/api/v1/entry-tickets",
        {"customer_reference": "DEMO0001", "business_type": "customer_info_update"},
        idempotency_key="lifecycle-ticket-1",
    )
    assert again == ticket  # a retried POST changes nothing

    agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
    await agent.set_presence("ready")
    customer = await Participant.customer(base, urlsplit(ticket["url"]).path)
    try:
        await customer.join_queue()
        offer = await agent.wait_offer()
        await agent.accept(offer["offer_id"])
        await customer.wait_for("call.connected")
        call_id = agent.call_id
        # A generous limit: the media worker starts the call's job on a shared, loaded machine.
        await asyncio.gather(
            customer.start_media(ToneAudioTrack(440.0), PatternVideoTrack(1), timeout=60),
            agent.start_media(ToneAudioTrack(880.0), PatternVideoTrack(2), timeout=60),
        )
        live = await api.get(f"/api/v1/calls/{call_id}")
        assert live["state"] == "connected"
        assert {p["role"] for p in live["participants"]} == {"agent", "customer"}

        async def ask(kind: str, **fields: Any) -> dict[str, Any]:
            return (await agent.request(kind, call_id=call_id, **fields))["transaction"]

        tx = await ask(
            "banking.start", scenario="customer_info_update", form={"occupation": "employee"}
        )
        await ask("banking.verify", transaction_id=tx["id"], checks={"id_card": True, "face": True})
        await ask("banking.request_confirm", transaction_id=tx["id"])
        await customer.request(
            "banking.confirm", transaction_id=tx["id"], accept=True, signature=signature_png()
        )
        done = await ask("banking.submit", transaction_id=tx["id"])
        assert done["state"] == "completed", done
        await asyncio.sleep(3)  # a few seconds of recorded call after the transaction
        await agent.hangup()
    finally:
        await customer.close()
        await agent.close()

    calls = await api.get("/api/v1/calls?customer_reference=DEMO0001&state=ended")
    assert call_id in [c["call_id"] for c in calls["results"]]
    timeline = await api.get(f"/api/v1/calls/{call_id}/timeline")
    points = await api.get(f"/api/v1/calls/{call_id}/key-points")
    txs = await api.get(f"/api/v1/transactions?call_id={call_id}")
    await poll(api, f"/api/v1/transactions/{tx['id']}", lambda b: b["receipt"], 60)
    receipt = await api.request("GET", f"/api/v1/transactions/{tx['id']}/receipt")
    recordings = await poll(
        api,
        f"/api/v1/recordings?call_id={call_id}",
        lambda b: b["results"] and b["results"][0]["state"] in ("ready", "failed"),
    )
    recording = recordings["results"][0]
    reports = await poll(
        api,
        f"/api/v1/qc-reports?call_id={call_id}",
        lambda b: b["results"] and b["results"][0]["state"] in ("done", "failed"),
    )
    try:
        await api.post(f"/api/v1/recordings/{recording['recording_id']}/download-requests", {})
        missing_reason = None
    except ApiError as exc:
        missing_reason = exc.code
    download = await api.post(
        f"/api/v1/recordings/{recording['recording_id']}/download-requests",
        {"reason": "客户投诉复核，调阅本次视频办理录像"},
    )
    download_again = await api.get(f"/api/v1/download-requests/{download['download_request_id']}")
    for _ in range(120):  # the last webhooks (recording ready, QC) are on their way
        if len(by_call(receiver.accepted).get(call_id, [])) >= 6:
            break
        await asyncio.sleep(0.5)
    return {
        "call_id": call_id,
        "timeline": timeline,
        "points": points,
        "txs": txs,
        "receipt": receipt,
        "recording": recording,
        "reports": reports,
        "missing_reason": missing_reason,
        "download": download,
        "download_again": download_again,
    }


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def test_a_signed_client_follows_a_call_from_ticket_to_download_request(
    api_client_obj, settings, tmp_path
):
    env = recordings_env(settings, tmp_path, RECORDINGS_SEGMENT_SECONDS="3")
    with (
        receiving() as receiver,
        daphne(**env) as base,
        rq_worker("media", **env),
        rq_worker("compose", **env),
        rq_worker("qc", **env),
        rq_worker("webhooks", **env),
        rq_worker("banking", **env),  # receipts are made on the banking queue
        sweeper(**env),
    ):
        result = asyncio.run(life_cycle(base, receiver))

    call_id = result["call_id"]
    states = [i["state"] for i in result["timeline"]["items"] if i["kind"] == "state"]
    assert states[0] == "queued" and states[-1] == "ended" and "connected" in states
    assert result["points"]["key_points"], "the transaction marks key points"
    assert result["txs"]["results"][0]["state"] == "completed"
    assert result["receipt"].status == 200 and result["receipt"].body.startswith(b"%PDF")
    recording = result["recording"]
    assert recording["state"] == "ready" and recording["duration_seconds"] > 3
    assert len(recording["sm3"]) == 64 and len(recording["sha256"]) == 64
    report = result["reports"]["results"][0]
    assert report["state"] == "done" and report["verdict"] in ("pass", "needs_review", "fail")
    assert result["missing_reason"] == "missing_field"
    download = result["download"]
    assert download["state"] in ("queued", "pending_approval", "preparing", "ready")
    assert download["requested_by"] == "qc01"  # the client's acting staff account
    assert result["download_again"]["download_request_id"] == download["download_request_id"]
    # Webhooks: every state change of the call, in order, each verified.
    heard = by_call(receiver.accepted)[call_id]
    assert heard[:2] == ["call.queued", "call.connected"]
    assert heard.index("transaction.completed") < heard.index("call.ended")
    assert heard.index("call.ended") < heard.index("recording.ready") < heard.index("qc.completed")
    assert receiver.refused == 0
