"""The operating picture: what the wallboard shows, `/metrics` exports and `manage.py status`
prints, read from the database, Redis and RQ (so it is right whatever process changed it)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import django_rq
from django.conf import settings
from django.db.models import Count, Min, Sum
from django.utils import timezone
from rq import Worker
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.worker import BaseWorker

from apps.accounts.models import AgentProfile, Presence, Skill
from apps.audit.models import ChainHead, Checkpoint
from apps.calls import media as call_media
from apps.calls.models import Call, CallState, EndReason
from apps.calls.selectors import live_calls
from apps.monitoring.models import QualitySample
from apps.recordings.models import RecordingSegment
from medialib import emodel
from remotebank import queues, redis
from remotebank.processes import ended_here

# Process events of `make run` (remotebank.stack writes them): newest first, capped.
STACK_EVENTS_KEY = "rb:monitoring:stack_events"
BATCH_QUEUES = (queues.COMPOSE, queues.QC, queues.BANKING, queues.WEBHOOKS)
# An RQ worker refreshes its heartbeat at least this often while idle (rq's default
# worker_ttl is 420 s; it heartbeats every worker_ttl - 15 s at worst, so older ones are dead).
WORKER_HEARTBEAT_MAX_AGE = 420.0
ABANDONED = (EndReason.CUSTOMER_CANCELLED, EndReason.ABANDONED)


def day_start(now: dt.datetime | None = None) -> dt.datetime:
    local = timezone.localtime(now or timezone.now())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def agents_by_presence() -> dict[str, int]:
    counts = dict.fromkeys(Presence.values, 0)
    for row in AgentProfile.objects.values("presence").annotate(n=Count("id")):
        counts[row["presence"]] = row["n"]
    return counts


def waiting_by_skill(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Customers waiting (queued or being offered) per skill, with the longest wait."""
    now = now or timezone.now()
    rows = {
        row["business_type__skill__code"]: row
        for row in Call.objects.filter(state__in=(CallState.QUEUED, CallState.RINGING))
        .values("business_type__skill__code")
        .annotate(n=Count("id"), oldest=Min("queued_at"))
    }
    out = []
    for skill in Skill.objects.order_by("code"):
        row = rows.get(skill.code)
        out.append(
            {
                "skill": skill.code,
                "name": skill.name,
                "waiting": row["n"] if row else 0,
                "longest_wait_seconds": round((now - row["oldest"]).total_seconds()) if row else 0,
            }
        )
    return out


def calls_by_state() -> dict[str, int]:
    counts = dict.fromkeys(CallState.values, 0)
    for row in Call.objects.exclude(state=CallState.ENDED).values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    counts[CallState.ENDED] = Call.objects.filter(
        state=CallState.ENDED, ended_at__gte=day_start()
    ).count()
    return counts


def day_figures(now: dt.datetime | None = None) -> dict[str, Any]:
    """Today's service level (answered within the threshold, of answered + abandoned),
    abandonment rate and average handle time (connected to ended)."""
    now = now or timezone.now()
    threshold = dt.timedelta(seconds=settings.MONITORING_SERVICE_LEVEL_SECONDS)
    answered = within = abandoned = handled = 0
    handle_total = 0.0
    # the day's chart: calls answered and abandoned per hour (by when they queued)
    hours = [{"hour": h, "answered": 0, "abandoned": 0} for h in range(24)]
    for queued_at, connected_at, ended_at, state, reason in Call.objects.filter(
        queued_at__gte=day_start(now)
    ).values_list("queued_at", "connected_at", "ended_at", "state", "end_reason"):
        hour = hours[timezone.localtime(queued_at).hour]
        if connected_at is not None:
            answered += 1
            hour["answered"] += 1
            within += connected_at - queued_at <= threshold
            if state == CallState.ENDED and ended_at is not None:
                handled += 1
                handle_total += (ended_at - connected_at).total_seconds()
        elif state == CallState.ENDED and reason in ABANDONED:
            abandoned += 1
            hour["abandoned"] += 1
    offered = answered + abandoned
    return {
        "answered": answered,
        "abandoned": abandoned,
        "service_level_seconds": settings.MONITORING_SERVICE_LEVEL_SECONDS,
        "service_level_pct": round(100 * within / offered) if offered else None,
        "abandon_pct": round(100 * abandoned / offered) if offered else None,
        "aht_seconds": round(handle_total / handled) if handled else None,
        "hours": hours[: timezone.localtime(now).hour + 1],
    }


def latest_quality(call_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per call: the worst leg of its latest samples (what the badge shows)."""
    if not call_ids:
        return {}
    since = timezone.now() - dt.timedelta(seconds=3 * settings.MEDIA_STATS_SECONDS + 2)
    out: dict[str, dict[str, Any]] = {}
    for sample in QualitySample.objects.filter(call_id__in=call_ids, at__gte=since).order_by("at"):
        # later samples of a leg replace earlier ones; then the worst leg wins
        out.setdefault(str(sample.call_id), {})[str(sample.participant_id)] = sample.mos
    return {
        call_id: {"mos": min(legs.values()), "badge": emodel.badge(min(legs.values()))}
        for call_id, legs in out.items()
    }


def calls_in_progress() -> list[dict[str, Any]]:
    rows = live_calls()
    quality = latest_quality([row["call_id"] for row in rows])
    now = timezone.now()
    for row in rows:
        q = quality.get(row["call_id"], {"mos": None, "badge": "none"})
        row["mos"], row["quality"] = q["mos"], q["badge"]
        connected = row.get("connected_at")
        row["duration_seconds"] = (
            round((now - dt.datetime.fromisoformat(connected)).total_seconds()) if connected else 0
        )
    return rows


def _gone(worker: BaseWorker) -> bool:
    """A worker of this host whose process has ended (a kill -9 leaves its registration and
    last heartbeat for minutes): dead at once. Other hosts' workers only age out."""
    return ended_here(worker.hostname or "", worker.pid or 0)


def media_workers() -> list[dict[str, Any]]:
    """Media worker processes alive by RQ's heartbeat, with the calls each carries (by the
    calls' own media heartbeats) and its capacity."""
    queue = django_rq.get_queue(queues.MEDIA)
    carried: dict[tuple[str, int], int] = {}
    for call in Call.objects.filter(state=CallState.CONNECTED).only("pk", "media_epoch"):
        hb = call_media.heartbeat(call.pk)
        if hb is not None and hb["epoch"] == call.media_epoch:
            key = (hb["host"], hb["pid"])
            carried[key] = carried.get(key, 0) + 1
    now = timezone.now()
    out = []
    for worker in Worker.all(queue=queue):
        beat = worker.last_heartbeat
        age = (now - beat).total_seconds() if beat else None
        if age is None or age > WORKER_HEARTBEAT_MAX_AGE or _gone(worker):
            continue
        out.append(
            {
                "name": worker.name,
                "host": worker.hostname or "",
                "pid": worker.pid,
                "calls": carried.get((worker.hostname or "", worker.pid or 0), 0),
                "capacity": settings.MEDIA_WORKER_CAPACITY,
                "heartbeat_age_seconds": round(age, 1),
            }
        )
    return sorted(out, key=lambda w: w["name"])


def job_queues() -> list[dict[str, Any]]:
    """Depth of each batch queue, the jobs running (with their progress) and failed ones."""
    out = []
    for name in BATCH_QUEUES:
        queue = django_rq.get_queue(name)
        started = StartedJobRegistry(queue=queue)
        running = []
        for job in queue.job_class.fetch_many(
            started.get_job_ids()[:10], connection=queue.connection
        ):
            if job is not None:
                running.append({"id": job.id, "progress": job.meta.get("progress")})
        out.append(
            {
                "queue": name,
                "recent_durations": _recent_durations(queue),
                "queued": queue.count,
                "running": len(started),
                "failed": len(FailedJobRegistry(queue=queue)),
                "jobs": running,
            }
        )
    return out


def _recent_durations(queue: Any, limit: int = 50) -> list[float]:
    """Wall times of the latest finished jobs RQ still keeps (result_ttl: a day)."""
    ids = FinishedJobRegistry(queue=queue).get_job_ids(-limit, -1)
    out = []
    for job in queue.job_class.fetch_many(ids, connection=queue.connection):
        if job is not None and job.started_at and job.ended_at:
            out.append((job.ended_at - job.started_at).total_seconds())
    return out


def evidence_lag() -> dict[str, Any]:
    head = ChainHead.objects.first()
    last = Checkpoint.objects.order_by("-tree_size").first()
    size = head.seq if head is not None else 0
    return {
        "entries_since_checkpoint": size - (last.tree_size if last else 0),
        "last_checkpoint_at": last.created_at.isoformat() if last else None,
    }


def recording_bytes() -> int:
    return int(RecordingSegment.objects.aggregate(total=Sum("bytes"))["total"] or 0)


def stack_events(limit: int = 20) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in redis.client().lrange(STACK_EVENTS_KEY, 0, limit - 1)]


def alerts(picture: dict[str, Any]) -> list[dict[str, Any]]:
    """Live alerts on the picture (the same conditions as the Prometheus rules file), then the
    recent process restarts of the stack."""
    out: list[dict[str, Any]] = []
    for row in picture["waiting"]:
        if row["longest_wait_seconds"] > 2 * settings.MONITORING_SERVICE_LEVEL_SECONDS:
            out.append({"kind": "long_wait", "skill": row["skill"], "name": row["name"]})
    workers = picture["media_workers"]
    if not workers:
        out.append({"kind": "no_media_worker"})
    elif sum(w["calls"] for w in workers) >= 0.8 * sum(w["capacity"] for w in workers):
        out.append({"kind": "media_capacity"})
    for event in picture["stack_events"][:5]:
        if time.time() - float(event.get("at", 0)) < 3600:
            out.append({"kind": "process_restarted", **event})
    return out


def picture() -> dict[str, Any]:
    """Everything the wallboard shows, as one JSON-able dict."""
    now = timezone.now()
    out: dict[str, Any] = {
        "at": now.isoformat(),
        "agents": agents_by_presence(),
        "waiting": waiting_by_skill(now),
        "calls": calls_by_state(),
        "day": day_figures(now),
        "in_progress": calls_in_progress(),
        "media_workers": media_workers(),
        "job_queues": job_queues(),
        "evidence": evidence_lag(),
        "stack_events": stack_events(),
    }
    out["longest_wait_seconds"] = max(
        (w["longest_wait_seconds"] for w in out["waiting"]), default=0
    )
    out["waiting_total"] = sum(w["waiting"] for w in out["waiting"])
    out["alerts"] = alerts(out)
    return out
