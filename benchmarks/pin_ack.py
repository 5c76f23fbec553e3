"""The PIN submit's answer (issue 13 item 10): what `banking.pin`'s handler does now (open the
PIN envelope, submit to the core, apply the result, enqueue the receipt job) against what it
did before in the same run (all that, plus rendering and sealing the receipt PDF inside the
handler).

    python benchmarks/pin_ack.py [--rounds 5] [--database-url ...] [--redis-url ...]

In-process on the bench database (see README "The stack"): each round connects a call of
DEMO0001 to agent01 through the actions, takes a 借记卡交易密码重置 to the PIN step, then times
`submit_transaction` (the handler's work, the receipt only enqueued) and `issue_receipt_of` (the
banking worker's job, which used to run in the handler). Prints the median of each, the
ratio, and the load average.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stack


def signature() -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (400, 160), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.line(
        [(20, 120), (80, 30), (140, 130), (220, 40), (300, 120)], fill=(0, 0, 0, 255), width=5
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def new_pin() -> str:
    from apps.banking.gateway.sandbox import trivial_reason

    while True:
        pin = f"{random.randrange(10**6):06d}"
        if not trivial_reason(pin, None):
            return pin


def connected_call():
    from django.contrib.auth import get_user_model

    from apps.accounts.models import ApiClient
    from apps.calls.actions.offers import accept_offer
    from apps.calls.actions.queue import join_queue
    from apps.calls.actions.routing import dispatch, set_presence_by_agent
    from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
    from apps.calls.models import Call, CallOffer, OfferState

    user = get_user_model().objects.get(username="agent01")
    client = ApiClient.objects.get(key_id="demo-mobile-bank")
    ticket, token = issue_entry_ticket(
        client=client, customer_reference="DEMO0001", customer_name="",
        business_code="debit_pin_reset", location=None,
    )  # fmt: skip
    redeem_entry_ticket(token=token)
    set_presence_by_agent(user=user, state="ready")
    call = join_queue(ticket_id=ticket.pk, location=None)
    dispatch()
    offer = CallOffer.objects.select_related("agent").get(call=call, state=OfferState.PENDING)
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    return Call.objects.get(pk=call.pk), user


def one_round() -> tuple[float, float]:
    from apps.audit.audited import Actor
    from apps.banking import checks
    from apps.banking.actions import confirmation, identity, receipts, submission, transactions
    from apps.banking.gateway import pin as pin_gateway
    from apps.banking.gateway.sandbox import demo_card
    from apps.calls.actions.ending import end_call
    from apps.calls.models import Participant

    call, user = connected_call()
    request = checks.transaction_request("debit_pin_reset", {"card_no": demo_card(1)})
    tx = transactions.start_transaction(call=call, request=request, user=user)
    tx = identity.verify_identity(
        transaction_id=tx.pk, checks=checks.identity_checks({"id_card": True, "face": True}),
        user=user,
    )  # fmt: skip
    tx = confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    customer = Participant.objects.get(call=call, role="customer")
    tx = confirmation.confirm_by_customer(
        transaction_id=tx.pk, participant=customer,
        answer=checks.customer_answer(True, signature()),
    )  # fmt: skip
    envelope = pin_gateway.seal_pin_for_tests(
        new_pin(), transaction_id=str(tx.pk), field="new_pin",
        params=pin_gateway.gateway_key_params(),
    )  # fmt: skip
    began = time.perf_counter()
    done = submission.submit_transaction(
        transaction_id=tx.pk, actor=Actor.customer(call.customer_id), participant=customer,
        pins={"new_pin": envelope},
    )  # fmt: skip
    ack = time.perf_counter() - began
    assert done.state == "completed", done.state
    began = time.perf_counter()
    receipts.issue_receipt_of(done.pk)
    receipt = time.perf_counter() - began
    end_call(call_id=call.pk, reason="agent_hangup", actor=Actor.staff(user))
    return ack, receipt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    _stack.add_stack_arguments(parser)
    args = parser.parse_args()
    _stack.configure(args)
    _stack.setup_django(args)
    _stack.prepare_database(0)
    one_round()  # warm-up: fonts, keys, connections
    acks, receipts = [], []
    for _ in range(args.rounds):
        ack, receipt = one_round()
        acks.append(ack)
        receipts.append(receipt)
    import django_rq

    from remotebank import queues

    django_rq.get_queue(queues.BANKING).empty()  # the receipt jobs we enqueued (and ran here)
    now = statistics.median(acks)
    before = statistics.median(a + r for a, r in zip(acks, receipts, strict=True))
    print(f"PIN submit, receipt queued (now):       median {now * 1000:7.1f} ms")
    print(f"PIN submit + receipt in handler (before): median {before * 1000:7.1f} ms")
    print(
        f"receipt job alone:                      "
        f"median {statistics.median(receipts) * 1000:7.1f} ms"
    )
    print(f"now / before: {now / before:.2f}   load average {_stack.load_average()}")
    print(json.dumps({"ack_ms": round(now * 1000, 1), "before_ms": round(before * 1000, 1),
                      "ratio": round(now / before, 3), "rounds": args.rounds,
                      "load": os.getloadavg()}))  # fmt: skip


if __name__ == "__main__":
    main()
