"""The wrong-PIN journey (issue 13 item 2) on the server: a 借记卡交易密码修改's old PIN is
checked by the core before the new one is asked for; a wrong one opens a new PIN entry with the
tries left; the third locks the card and fails the transaction, and a 借记卡密码解锁 on the same
call unlocks it; the agent can ask the customer again. A retried check or submission (after a
lost database connection) applies once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model

from apps.audit.models import AuditEvent
from apps.banking import selectors
from apps.banking.actions import pin_entry, submission
from apps.banking.gateway.sandbox import DEMO_PIN, demo_card, pin_verifier
from apps.banking.models import SandboxPinAccount, SandboxSubmission, TxState
from apps.banking.tests.conftest import (
    confirm,
    customer_actor,
    customer_of,
    envelope,
    start_transaction,
)
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db

NEW_PIN = "640271"


def agent01():
    return get_user_model().objects.get(username="agent01")


@pytest.fixture
def change(make_call):
    call = make_call("debit_pin_change")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_change", form={"card_no": demo_card(1)}, user=agent01()
    )
    return confirm(tx, agent01())


def check(tx, pin: str, attempt=None):
    return pin_entry.verify_old_pin(
        transaction_id=tx.pk,
        participant=customer_of(tx.call),
        envelope=envelope(tx, "old_pin", pin),
        actor=customer_actor(tx.call),
        attempt=attempt,
    )


def wrong_tries() -> int:
    return SandboxPinAccount.objects.get(number=demo_card(1)).wrong_tries


def test_a_wrong_old_pin_is_refused_before_the_new_pin_with_the_tries_left(change):
    tx = change
    payload = selectors.transaction_payload(tx)
    assert payload["customer_action"] == "enter_pin" and payload["pin_round"] == 0
    assert payload["pin_verified"] is False and payload["pin_fields"] == ["old_pin", "new_pin"]

    tx = check(tx, "000999")
    payload = selectors.transaction_payload(tx)
    assert tx.state == TxState.CUSTOMER_CONFIRMED and payload["customer_action"] == "enter_pin"
    assert (payload["result_code"], payload["tries_left"], payload["pin_round"]) == (
        "wrong_pin",
        2,
        1,
    )
    assert wrong_tries() == 1
    tx = check(tx, "111999")
    assert (tx.result_code, tx.tries_left, tx.pin_round) == ("wrong_pin", 1, 2)
    refused = AuditEvent.objects.filter(
        action="banking.transaction.pin_refused", object_id=str(tx.pk)
    )
    assert [e.details["tries_left"] for e in refused.order_by("seq")] == [2, 1]

    # The right old PIN: the round is verified, the count cleared, the new PIN asked for.
    tx = check(tx, DEMO_PIN)
    payload = selectors.transaction_payload(tx)
    assert payload["pin_verified"] is True and payload["pin_round"] == 2
    assert payload["result_code"] == "" and payload["tries_left"] is None
    assert wrong_tries() == 0
    assert AuditEvent.objects.filter(action="banking.transaction.pin_verified").count() == 1

    pins = {
        "old_pin": envelope(tx, "old_pin", DEMO_PIN),
        "new_pin": envelope(tx, "new_pin", NEW_PIN),
    }
    tx = submission.submit_transaction(
        transaction_id=tx.pk, actor=customer_actor(tx.call), participant=customer_of(tx.call),
        pins=pins,
    )  # fmt: skip
    assert tx.state == TxState.COMPLETED
    account = SandboxPinAccount.objects.get(number=demo_card(1))
    assert account.pin_verifier == pin_verifier(account.number, NEW_PIN)


def test_the_third_wrong_pin_locks_the_card_and_an_unlock_on_the_call_frees_it(change, make_call):
    tx = change
    for _ in range(2):
        tx = check(tx, "000999")
    tx = check(tx, "000999")
    payload = selectors.transaction_payload(tx)
    assert tx.state == TxState.FAILED and payload["customer_action"] == "done"
    assert (payload["result_code"], payload["tries_left"]) == ("locked", 0)
    assert SandboxPinAccount.objects.get(number=demo_card(1)).locked
    assert AuditEvent.objects.filter(action="banking.transaction.failed", object_id=str(tx.pk))
    # The playback timeline says it in words, not codes (nor the core's English).
    items = selectors.transaction_items(SimpleNamespace(call_id=tx.call_id))
    details = " ".join(i["detail"] for i in items)
    assert "原密码不正确" in details and "账户已被锁定" in details
    assert "wrong_pin" not in details and "locked" not in details and "tries" not in details

    # What the agent can do next on the same call: unlock, then change the PIN.
    user = agent01()
    unlock = start_transaction(
        call=tx.call, scenario_code="debit_pin_unlock", form={"card_no": demo_card(1)}, user=user
    )
    unlock = confirm(unlock, user)
    unlock = submission.submit_transaction(
        transaction_id=unlock.pk, actor=customer_actor(tx.call), user=user
    )
    assert unlock.state == TxState.COMPLETED
    account = SandboxPinAccount.objects.get(number=demo_card(1))
    assert not account.locked and account.wrong_tries == 0
    again = confirm(
        start_transaction(
            call=tx.call,
            scenario_code="debit_pin_change",
            form={"card_no": demo_card(1)},
            user=user,
        ),
        user,
    )
    assert check(again, DEMO_PIN).pin_verified_at is not None


def test_the_agent_asks_again_and_a_new_entry_opens(change):
    tx = check(change, "000999")
    before = tx.pin_round
    tx = pin_entry.request_pin_entry(transaction_id=tx.pk, user=agent01())
    payload = selectors.transaction_payload(tx)
    assert payload["pin_round"] == before + 1 and payload["customer_action"] == "enter_pin"
    assert payload["result_code"] == "wrong_pin" and payload["tries_left"] == 2  # still shown
    assert AuditEvent.objects.filter(action="banking.transaction.pin_requested").exists()
    assert wrong_tries() == 1  # asking again costs no try


def test_a_check_is_refused_where_no_old_pin_is_asked_for(make_call):
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=agent01()
    )
    with pytest.raises(ServiceError) as err:
        check(tx, DEMO_PIN)
    assert err.value.code == "wrong_state"  # not confirmed yet
    tx = confirm(tx, agent01())
    with pytest.raises(ServiceError) as err:
        check(tx, DEMO_PIN)
    assert err.value.code == "wrong_scenario"
    with pytest.raises(ServiceError) as err:
        pin_entry.request_pin_entry(
            transaction_id=tx.pk, user=get_user_model().objects.get(username="agent02")
        )
    assert err.value.code == "transaction_not_found"


def test_a_retried_check_and_a_retried_submission_apply_once(change):
    """What `remotebank.db.retrying` does after a lost connection: the same action again with
    the same attempt."""
    attempt = pin_entry.PinAttempt()
    tx = check(change, "000999", attempt)
    again = check(tx, "000999", attempt)  # the same message's retry: not counted twice
    assert again.pin_round == tx.pin_round == 1 and wrong_tries() == 1

    tx = check(tx, DEMO_PIN)
    attempt = pin_entry.PinAttempt()
    pins = {
        "old_pin": envelope(tx, "old_pin", DEMO_PIN),
        "new_pin": envelope(tx, "new_pin", NEW_PIN),
    }

    def submit():
        return submission.submit_transaction(
            transaction_id=tx.pk, actor=customer_actor(tx.call), participant=customer_of(tx.call),
            pins=pins, attempt=attempt,
        )  # fmt: skip

    done = submit()
    assert done.state == TxState.COMPLETED
    assert submit().state == TxState.COMPLETED  # answered, not wrong_state or replayed_pin
    assert SandboxSubmission.objects.filter(key=done.idempotency_key).count() == 1
