"""Fault: PostgreSQL restarts 150 ms and 300 ms after the customer's `banking.pin` (issue 15
item 3). The platform runs on a PostgreSQL of this test's own (so it can restart it), with Daphne
and the banking worker as separate processes. Whatever step the restart interrupts, the customer
gets the transaction's result (never `internal_error`), the core applies the reset once, and
the completed transaction gets its receipt."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from remotebank_client import Participant

from apps.accounts.demo import DEMO_PASSWORD
from apps.banking.gateway import pin as pin_gateway
from apps.banking.tests.conftest import signature_png
from tests.live import BASE_DIR, daphne, free_port, rq_worker, subprocess_env

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
NEW_PIN = "735190"


class OwnPostgres:
    """A throwaway PostgreSQL cluster run as the `postgres` user, on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rb-fault-pg-"))
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/rb_fault"

    def _as_postgres(self, *cmd: str) -> None:
        # No pipes: the server pg_ctl starts would inherit them and keep run() waiting.
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        shutil.chown(self.dir, "postgres", "postgres")
        data = str(self.dir / "data")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", data, "-A", "trust", "-U", "postgres")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            data,
            "-o",
            options,
            "-w",
            "-l",
            str(self.dir / "log"),
            "start",
        )
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE rb_fault")

    def restart(self) -> float:
        """A fast-mode restart (every connection is cut); returns how long it took."""
        began = time.monotonic()
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w",
            "-l", str(self.dir / "log"), "restart",
        )  # fmt: skip
        return time.monotonic() - began

    def stop(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.dir / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, sql: str, *args: object) -> list[tuple]:
        with psycopg.connect(self.url.replace("postgres://", "postgresql://")) as conn:
            return conn.execute(sql, args).fetchall()


def manage(url: str, *args: str) -> str:
    env = subprocess_env(DATABASE_URL=url)
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    if os.geteuid() != 0 or not PG_BIN.exists():
        pytest.skip("needs root (to run PostgreSQL as its own user) and PostgreSQL 15's binaries")
    pg = OwnPostgres()
    try:
        pg.start()
        manage(pg.url, "migrate", "--noinput", "-v0")
        manage(pg.url, "seed_demo")
        yield pg
    finally:
        pg.stop()


ISSUE_TICKET = """
from apps.accounts.models import ApiClient
from apps.calls.actions.tickets import issue_entry_ticket
_, token = issue_entry_ticket(client=ApiClient.objects.first(), customer_reference="DEMO0001",
    customer_name="", business_code="debit_pin_reset", location=None)
print(token)
"""


async def reset_with_a_restart(
    base: str, token: str, pg: OwnPostgres, delay: float, username: str
) -> tuple[dict, str]:
    agent = await Participant.agent(base, username, DEMO_PASSWORD)
    customer = await Participant.customer(base, f"/h5/enter/{token}")
    try:
        await agent.set_presence("ready")
        await customer.join_queue()
        await agent.accept((await agent.wait_offer())["offer_id"])
        await customer.wait_for("call.connected")
        call_id = agent.call_id

        async def ask(kind: str, **fields: object) -> dict:
            return await agent.request(kind, call_id=call_id, **fields)

        tx = (
            await ask(
                "banking.start", scenario="debit_pin_reset", form={"card_no": "6222020000000001"}
            )
        )["transaction"]
        await ask("banking.verify", transaction_id=tx["id"], checks={"id_card": True, "face": True})
        await ask("banking.request_confirm", transaction_id=tx["id"])
        confirmed = await customer.request(
            "banking.confirm", transaction_id=tx["id"], accept=True, signature=signature_png()
        )
        key = confirmed["transaction"]["pin_key"]
        envelope = await asyncio.to_thread(
            pin_gateway.seal_pin_for_tests,
            NEW_PIN,
            transaction_id=tx["id"],
            field="new_pin",
            params=key,
        )
        restarted = threading.Timer(delay, pg.restart)
        restarted.start()
        try:
            answer = await customer.request(
                "banking.pin", transaction_id=tx["id"], pins={"new_pin": envelope}, timeout=60
            )
        except Exception as exc:  # the client raises on an error reply: keep its code
            answer = {"type": "error", "code": getattr(exc, "code", repr(exc))}
        await asyncio.to_thread(restarted.join)
        return answer, tx["id"]
    finally:
        await customer.close()
        await agent.close()


@pytest.mark.parametrize(("delay", "username"), [(0.15, "agent01"), (0.3, "agent02")])
def test_a_postgres_restart_during_a_pin_reset_never_shows_internal_error(
    own_postgres, delay, username
):
    pg = own_postgres
    token = manage(pg.url, "shell", "-c", ISSUE_TICKET).strip().splitlines()[-1]
    with daphne(DATABASE_URL=pg.url) as base, rq_worker("banking", DATABASE_URL=pg.url):
        answer, tx_id = asyncio.run(reset_with_a_restart(base, token, pg, delay, username))
        assert answer.get("code") != "internal_error", answer
        assert answer.get("type") != "error", answer
        assert answer["transaction"]["state"] == "completed", answer

        # Applied once in the core; the receipt arrives (the worker rides out the restart too).
        key = pg.query("SELECT idempotency_key FROM banking_transaction WHERE id = %s", tx_id)[0][0]
        assert pg.query("SELECT count(*) FROM banking_sandboxsubmission WHERE key = %s", key) == [
            (1,)
        ]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if pg.query(
                "SELECT count(*) FROM banking_transactionreceipt WHERE transaction_id = %s", tx_id
            ) == [(1,)]:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the completed transaction got no receipt")
        assert pg.query(
            "SELECT count(*) FROM audit_auditevent"
            " WHERE action = 'banking.transaction.completed' AND object_id = %s",
            str(tx_id),
        ) == [(1,)]
