from datetime import timedelta

import pytest
from django.utils import timezone, translation

from apps.accounts.models import Presence
from apps.calls.actions.offers import accept_offer
from apps.calls.actions.routing import set_presence_by_agent
from apps.calls.models import CallOffer
from apps.monitoring.models import QualitySample
from apps.monitoring.tests.test_metrics_health import new_call
from apps.monitoring.timeline import call_quality, quality_findings
from apps.qc.findings import label
from apps.recordings.models import KeyPoint, Recording

pytestmark = pytest.mark.django_db(transaction=True)


def sample(call, t0, second, *, role="customer", pid=1, fps=15.0, mos=4.3, loss=0.1):
    return QualitySample(
        call=call,
        participant_id=pid,
        role=role,
        at=t0 + timedelta(seconds=second),
        fps=fps,
        width=640,
        height=480,
        freeze_seconds=2.0 if fps < 1 else 0.0,
        loss_pct=loss,
        mos=mos,
    )


def test_a_customer_freeze_during_the_risk_disclosure_is_named_on_the_timeline(
    settings, api_client_obj, agent
):
    settings.MEDIA_STATS_SECONDS = 2.0
    call = new_call(api_client_obj)
    set_presence_by_agent(user=agent, state=Presence.READY)
    accept_offer(offer_id=CallOffer.objects.get(call=call).pk, agent=agent.agent_profile)
    t0 = timezone.now()
    # customer video: moving, frozen for the samples at 12 s and 14 s (10..14 s), moving again
    fps = {12: 0.0, 14: 0.0}
    QualitySample.objects.bulk_create(
        [sample(call, t0, s, fps=fps.get(s, 15.0)) for s in range(2, 22, 2)]
        + [sample(call, t0, s, role="agent", pid=2, mos=3.2, loss=6) for s in (2, 4)]
        + [sample(call, t0, s, role="agent", pid=2) for s in range(6, 22, 2)]
    )
    KeyPoint.objects.create(call=call, at=t0 + timedelta(seconds=8), code="risk_disclosed")

    items = call_quality(Recording(call=call))

    freezes = [i for i in items if "卡顿" in i["label"]]
    assert [i["label"] for i in freezes] == ["客户视频卡顿 4 秒，正值风险揭示"]
    assert freezes[0]["at"] == t0 + timedelta(seconds=10)
    assert freezes[0]["end"] == t0 + timedelta(seconds=14)
    assert freezes[0]["severity"] == "warning"
    poor = [i for i in items if "较差" in i["label"] and "MOS 3.2" in i["label"]]
    assert len(poor) == 1 and poor[0]["label"].startswith("座席")
    assert poor[0]["at"] == t0 and poor[0]["end"] == t0 + timedelta(seconds=4)
    summaries = [i for i in items if i["severity"] == "info"]
    assert len(summaries) == 2 and all(i["kind"] == "quality" for i in items)


def test_a_freeze_far_from_any_key_point_names_none(settings, api_client_obj):
    settings.MEDIA_STATS_SECONDS = 2.0
    call = new_call(api_client_obj)
    t0 = timezone.now()
    QualitySample.objects.bulk_create(
        [sample(call, t0, s, fps=0.0 if s == 100 else 15.0) for s in range(90, 110, 2)]
    )
    KeyPoint.objects.create(call=call, at=t0 + timedelta(seconds=10), code="risk_disclosed")
    (freeze,) = [i for i in call_quality(Recording(call=call)) if "卡顿" in i["label"]]
    assert freeze["label"] == "客户视频卡顿 2 秒"


def test_qc_gets_a_customer_freeze_during_a_key_point_and_no_other(settings, api_client_obj):
    settings.MEDIA_STATS_SECONDS = 2.0
    call = new_call(api_client_obj)
    t0 = timezone.now()
    frozen = {12: 0.0, 14: 0.0, 60: 0.0}  # 10..14 s during the disclosure, 58..60 s after it
    QualitySample.objects.bulk_create(
        [sample(call, t0, s, fps=frozen.get(s, 15.0)) for s in range(2, 64, 2)]
        + [sample(call, t0, s, role="agent", pid=2, fps=0.0) for s in (12, 14)]
    )
    KeyPoint.objects.create(call=call, at=t0 + timedelta(seconds=11), code="risk_disclosed")

    (finding,) = quality_findings(call, Recording(call=call, timeline_start=t0))

    assert finding["code"] == "key_point_freeze" and finding["severity"] == "warning"
    assert (finding["start"], finding["end"]) == (10.0, 14.0)
    assert (finding["participant"], finding["role"]) == (1, "customer")
    assert finding["detail"] == "客户视频卡顿 4 秒，正值风险揭示"
    assert finding["data"] == {"key_point": "risk_disclosed", "seconds": 4}
    assert label("key_point_freeze") == "关键节点期间客户视频卡顿"
    with translation.override("en"):
        assert label("key_point_freeze") == "Customer video froze during a key point"
