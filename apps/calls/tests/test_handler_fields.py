"""Every field of every registered signaling handler, fuzzed one at a time (Hypothesis).

test_signaling_fuzz.py sends whole random frames from the agent's and customer's sockets; this
test goes deeper: a connected call with an open banking transaction, and sockets of all four
roles (agent, customer, supervisor monitoring the call, invited guest). For each registered
handler, each role it admits and each field it reads, the other fields hold valid values (the
call, the transaction, a real message id) and the field under test gets: a fixed list of
hostile values first, then random JSON values. Property: no frame ever gets `internal_error`;
every frame gets exactly one `ack` or `error` with a code of the error catalogue.

Frames that would end the call (hang-up, leaving, cancelling the queue) get no valid call for
the field under test, so the call stays up for the rest of the run; a cancelled or finished
transaction is replaced by a new one between frames.
"""

import asyncio
import inspect
import json
import uuid
from collections import Counter
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from apps.banking import checks as banking_checks
from apps.banking.actions import transactions
from apps.banking.gateway.sandbox import demo_card
from apps.banking.models import OPEN_STATES, Transaction
from apps.calls.actions.chat import send_chat
from apps.calls.actions.invites import invite_guest
from apps.calls.actions.monitor import start_monitor
from apps.calls.consumers import HANDLERS
from apps.calls.models import Call, CallState, Participant
from apps.calls.tests.test_access import connected_call
from apps.calls.tests.test_signaling import agent_client, cookie_headers
from apps.calls.tests.test_signaling_fuzz import FIELD_READ, fields_read, open_socket
from remotebank.errors import MESSAGES

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 200
ENDS_CALL = {"call.hangup", "call.leave", "queue.cancel"}
HOSTILE: list[Any] = [
    None,
    True,
    0,
    -1,
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    1.5,
    1e308,
    "",
    " ",
    "not-a-uuid",
    "00000000-0000-0000-0000-000000000000",
    "x" * 5000,
    "a\u0000b",
    "\r\n<script>alert(1)</script>",
    "汉字",
    [],
    [1, "a"],
    {},
    {"a": {"b": [None]}},
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.uuids().map(str),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)


def handler_fields(kind: str) -> tuple[str, ...]:
    """fields_read, plus the fields read by functions the handler closes over (the banking
    steps that one wrapper registers: banking.cancel's reason, banking.verify's checks)."""
    found = set(fields_read(kind))
    handler = inspect.unwrap(HANDLERS[kind][1])
    for cell in handler.__closure__ or ():
        inner = cell.cell_contents
        if inspect.isfunction(inner):
            found |= set(FIELD_READ.findall(inspect.getsource(inner))) - {"type", "id"}
    return tuple(sorted(found))


def open_transaction(call: Call, user) -> Transaction:
    """The call's open transaction, or a new one (a frame may have cancelled or finished it)."""
    tx = Transaction.objects.filter(call=call, state__in=OPEN_STATES).first()
    if tx is not None:
        return tx
    request = banking_checks.transaction_request("debit_pin_reset", {"card_no": demo_card(1)})
    return transactions.start_transaction(call=call, request=request, user=user)


def test_every_field_of_every_handler_is_validated(api_client_obj, agent, supervisor, settings):
    settings.MEDIA_START_GRACE_SECONDS = 3600  # no media takeover during the run (no worker)
    call, customer = connected_call(api_client_obj, agent, "DEMO0001")
    cust = Participant.objects.get(call=call, role="customer")
    message = send_chat(participant=cust, client_id=str(uuid.uuid4()), text="hi")
    start_monitor(user=supervisor, call_id=call.pk)
    agent_part = Participant.objects.get(call=call, role="agent")
    _, token = invite_guest(inviter=agent_part, name="王五")
    guest = Client()
    assert guest.get(f"/h5/invite/{token}").status_code == 302
    open_transaction(call, agent)
    headers = {
        "agent": cookie_headers(agent_client(agent)),
        "customer": cookie_headers(customer),
        "supervisor": cookie_headers(agent_client(supervisor)),
        "guest": cookie_headers(guest),
    }

    def valid(name: str) -> Any:
        """A valid value of a field, where the test knows one."""
        tx = open_transaction(call, agent)
        return {
            "call_id": str(call.pk),
            "transaction_id": str(tx.pk),
            "message_id": message.pk,
            "client_id": str(uuid.uuid4()),
            "text": "你好",
            "participant_id": cust.pk,
        }.get(name)

    cases = [
        (kind, role, field)
        for kind in sorted(HANDLERS)
        for role in sorted(HANDLERS[kind][0])
        for field in handler_fields(kind)
        if not (kind in ENDS_CALL and role in ("customer", "guest"))  # ends it whatever the field
    ]
    assert len(cases) > 50, cases
    codes = set(MESSAGES) - {"internal_error"}
    seen: Counter = Counter()
    faults: list[tuple[str, dict, dict]] = []

    def frame(kind: str, field: str, value: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": kind, "id": f"{kind}/{field}"}
        for name in handler_fields(kind):
            if name != field and kind not in ENDS_CALL:
                default = valid(name)
                if default is not None:
                    msg[name] = default
        msg[field] = value
        return msg

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        socks = {role: await open_socket(role, h) for role, h in headers.items()}

        def run(coro):
            return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

        def send(kind: str, role: str, field: str, value: Any) -> None:
            msg = frame(kind, field, value)
            reply = run(socks[role].exchange(("text", json.dumps(msg))))
            assert reply["re"] == msg["id"], (msg, reply)
            if reply["type"] == "error" and reply["code"] not in codes:
                faults.append((role, msg, reply))  # all of them, not only the first
            seen[reply.get("code", "ack")] += 1
            for sock in socks.values():
                run(sock.drain())

        @hyp_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(st.sampled_from(cases), JSON)
        def fuzz(case, value):
            send(*case, value)
            assert not faults, faults[-1]

        def in_thread() -> None:
            try:
                for case in cases:
                    for value in HOSTILE:
                        send(*case, value)
                fuzz()
            finally:
                connections.close_all()

        await loop.run_in_executor(None, in_thread)
        for sock in socks.values():
            await sock.comm.disconnect()

    asyncio.run(scenario())
    print("cases:", len(cases), "replies:", dict(seen))
    assert not faults, "\n".join(f"{role} {str(m)[:160]} -> {r['code']}" for role, m, r in faults)
    assert Call.objects.get(pk=call.pk).state == CallState.CONNECTED
    # The run reached the handlers' own checks, not only the parser.
    assert seen["ack"] > 0 and len(seen) > 5, seen
