"""A PIN reset through the real ASGI stack and the Redis channel layer: the agent drives the
steps over its socket, the customer's page confirms, signs and sends the PIN encrypted to the
PIN gateway. Then the database, Redis and the logs are searched for the PIN; a replayed PIN
message is refused; a retried submission with the same idempotency key changes nothing.
Access: another agent cannot read or drive the transaction."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client

from apps.banking.gateway import get_gateway
from apps.banking.gateway import pin as pin_gateway
from apps.banking.gateway.sandbox import demo_card, pin_verifier
from apps.banking.models import SandboxPinAccount, SandboxSubmission, Transaction, TxState
from apps.banking.tests.conftest import signature_png, start_transaction
from apps.calls.tests.test_signaling import (
    agent_client,
    connect,
    cookie_headers,
    customer_client,
    receive_type,
    request,
)

pytestmark = pytest.mark.django_db(transaction=True)

TEST_PIN = "736159"
# The PIN as a token (not inside a longer run of hex/digits), or as a format-4 PIN field.
PIN_PATTERN = re.compile(rf"(?<![0-9a-fA-F]){TEST_PIN}(?![0-9a-fA-F])|46{TEST_PIN}A", re.I)


def scan_database(pattern: re.Pattern[str] = PIN_PATTERN) -> list[str]:
    """Every text-like column of every table, searched for the PIN."""
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes):
                        value = bytes(value).decode("latin-1")
                    if value is not None and pattern.search(str(value)):
                        hits.append(f"{table}: {str(value)[:80]}")
    return hits


def scan_redis() -> list[str]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    hits = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = list(client.hgetall(key).values())
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        for value in [key, *values]:
            if value is not None and PIN_PATTERN.search(value.decode("latin-1")):
                hits.append(key.decode("latin-1"))
    return hits


def test_pin_reset_over_the_sockets_leaves_the_pin_nowhere(
    api_client_obj, agent, second_agent, caplog
):
    caplog.set_level(logging.DEBUG)
    cust_headers = cookie_headers(customer_client(api_client_obj))
    agent_headers = cookie_headers(agent_client(agent))
    other_headers = cookie_headers(agent_client(second_agent))

    async def scenario() -> tuple[str, dict]:
        agent_ws, _ = await connect(agent_headers)
        await request(agent_ws, {"type": "presence.set", "state": "ready"})
        cust_ws, _ = await connect(cust_headers)
        joined = await request(cust_ws, {"type": "queue.join"})
        call_id = joined["call_id"]
        offer = await receive_type(agent_ws, "call.offer")
        await request(agent_ws, {"type": "offer.accept", "offer_id": offer["offer_id"]})
        await receive_type(cust_ws, "call.connected")

        listed = await request(agent_ws, {"type": "banking.scenarios", "call_id": call_id})
        assert listed["business"] == "debit_pin_reset"
        assert demo_card(1) in {p["number"] for p in listed["products"]}
        started = await request(
            agent_ws,
            {"type": "banking.start", "call_id": call_id, "scenario": "debit_pin_reset",
             "form": {"card_no": demo_card(1)}},
        )  # fmt: skip
        assert started["type"] == "ack", started
        tx_id = started["transaction"]["id"]
        shown = await cust_ws.next(lambda m: m["type"] == "banking.transaction")
        assert shown["transaction"]["customer_action"] == "show_id"
        assert demo_card(1) not in str(shown)  # the page sees the card masked

        # Another agent can neither read nor drive it.
        other_ws, _ = await connect(other_headers)
        refused = await request(
            other_ws,
            {"type": "banking.verify", "call_id": call_id, "transaction_id": tx_id,
             "checks": {"id_card": True, "face": True}},
        )  # fmt: skip
        assert refused["type"] == "error" and refused["code"] == "call_not_found"
        await other_ws.disconnect()

        verified = await request(
            agent_ws,
            {"type": "banking.verify", "call_id": call_id, "transaction_id": tx_id,
             "checks": {"id_card": True, "face": True}},
        )  # fmt: skip
        assert verified["transaction"]["state"] == "identity_verified", verified
        asked = await request(
            agent_ws,
            {"type": "banking.request_confirm", "call_id": call_id, "transaction_id": tx_id},
        )
        assert asked["transaction"]["customer_action"] == "read_confirm"
        page = await request(cust_ws, {"type": "banking.get"})
        assert "借记卡" in page["transaction"]["confirmation"]
        confirmed = await request(
            cust_ws,
            {"type": "banking.confirm", "transaction_id": tx_id, "accept": True,
             "signature": "data:image/png;base64," + signature_png()},
        )  # fmt: skip
        assert confirmed["transaction"]["customer_action"] == "enter_pin", confirmed
        pin_key = confirmed["transaction"]["pin_key"]

        def seal():
            return pin_gateway.seal_pin_for_tests(
                TEST_PIN, transaction_id=tx_id, field="new_pin", params=pin_key
            )

        envelope = await asyncio.to_thread(seal)
        message = {"type": "banking.pin", "transaction_id": tx_id, "pins": {"new_pin": envelope}}
        done = await request(cust_ws, message)
        assert done["type"] == "ack", done
        assert done["transaction"]["state"] == "completed"
        result = await agent_ws.next(
            lambda m: (
                m["type"] == "banking.transaction" and m["transaction"]["state"] == "completed"
            )
        )
        assert result["transaction"]["core_reference"].startswith("SBX")
        replayed = await request(cust_ws, message)
        await agent_ws.disconnect()
        await cust_ws.disconnect()
        return tx_id, replayed

    tx_id, replayed = asyncio.run(scenario())
    assert replayed["type"] == "error" and replayed["code"] in ("replayed_pin", "wrong_state")
    account = SandboxPinAccount.objects.get(number=demo_card(1))
    assert account.pin_verifier == pin_verifier(account.number, TEST_PIN)

    # A replayed envelope is refused by the gateway itself, whatever the transaction's state.
    tx = Transaction.objects.get(pk=tx_id)
    params = pin_gateway.gateway_key_params()
    envelope = pin_gateway.seal_pin_for_tests(
        TEST_PIN, transaction_id=tx_id, field="new_pin", params=params
    )
    pin_gateway.accept_pin(envelope, transaction_id=tx_id, field="new_pin", pan=demo_card(1))
    with pytest.raises(Exception) as err:
        pin_gateway.accept_pin(envelope, transaction_id=tx_id, field="new_pin", pan=demo_card(1))
    assert getattr(err.value, "code", "") == "replayed_pin"

    # Retrying the submission with the same idempotency key changes nothing.
    verifier, journal = account.pin_verifier, tx.core_reference
    block = pin_gateway.make_pin_block("480317", demo_card(1), params["suite"])
    again = get_gateway().reset_pin(
        key=tx.idempotency_key, customer="DEMO0001", number=demo_card(1), kinds=("debit_card",),
        new=block,
    )  # fmt: skip
    assert again.ok and again.reference == journal and again.data == {"replayed": True}
    assert SandboxPinAccount.objects.get(number=demo_card(1)).pin_verifier == verifier
    assert SandboxSubmission.objects.filter(key=tx.idempotency_key).count() == 1
    assert tx.state == TxState.COMPLETED

    # The PIN is nowhere: database (recording metadata included), Redis, logs.
    assert scan_database() == []
    assert scan_database(re.compile(demo_card(1)))  # the scan does read the tables
    assert scan_redis() == []
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert caplog.records and not PIN_PATTERN.search(logged)
    # The scan can fail: the same search finds a PIN that is there.
    assert PIN_PATTERN.search(f"x {TEST_PIN} y") and PIN_PATTERN.search(f"46{TEST_PIN}AAAAAAAA")


def test_another_agent_gets_no_such_transaction_over_http(
    make_call, second_agent, outsider, supervisor
):
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)},
        user=call.agent.user,
    )  # fmt: skip
    url = f"/banking/transactions/{tx.pk}/"
    mine = agent_client(call.agent.user).get(url)
    assert mine.status_code == 200 and mine.json()["transaction"]["id"] == str(tx.pk)
    assert demo_card(1) not in mine.content.decode()
    assert agent_client(second_agent).get(url).status_code == 404
    assert agent_client(outsider).get(url).status_code == 403
    assert agent_client(supervisor).get(url).status_code == 200
    assert Client().get(url).status_code == 302  # to the login page


def test_transactions_are_listed_in_the_admin_for_supervisors_only(make_call, supervisor, agent):
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=agent
    )
    listing = agent_client(supervisor).get("/admin/banking/transaction/")
    assert listing.status_code == 200 and str(tx.pk) in listing.content.decode()
    assert demo_card(1) not in listing.content.decode()
    detail = agent_client(supervisor).get(f"/admin/banking/transaction/{tx.pk}/change/")
    assert detail.status_code == 200 and "6222********0001" in detail.content.decode()
