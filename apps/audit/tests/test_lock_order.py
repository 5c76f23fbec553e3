"""The evidence chain head is locked first: a hang-up racing the media job on PostgreSQL.

The interleaving of the reported deadlock, made deterministic with a third connection that
holds the chain head while the two contenders line up behind it:

1. a blocker takes the chain head;
2. the agent hangs up while a transfer offer rings: end_call locks the call, the offer and the
   rung agent and audits the rung agent's presence change (before the rule: it waits for the
   chain head holding those rows);
3. the media job closes its epoch: capture_stopped locks the recording and audits (before the
   rule: it waits for the chain head holding the recording);
4. the blocker commits. end_call gets the head first; its "ended" state change makes the
   recordings receiver lock the recording (request_composition), which capture_stopped holds
   while it waits for the head end_call holds: PostgreSQL reports "deadlock detected".

With the rule both transactions take the chain head before any row, so they queue on it
holding nothing, and both commit.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.accounts.models import AgentProfile, Presence
from apps.audit.audited import Actor
from apps.audit.models import AuditEvent, ChainHead
from apps.calls.actions.ending import end_call
from apps.calls.actions.offers import accept_offer
from apps.calls.actions.queue import join_queue
from apps.calls.actions.routing import dispatch, set_presence_by_agent
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.models import Call, CallOffer, CallState, OfferState, Participant
from apps.recordings.actions import capture as recording_capture
from apps.recordings.models import Recording

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 30.0  # generous: five engineers share two cores


@pytest.fixture(autouse=True)
def _plain_recordings(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    settings.RECORDINGS_ENCRYPT = False


def connected_call(api_client_obj, agent) -> Call:
    ticket, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    redeem_entry_ticket(token=token)
    set_presence_by_agent(user=agent, state="ready")
    queued = join_queue(ticket_id=ticket.pk, location=None)
    dispatch()
    offer = CallOffer.objects.select_related("agent").get(call=queued, state=OfferState.PENDING)
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    return Call.objects.get(pk=queued.pk)


def lock_waiters() -> int:
    """Sessions of this test database waiting for a lock (autocommit: a fresh snapshot)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_waiters(n: int, errors: list[BaseException]) -> None:
    deadline = time.monotonic() + WAIT
    while lock_waiters() < n:
        assert not errors, errors
        assert time.monotonic() < deadline, f"never saw {n} sessions waiting for a lock"
        time.sleep(0.02)


def in_thread(fn, errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_hangup_and_segment_seal_do_not_deadlock(api_client_obj, agent, second_agent):
    assert connection.vendor == "postgresql"
    call = connected_call(api_client_obj, agent)
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    who = Participant.objects.get(call=call, role="customer")
    key = recording_capture.segment_key(
        call_id=call.pk, epoch=1, role="customer", participant_id=who.pk, kind="audio",
        stream=1, seq=1,
    )  # fmt: skip
    start = (timezone.now() - timedelta(seconds=5)).timestamp()
    recording_capture.apply_capture_ops(
        recording_id=context.recording_id,
        ops=[
            {
                "op": "open", "storage_key": key, "participant_id": who.pk, "role": "customer",
                "kind": "audio", "codec": "opus", "epoch": 1, "stream": 1, "seq": 1,
                "start_at": start, "clock_source": "rtcp-sr", "clock_rate": 48_000,
                "rtp_first": 0, "width": None, "height": None, "encrypted": False,
            }
        ],
    )  # fmt: skip
    recording_capture.apply_capture_ops(
        recording_id=context.recording_id,
        ops=[
            {
                "op": "seal", "storage_key": key, "start_at": start, "end_at": start + 4,
                "clock_source": "rtcp-sr", "rtp_last": 4 * 48_000, "packets": 200,
                "bytes": 12_345, "sm3": "0" * 64, "sha256": "1" * 64,
            }
        ],
    )  # fmt: skip
    # A transfer is ringing at the second agent when the agent hangs up.
    rung = AgentProfile.objects.get(user=second_agent)
    AgentProfile.objects.filter(pk=rung.pk).update(presence=Presence.RINGING)
    CallOffer.objects.create(
        call=call, agent=rung, expires_at=timezone.now() + timedelta(seconds=60)
    )
    ChainHead.objects.get_or_create(id=1)

    errors: list[BaseException] = []
    holding, release = threading.Event(), threading.Event()

    def blocker() -> None:
        with transaction.atomic():
            ChainHead.objects.select_for_update().get(id=1)
            holding.set()
            release.wait(WAIT)

    def hang_up() -> None:
        end_call(call_id=call.pk, reason="agent_hangup", actor=Actor.staff(agent))

    def stop_capture() -> None:  # the media job at the end of its epoch
        recording_capture.capture_stopped(
            recording_id=context.recording_id, epoch=1, summary={"segments": 1}
        )

    threads = [in_thread(blocker, errors)]
    assert holding.wait(WAIT)
    threads.append(in_thread(hang_up, errors))
    wait_for_waiters(1, errors)
    threads.append(in_thread(stop_capture, errors))
    wait_for_waiters(2, errors)
    release.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()

    assert not errors, errors  # before the rule: psycopg DeadlockDetected in one of them
    assert Call.objects.get(pk=call.pk).state == CallState.ENDED
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.compose_requested_at is not None
    assert recording.first_media_at is not None  # capture_stopped saw the sealed segment
    assert CallOffer.objects.get(call=call, agent=rung).state == OfferState.CANCELLED
    actions = list(
        AuditEvent.objects.filter(call_id=call.pk).order_by("seq").values_list("action", flat=True)
    )
    assert "recording.capture_stopped" in actions and actions[-1] != "call.connected"
    assert "recording.compose_requested" in actions and "call.ended" in actions
