"""PIN replay nonces survive a Redis restart (issue 15 item 2): a replayed wrong-PIN envelope
is refused after the restart and never uses up one of the customer's tries.

The test runs its own Redis (no persistence, as the platform's is) and restarts it between the
first use of an envelope and its replay."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis as redis_py
from django.contrib.auth import get_user_model

from apps.banking.actions import submission
from apps.banking.gateway.sandbox import demo_card
from apps.banking.models import PinNonce, SandboxPinAccount, TxState
from apps.banking.tests.conftest import (
    confirm,
    customer_actor,
    customer_of,
    envelope,
    start_transaction,
)
from remotebank.errors import ServiceError
from tests.live import free_port

pytestmark = pytest.mark.django_db


class OwnRedis:
    """A redis-server of this test's own, without persistence, that it can restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis_py.Redis.from_url(self.url).ping():
                    return
            except redis_py.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(settings):
    server = OwnRedis()
    server.start()
    settings.REDIS_URL = server.url  # remotebank.redis builds its client from this
    yield server
    server.stop()


def test_a_replayed_wrong_pin_envelope_is_refused_after_a_redis_restart(make_call, own_redis):
    call = make_call("debit_pin_change")
    user = get_user_model().objects.get(username="agent01")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_change", form={"card_no": demo_card(1)}, user=user
    )
    tx = confirm(tx, user)
    pins = {
        "old_pin": envelope(tx, "old_pin", "000999"),
        "new_pin": envelope(tx, "new_pin", "735190"),
    }

    def submit():
        return submission.submit_transaction(
            transaction_id=tx.pk,
            actor=customer_actor(call),
            participant=customer_of(call),
            pins=pins,
        )

    tx = submit()
    assert tx.state == TxState.CUSTOMER_CONFIRMED and tx.result_code == "wrong_pin"
    assert SandboxPinAccount.objects.get(number=demo_card(1)).wrong_tries == 1
    assert PinNonce.objects.count() == 2

    own_redis.restart()
    assert redis_py.Redis.from_url(own_redis.url).dbsize() == 0  # the restart kept nothing

    with pytest.raises(ServiceError) as err:
        submit()
    assert err.value.code == "replayed_pin"
    assert SandboxPinAccount.objects.get(number=demo_card(1)).wrong_tries == 1
    tx.refresh_from_db()
    assert tx.state == TxState.CUSTOMER_CONFIRMED and tx.attempts == 1


def test_an_envelope_whose_submission_rolled_back_used_no_nonce(make_call):
    """A refusal that changes nothing (here: a six-digit rule the page skipped) leaves the
    nonce unused, so the nonce store holds only envelopes that took effect."""
    call = make_call("debit_pin_reset")
    user = get_user_model().objects.get(username="agent01")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    tx = confirm(tx, user)
    with pytest.raises(ServiceError) as err:
        submission.submit_transaction(
            transaction_id=tx.pk, actor=customer_actor(call), participant=customer_of(call),
            pins={"new_pin": envelope(tx, "new_pin", "12345")},
        )  # fmt: skip
    assert err.value.code == "pin_format"
    assert PinNonce.objects.count() == 0
