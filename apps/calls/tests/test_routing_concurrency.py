"""Two (and more) processes routing at once on PostgreSQL never double-assign."""

import itertools
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import connection

from apps.accounts.models import AgentProfile, Presence, Skill
from apps.audit.models import AuditEvent
from apps.calls.actions.queue import join_queue
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.models import Call, CallOffer, CallState, OfferState
from tests.live import BASE_DIR, subprocess_env

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKER = """
import os, sys, time
import django
django.setup()
from apps.calls.actions.routing import dispatch
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.001)
made = 0
idle_rounds = 0
while idle_rounds < 3:
    n = len(dispatch(limit=5))
    made += n
    idle_rounds = idle_rounds + 1 if n == 0 else 0
print(made)
"""


def make_agents(n: int) -> list[AgentProfile]:
    from django.contrib.auth import get_user_model

    skill = Skill.objects.get(code="retail")
    agents = []
    for i in range(n):
        user = get_user_model().objects.create_user(f"load{i:03d}", password="x-load-pw-123")
        from django.contrib.auth.models import Group

        user.groups.add(Group.objects.get(name="agent"))
        profile = AgentProfile.objects.create(user=user, employee_no=f"L{i:04d}")
        profile.skills.add(skill)
        agents.append(profile)
    return agents


def make_calls(api_client_obj, n: int) -> list[Call]:
    calls = []
    for i in range(n):
        ticket, token = issue_entry_ticket(
            client=api_client_obj,
            customer_reference=f"LOAD{i:05d}",
            customer_name="",
            business_code="debit_pin_reset",
            location=None,
        )
        redeem_entry_ticket(token=token)
        calls.append(join_queue(ticket_id=ticket.pk, location=None))
    return calls


@pytest.mark.parametrize(("processes", "agents", "calls"), [(2, 15, 40), (4, 30, 25)])
def test_concurrent_routers_never_double_assign(api_client_obj, processes, agents, calls):
    assert connection.vendor == "postgresql"
    make_calls(api_client_obj, calls)  # no agent ready yet: all wait
    profiles = make_agents(agents)
    # Ready without routing, so only the racing processes route.
    AgentProfile.objects.filter(pk__in=[p.pk for p in profiles]).update(
        presence=Presence.READY, idle_since=None
    )
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(start)],
            cwd=BASE_DIR,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    made = [int(out.strip().splitlines()[-1]) for out, _ in results]

    offers = list(CallOffer.objects.all())
    expected = min(agents, calls)
    assert sum(made) == len(offers) == expected
    per_call = Counter(o.call_id for o in offers)
    per_agent = Counter(o.agent_id for o in offers)
    assert max(per_call.values()) == 1, "a call was offered to two agents"
    assert max(per_agent.values()) == 1, "an agent was offered two calls"
    assert all(o.state == OfferState.PENDING for o in offers)
    assert Call.objects.filter(state=CallState.RINGING).count() == expected
    assert AgentProfile.objects.filter(presence=Presence.RINGING).count() == expected
    # The audit chain stayed one unbroken sequence under contention.
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    events = list(AuditEvent.objects.order_by("seq"))
    for prev, cur in itertools.pairwise(events):
        assert cur.prev_hash == prev.entry_hash
        assert cur.entry_hash == cur.compute_hash()
