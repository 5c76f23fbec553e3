"""After a scripted call through real processes (Daphne, a media worker, two SDK clients with
media, encrypted chat carrying a PIN-like secret, the customer's identity on file), nothing
sensitive is found in clear in: every table's columns, every Redis key and value, the
processes' log output and the pages staff and customer are shown.

Looked for: the test ID number, phone and the chat secret (as typed), and key material seen
during the call (the master key, every data key unwrapped from the database, the socket's
payload key, the call's frame key and SM2 private key), each raw, in hex and in base64.

The one place the chat secret is expected: the call's admin page a supervisor reviews (the
transcript is part of the call record). At rest it is encrypted under the call's key
(apps.calls.chat_store) and the audit log holds only a keyed digest of it, so no table holds
it in clear; PINs go through the PIN flow, never through chat. This test pins that down so
that any other copy fails it.
"""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from remotebank_client import Participant
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

from apps.accounts.actions.identity import set_customer_identity
from apps.accounts.demo import DEMO_PASSWORD
from apps.accounts.models import Customer
from apps.audit.audited import SYSTEM
from apps.calls.actions.tickets import issue_entry_ticket
from apps.security import browser as payload
from apps.security.models import DataKey
from apps.security.services import unwrap_data_key
from apps.security.suites import get_suite
from tests.live import BASE_DIR, daphne, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ID_NUMBER = "11010519491231002X"  # GB 11643-1999's own example (check character X)
PHONE = "13912345678"
CHAT_SECRET = "PIN 802413"


def variants(secret: bytes | str) -> set[bytes]:
    """How a secret could show up: as is, hex (both cases), base64 (both alphabets)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    found = {raw}
    if isinstance(secret, bytes):
        found |= {raw.hex().encode(), raw.hex().upper().encode()}
        found |= {base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")}
    return found


async def agree_key(who: Participant, call: dict, call_id: str | None) -> tuple[bytes, dict]:
    params = call["crypto"]
    suite = get_suite(params["suite"])
    key = suite.generate_key()
    wrapped = suite.public_encrypt(bytes.fromhex(params["public_key"]), key)
    fields = {"key_id": params["key_id"], "wrapped": base64.b64encode(wrapped).decode()}
    if call_id:
        fields["call_id"] = call_id
    ack = await who.request("crypto.key", **fields)
    return key, ack


async def scripted_call(base: str, entry: str, seen: dict[str, bytes]) -> str:
    agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
    await agent.set_presence("ready")
    customer = await Participant.customer(base, entry)
    await customer.join_queue()
    offer = await agent.wait_offer()
    await agent.accept(offer["offer_id"])
    connected = await customer.wait_for("call.connected")
    call = connected["call"]
    call_id = call["call_id"]
    await asyncio.gather(
        customer.start_media(ToneAudioTrack(440.0), PatternVideoTrack(1)),
        agent.start_media(ToneAudioTrack(880.0), PatternVideoTrack(2)),
    )
    await customer.next_video_frame(timeout=20)
    await agent.next_video_frame(timeout=20)

    key, ack = await agree_key(customer, call, None)
    session = payload.PayloadKey(suite=ack["suite"], key=key, key_id=ack["key_id"])
    seen["customer payload key"] = key
    seen["frame key"] = base64.b64decode(session.open(ack["frame_key"]["enc"])["key"])
    agent_key, _ = await agree_key(agent, call, call_id)
    seen["agent payload key"] = agent_key
    seen["call SM2 private key"] = await asyncio.to_thread(
        lambda: payload._call_private_key(call_id, ack["key_id"])[1]
    )
    sent = await customer.request(
        "chat.send",
        client_id="6d1c3a57-2b1e-4f7e-9a63-0f2b8c1d9e01",
        enc=session.seal({"text": CHAT_SECRET}),
    )
    assert sent["message_id"]
    got = await agent.wait_for(
        "chat.message", lambda e: e.get("sender", {}).get("role") == "customer"
    )
    assert "text" not in got  # encrypted for the agent's socket
    agent_session = payload.PayloadKey(suite=ack["suite"], key=agent_key, key_id=ack["key_id"])
    assert agent_session.open(got["enc"])["text"] == CHAT_SECRET
    await asyncio.sleep(3)  # a few seconds of media: recording segments, stats
    await agent.request("call.hangup", call_id=call_id)
    await customer.wait_for("call.ended")
    await agent.close()
    await customer.close()
    return call_id


def db_hits(needles: dict[str, set[bytes]]) -> set[tuple[str, str, str]]:
    """(needle name, table, column) for every cell that holds a needle."""
    hits = set()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if value is None or isinstance(value, int | float | bool):
                        continue
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    blob = value if isinstance(value, bytes) else str(value).encode()
                    for name, forms in needles.items():
                        if any(form in blob for form in forms):
                            hits.add((name, table, column))
    return hits


def redis_dump() -> bytes:
    client = redis.Redis.from_url(settings.REDIS_URL)
    out = []
    for key in client.scan_iter(count=1000):
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            out += [b for kv in client.hgetall(key).items() for b in kv]
        elif kind == b"list":
            out += client.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(client.smembers(key))
        elif kind == b"zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                out += [b for kv in fields.items() for b in kv]
    return b"\n".join(out)


def rendered_pages(customer_entry: str, call_id: str, customer_pk: int) -> dict[str, bytes]:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    root = users.create_superuser("scan-root", "root@example.invalid", "x-" * 8)
    pages: dict[str, bytes] = {}

    def get(who, url: str) -> bytes:
        response = who.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response.content

    agent = Client()
    agent.force_login(users.get(username="agent01"))
    pages["workstation"] = get(agent, "/agent/")
    supervisor = Client()
    supervisor.force_login(users.get(username="supervisor01"))
    pages["call record (supervisor)"] = get(supervisor, f"/admin/calls/call/{call_id}/change/")
    admin = Client()
    admin.force_login(root)
    for url in (
        f"/admin/accounts/customer/{customer_pk}/change/",
        "/admin/accounts/customer/",
        "/admin/security/datakey/",
        "/admin/security/keyencryptionkey/",
    ):
        pages[url] = get(admin, url)
    customer = Client()
    customer.get(customer_entry)
    pages["h5"] = get(customer, "/h5/")
    return pages


def test_no_pin_key_or_id_number_in_clear_after_a_call(demo, api_client_obj):
    customer = Customer.objects.get(reference="DEMO0001")
    set_customer_identity(
        customer=customer, id_number=ID_NUMBER, phone=PHONE, address="", actor=SYSTEM
    )
    _, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    entry = f"/h5/enter/{token}"
    _, token = issue_entry_ticket(  # the customer opens the H5 page again afterwards
        client=api_client_obj,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    second_entry = f"/h5/enter/{token}"
    logs_before = {p: p.stat().st_size for p in (BASE_DIR / "var").glob("rqworker-media-*.log")}
    seen: dict[str, bytes] = {}
    with daphne() as base, rq_worker("media"):
        call_id = asyncio.run(scripted_call(base, entry, seen))
        time.sleep(2)  # the media job seals its segments and leaves
        port = base.rsplit(":", 1)[1]
        daphne_log = (BASE_DIR / "var" / f"daphne-{port}.log").read_bytes()
    worker_logs = b"".join(
        p.read_bytes()[logs_before.get(p, 0) :]
        for p in (BASE_DIR / "var").glob("rqworker-media-*.log")
    )
    assert b"media job for call" in worker_logs  # the job's output is really being scanned

    key_material: dict[str, bytes] = dict(seen)
    key_material["master key"] = bytes.fromhex(settings.MASTER_KEY)
    for data_key in DataKey.objects.all():
        key_material[f"data key {data_key.pk}"] = unwrap_data_key(data_key, reason="scan test")
    needles = {name: variants(secret) for name, secret in key_material.items()}
    needles["id number"] = variants(ID_NUMBER) | variants(ID_NUMBER.lower())
    needles["phone"] = variants(PHONE)
    needles["chat secret"] = variants(CHAT_SECRET)

    hits = db_hits(needles)
    assert hits == set(), sorted(hits)

    pages = rendered_pages(second_entry, call_id, customer.pk)
    places = {
        "redis": redis_dump(),
        "daphne log": daphne_log,
        "media worker log": worker_logs,
        **{f"page {name}": content for name, content in pages.items()},
    }
    found = [
        (name, place)
        for place, blob in places.items()
        for name, forms in needles.items()
        if any(form in blob for form in forms)
    ]
    # The transcript is part of the call record a supervisor reviews; nothing else shows.
    assert found == [("chat secret", "page call record (supervisor)")], found
    # The scan can see: the masked ID number is on the admin page, the call id in the logs.
    assert b"110105********002X" in pages[f"/admin/accounts/customer/{customer.pk}/change/"]
    assert call_id.encode() in places["daphne log"] + places["media worker log"]
