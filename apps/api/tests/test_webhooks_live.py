"""Webhooks end to end: a real RQ worker and the sweeper deliver to real HTTP receivers on
loopback that verify every signature with the `standardwebhooks` package (and the SM3 one).
The good receiver is down for part of the test and still gets every event exactly once per
id, in order per call; receivers that hang or answer 500 never hold the good one up."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from apps.accounts.models import AgentProfile, ApiClient
from apps.api.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookMessage
from apps.api.tests.receiver import Receiver, by_call
from apps.audit.audited import SYSTEM
from apps.calls.actions import routing
from apps.calls.actions.ending import end_call
from apps.calls.actions.offers import accept_offer
from apps.calls.actions.queue import join_queue
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.models import CallOffer, OfferState
from tests.live import BASE_DIR, rq_worker, subprocess_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EVENTS = ["call.queued", "call.connected", "call.ended"]
# Short retries for the test (production: 12 over 31.9 h); one HTTP attempt at most 1 s.
ENV = {"WEBHOOK_RETRY_SCHEDULE": "0.5,1,1,2,2,2,2,2,2,2,2,2", "WEBHOOK_TIMEOUT_SECONDS": "1"}


@contextmanager
def sweeper(**env: str) -> Iterator[subprocess.Popen[bytes]]:
    log = open(BASE_DIR / "var" / "run_webhooks-test.log", "a")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_webhooks"],
        cwd=BASE_DIR,
        env=subprocess_env(WEBHOOK_SWEEP_SECONDS="0.2", **env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def run_call(client: ApiClient, user: User) -> str:
    """One call through the real actions: queued, connected, ended."""
    ticket, token = issue_entry_ticket(
        client=client,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    redeem_entry_ticket(token=token)
    call = join_queue(ticket_id=ticket.pk, location=None)
    routing.finish_after_call_work(now=timezone.now() + timedelta(hours=1))
    routing.dispatch()
    offer = CallOffer.objects.filter(call=call, state=OfferState.PENDING).first()
    if offer is None:  # the agent was not ready yet: going ready rings them at once
        routing.set_presence_by_agent(user=user, state="ready")
        offer = CallOffer.objects.get(call=call, state=OfferState.PENDING)
    accept_offer(offer_id=offer.pk, agent=AgentProfile.objects.get(user=user))
    end_call(call_id=call.pk, reason="agent_hangup", actor=SYSTEM)
    return str(call.pk)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def register(signed, receiver: Receiver) -> str:
    response = signed("POST", "/api/v1/webhook-endpoints", {"url": receiver.url, "events": EVENTS})
    assert response.status_code == 201, response.content
    body = response.json()
    receiver.secret = body["secret"]
    assert body["secret"].startswith("whsec_") and body["signing"] == "both"
    return body["endpoint_id"]


def test_a_receiver_down_for_a_while_gets_every_event_once_in_order_per_call(
    signed, api_client_obj, agent, settings
):
    settings.AFTER_CALL_WORK_SECONDS = 0
    good = Receiver().start()
    hanging = Receiver(mode="hang", hang_seconds=3).start()
    broken = Receiver(mode="error").start()
    good_id = register(signed, good)
    hanging_id = register(signed, hanging)
    register(signed, broken)
    try:
        with rq_worker("webhooks", **ENV), sweeper(**ENV):
            # Up: two calls while two other receivers hang and fail.
            first = [run_call(api_client_obj, agent) for _ in range(2)]
            wait_until(lambda: len(good.accepted) == 6, 30, "the first calls' events")
            # Down: connections refused while three more calls happen.
            good.stop()
            down_at = time.time()
            second = [run_call(api_client_obj, agent) for _ in range(3)]
            wait_until(
                lambda: (
                    WebhookAttempt.objects.filter(delivery__endpoint_id=good_id, ok=False).count()
                    >= 2
                ),
                20,
                "failed attempts while the receiver is down",
            )
            time.sleep(2)
            assert len(good.accepted) == 6  # nothing got through while it was down
            good.start()  # back, on the same port
            up_at = time.time()
            wait_until(lambda: len(good.accepted) == 15, 40, "the backlog after coming back")
            time.sleep(1.5)  # nothing more arrives (no duplicates from retries)
    finally:
        for receiver in (good, hanging, broken):
            receiver.stop()

    assert good.refused == 0
    ids = Counter(r.msg_id for r in good.accepted)
    assert all(n == 1 for n in ids.values()), ids  # exactly once per id
    sent = set(
        WebhookMessage.objects.filter(deliveries__endpoint_id=good_id).values_list(
            "msg_id", flat=True
        )
    )
    assert set(ids) == sent and len(sent) == 15
    calls = by_call(good.accepted)
    assert set(calls) == set(first + second)
    assert all(types == EVENTS for types in calls.values()), calls  # in order per call
    assert all(r.sm3_ok for r in good.accepted)  # the v1-sm3 signature verifies too
    backlog = [r for r in good.accepted if r.at > down_at]
    assert len(backlog) == 9 and min(r.at for r in backlog) >= up_at
    good_deliveries = WebhookDelivery.objects.filter(endpoint_id=good_id)
    assert set(good_deliveries.values_list("state", flat=True)) == {DeliveryState.SUCCEEDED}
    # The bad receivers: every attempt recorded, nothing dropped (still pending or retrying),
    # and they never held the good one up (its first six arrived while they hung/failed).
    bad = WebhookDelivery.objects.exclude(endpoint_id=good_id)
    assert bad.count() == 30
    assert not bad.filter(state=DeliveryState.SUCCEEDED).exists()
    hung = WebhookAttempt.objects.filter(delivery__endpoint_id=hanging_id)
    assert hung.exists() and all(a.error == "TimeoutError" for a in hung)
    assert set(
        WebhookAttempt.objects.filter(delivery__in=bad)
        .exclude(delivery__endpoint_id=hanging_id)
        .values_list("status_code", flat=True)
    ) == {500}
