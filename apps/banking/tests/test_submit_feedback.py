"""A transaction submit gives feedback at once (issue 13 item 10): over the real sockets, the
customer's page hears `submitted` (the pending state both pages show) before the core's result,
and the result arrives with the receipt still to be made (`receipt_state` pending: the receipt
is a job on the banking queue, never made inside the handler)."""

from __future__ import annotations

import asyncio

import pytest

from apps.banking.gateway.sandbox import demo_passbook
from apps.banking.tests.conftest import signature_png
from apps.calls.tests.test_signaling import (
    agent_client,
    connect,
    cookie_headers,
    customer_client,
    receive_type,
    request,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_customer_sees_the_submit_pending_before_the_result(api_client_obj, agent):
    cust_headers = cookie_headers(customer_client(api_client_obj, reference="DEMO0002"))
    agent_headers = cookie_headers(agent_client(agent))

    async def scenario() -> tuple[list[dict], dict]:
        agent_ws, _ = await connect(agent_headers)
        await request(agent_ws, {"type": "presence.set", "state": "ready"})
        cust_ws, _ = await connect(cust_headers)
        call_id = (await request(cust_ws, {"type": "queue.join"}))["call_id"]
        offer = await receive_type(agent_ws, "call.offer")
        await request(agent_ws, {"type": "offer.accept", "offer_id": offer["offer_id"]})
        await receive_type(cust_ws, "call.connected")

        def ask(kind: str, **fields: object):
            return request(agent_ws, {"type": kind, "call_id": call_id, **fields})

        started = await ask(
            "banking.start", scenario="deposit_pin_unlock", form={"account_no": demo_passbook(2)}
        )
        tx_id = started["transaction"]["id"]
        await ask("banking.verify", transaction_id=tx_id, checks={"id_card": True, "face": True})
        await ask("banking.request_confirm", transaction_id=tx_id)
        await request(
            cust_ws,
            {"type": "banking.confirm", "transaction_id": tx_id, "accept": True,
             "signature": "data:image/png;base64," + signature_png()},
        )  # fmt: skip
        done = await ask("banking.submit", transaction_id=tx_id)
        seen = []
        while not seen or seen[-1]["state"] not in ("completed", "failed"):
            event = await receive_type(cust_ws, "banking.transaction")
            if event["transaction"]["state"] in ("submitted", "completed", "failed"):
                seen.append(event["transaction"])
        await agent_ws.disconnect()
        await cust_ws.disconnect()
        return seen, done

    seen, done = asyncio.run(scenario())
    assert [t["state"] for t in seen] == ["submitted", "completed"]
    assert done["type"] == "ack" and done["transaction"]["state"] == "completed"
    assert done["transaction"]["receipt_state"] == "pending"  # no banking worker here
    assert seen[-1]["receipt"] is False and seen[-1]["receipt_state"] == "pending"
