"""Routing decisions per second on PostgreSQL under concurrent load.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/remotebank_bench \
       python benchmarks/routing_throughput.py [--calls 400] [--processes 1 2 4]

Each round: N calls wait, N ready agents; P processes call `dispatch()` at once until nothing is
left. A decision is one offer (lock call + lock agent + offer + two state changes + audit events).
The single-process round is the baseline of the same run. Invariants are checked every round.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/remotebank_routing_bench")


def fresh_database() -> None:
    """Drop and recreate the benchmark database (its audit log refuses deletes, by design)."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    if "bench" not in name:
        raise SystemExit("refusing to recreate a database whose name does not contain 'bench'")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def worker(start: float, out: mp.Queue) -> None:
    import django

    django.setup()
    from apps.calls.actions.routing import dispatch

    while time.time() < start:
        time.sleep(0.001)
    made, idle = 0, 0
    while idle < 3:
        n = len(dispatch(limit=5))
        made += n
        idle = idle + 1 if n == 0 else 0
    out.put((made, time.time()))


def prepare(n: int, round_no: int) -> None:
    """N waiting calls and N ready agents (new ones each round: history is append-only)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from apps.accounts.models import AgentProfile, ApiClient, Presence, Skill
    from apps.audit.audited import SYSTEM
    from apps.calls.actions.ending import end_call
    from apps.calls.actions.queue import join_queue
    from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
    from apps.calls.models import Call, CallState

    # Earlier rounds' calls end and their agents go offline, through the actions.
    for call_id in Call.objects.exclude(state=CallState.ENDED).values_list("pk", flat=True):
        end_call(call_id=call_id, reason="system", actor=SYSTEM)
    AgentProfile.objects.filter(employee_no__startswith="B").update(presence=Presence.OFFLINE)
    client = ApiClient.objects.get(key_id="demo-mobile-bank")
    skill = Skill.objects.get(code="retail")
    group = Group.objects.get(name="agent")
    for i in range(n):
        ticket, token = issue_entry_ticket(
            client=client,
            customer_reference=f"BENCH{round_no}-{i:05d}",
            customer_name="",
            business_code="debit_pin_reset",
            location=None,
        )
        redeem_entry_ticket(token=token)
        join_queue(ticket_id=ticket.pk, location=None)
    for i in range(n):
        user = get_user_model().objects.create(username=f"bench{round_no}-{i:04d}")
        user.groups.add(group)
        profile = AgentProfile.objects.create(user=user, employee_no=f"B{round_no}-{i:05d}")
        profile.skills.add(skill)
    AgentProfile.objects.filter(employee_no__startswith=f"B{round_no}-").update(
        presence=Presence.READY, idle_since=None
    )


def check(n: int, round_no: int) -> None:
    from collections import Counter

    from apps.calls.models import CallOffer

    offers = list(
        CallOffer.objects.filter(agent__employee_no__startswith=f"B{round_no}-").values_list(
            "call_id", "agent_id"
        )
    )
    assert len(offers) == n, (len(offers), n)
    assert max(Counter(c for c, _ in offers).values()) == 1
    assert max(Counter(a for _, a in offers).values()) == 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    fresh_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    assert connection.vendor == "postgresql", "this benchmark is for PostgreSQL"
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    baseline = None
    print(f"routing decisions per second, {args.calls} calls/agents per round")
    for round_no, p in enumerate(args.processes):
        prepare(args.calls, round_no)
        connection.close()
        out: mp.Queue = mp.Queue()
        start = time.time() + 1.0
        procs = [mp.Process(target=worker, args=(start, out)) for _ in range(p)]
        for proc in procs:
            proc.start()
        results = [out.get() for _ in procs]
        for proc in procs:
            proc.join()
        made = sum(r[0] for r in results)
        elapsed = max(r[1] for r in results) - start
        check(args.calls, round_no)
        rate = made / elapsed
        baseline = baseline or rate
        print(
            f"  {p} process(es): {made} decisions in {elapsed:.2f} s = {rate:.0f}/s "
            f"({rate / baseline:.2f}x of 1 process), no double assignment"
        )


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
