import pytest
from django.contrib.auth import get_user_model
from prometheus_client.parser import text_string_to_metric_families

from apps.accounts.models import Presence
from apps.calls.actions.offers import accept_offer
from apps.calls.actions.queue import join_queue
from apps.calls.actions.routing import set_presence_by_agent
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.models import CallOffer, CallState
from apps.monitoring import selectors
from apps.monitoring.actions.quality import record_samples
from apps.monitoring.models import QualitySample

pytestmark = pytest.mark.django_db(transaction=True)


def new_call(api_client_obj, reference="DEMO0001", business="debit_pin_reset"):
    ticket, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference=reference,
        customer_name="",
        business_code=business,
        location=None,
    )
    redeem_entry_ticket(token=token)
    return join_queue(ticket_id=ticket.pk, location=None)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_needs_a_token_or_a_supervisor(client, settings, agent, supervisor):
    settings.MONITORING_METRICS_TOKEN = "t0ken-for-prometheus"
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    response = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 403
    client.force_login(agent)
    assert client.get("/metrics").status_code == 403
    client.logout()
    ok = client.get("/metrics", headers={"Authorization": "Bearer t0ken-for-prometheus"})
    assert ok.status_code == 200
    client.force_login(supervisor)
    assert client.get("/metrics").status_code == 200


def test_metrics_show_the_queue_agents_and_calls_in_progress(client, api_client_obj, supervisor):
    client.force_login(supervisor)
    queued = new_call(api_client_obj)
    got = samples(client.get("/metrics").content.decode())
    skill = queued.business_type.skill.code
    assert got[("remotebank_queue_length", (("skill", skill),))] == 1
    assert got[("remotebank_calls", (("state", "queued"),))] == 1
    assert got[("remotebank_calls_in_progress", ())] == 0

    agent01 = get_user_model().objects.get(username="agent01")
    set_presence_by_agent(user=agent01, state=Presence.READY)
    offer = CallOffer.objects.get(call=queued)
    accept_offer(offer_id=offer.pk, agent=agent01.agent_profile)
    got = samples(client.get("/metrics").content.decode())
    assert got[("remotebank_queue_length", (("skill", skill),))] == 0
    assert got[("remotebank_calls_in_progress", ())] == 1
    assert got[("remotebank_agents", (("presence", "busy"),))] == 1
    assert got[("remotebank_routing_decisions_total", (("decision", "offered"),))] >= 1


def test_refusals_are_counted_by_code(client, supervisor):
    client.force_login(supervisor)
    before = samples(client.get("/metrics").content.decode())
    from remotebank.errors import ServiceError

    ServiceError("wrong_state", "x")
    after = samples(client.get("/metrics").content.decode())
    key = ("remotebank_errors_total", (("code", "wrong_state"),))
    assert after[key] == before.get(key, 0) + 1


def test_quality_samples_are_stored_with_their_mos_and_shown_as_a_badge(api_client_obj, agent):
    call = new_call(api_client_obj)
    set_presence_by_agent(user=agent, state=Presence.READY)
    accept_offer(offer_id=CallOffer.objects.get(call=call).pk, agent=agent.agent_profile)
    rows = [
        {
            "participant_id": 1,
            "role": "customer",
            "in_kbps": 500,
            "out_kbps": 480,
            "loss_pct": 0.0,
            "jitter_ms": 4.0,
            "rtt_ms": 30.0,
            "fps": 15,
            "width": 640,
            "height": 480,
        },
        {
            "participant_id": 2,
            "role": "agent",
            "in_kbps": 100,
            "out_kbps": 480,
            "loss_pct": 9.0,
            "jitter_ms": 70.0,
            "rtt_ms": 700.0,
            "fps": 0,
            "width": 640,
            "height": 480,
            "had_video": True,
        },
        {  # a guest whose first frames arrived at the end of the interval: starting, not frozen
            "participant_id": 3,
            "role": "guest",
            "loss_pct": 0.0,
            "jitter_ms": 4.0,
            "rtt_ms": 30.0,
            "fps": 0.5,
            "width": 640,
            "height": 480,
            "had_video": False,
        },
    ]
    assert record_samples(call_id=call.pk, rows=rows) == 3
    stored = {s.role: s for s in QualitySample.objects.filter(call=call)}
    assert stored["customer"].mos >= 4.0 and stored["customer"].freeze_seconds == 0
    assert stored["agent"].mos < 3.0 and stored["agent"].freeze_seconds > 0
    assert stored["guest"].fps == 0.5 and stored["guest"].freeze_seconds == 0
    (row,) = selectors.calls_in_progress()
    assert row["quality"] == "poor" and row["mos"] == stored["agent"].mos


def test_healthz_answers_and_readyz_names_the_missing_media_worker(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    body = response.json()
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["channel_layer"]["ok"] and body["checks"]["migrations"]["ok"]
    # no media worker runs in this test
    assert response.status_code == 503 and not body["checks"]["media_workers"]["ok"]


def test_the_wallboard_picture_counts_waiting_customers_and_day_figures(api_client_obj, demo):
    new_call(api_client_obj)
    picture = selectors.picture()
    assert picture["waiting_total"] == 1
    assert picture["calls"][CallState.QUEUED] == 1
    assert picture["day"]["service_level_pct"] is None  # nothing answered or abandoned yet
    assert {"kind": "no_media_worker"} in picture["alerts"]


@pytest.mark.e2e
def test_a_media_worker_killed_on_this_host_is_gone_at_once():
    """kill -9 leaves RQ's registration and last heartbeat for minutes; readiness and the
    wallboard must not count the dead worker meanwhile."""
    import os
    import signal
    import time

    from tests.live import rq_worker

    with rq_worker("media") as proc:
        deadline = time.monotonic() + 60
        while not any(w["pid"] == proc.pid for w in selectors.media_workers()):
            assert time.monotonic() < deadline, "the media worker never registered"
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert not any(w["pid"] == proc.pid for w in selectors.media_workers())
