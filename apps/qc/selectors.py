"""Reads of apps.qc: the 应录未录 report (transactions that needed a recording and have no
passing one), reports for the pages and the review queue, statistics, and who may see them
or add a supplementary recording."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.banking import scenarios
from apps.banking.models import Transaction
from apps.calls.models import Call
from apps.qc.models import FINISHED_STATES, QcReport, ReportState, ReviewState, Verdict
from apps.recordings.models import Recording, RecordingState

#: A signed-in staff user, or nobody (request.user).
Viewer = AbstractBaseUser | AnonymousUser

#: Who sees QC reports and the misses report: QC reviewers and supervisors.
QC_ROLES = ("qc_reviewer", "supervisor")

#: Why a transaction counts as "should have been recorded, was not" (应录未录).
MISS_REASONS: dict[str, Promise] = {
    "no_recording": _("没有录像"),
    "recording_failed": _("录像合成失败"),
    "recording_damaged": _("录像已损坏"),
    "recording_pending": _("录像尚未就绪"),
    "not_inspected": _("尚未质检"),
    "qc_failed": _("质检不通过"),
    "qc_error": _("质检出错，待人工复核"),
    "needs_review": _("待人工复核"),
}

#: Transaction states that mean no business was done: nothing needed recording.
NOT_DONE_STATES = ("draft", "cancelled")


def user_roles(user: Viewer) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    groups = getattr(user, "groups", None)
    return set(groups.values_list("name", flat=True)) if groups is not None else set()


def can_inspect(user: Viewer) -> bool:
    return bool(user_roles(user) & set(QC_ROLES))


def may_upload(user: Viewer, call: Call) -> bool:
    """Who may add a supplementary recording to a call: its agent, QC reviewers, supervisors."""
    if can_inspect(user):
        return True
    agent = call.agent
    return agent is not None and agent.user_id == getattr(user, "pk", None)


def latest_report(recording: Recording) -> QcReport | None:
    """The recording's latest finished report (a run that failed included)."""
    return (
        QcReport.objects.filter(recording=recording, state__in=FINISHED_STATES)
        .order_by("-finished_at")
        .first()
    )


def failed_report(call: Call) -> QcReport | None:
    """The call's latest finished report if its verdict (after review) is fail (a run that
    failed is one: the agent may then upload the local backup)."""
    report = (
        QcReport.objects.filter(call=call, state__in=FINISHED_STATES)
        .order_by("-finished_at")
        .first()
    )
    return report if report is not None and report.effective_verdict == Verdict.FAIL else None


@dataclass(frozen=True)
class Miss:
    transaction_id: str
    scenario: str
    scenario_name: str
    tx_state: str
    call_id: str
    call_number: str
    agent_employee_no: str
    at: datetime
    reason: str
    recording_id: str | None
    report_id: str | None

    @property
    def reason_label(self) -> str:
        return str(MISS_REASONS[self.reason])


def recording_misses(*, since: datetime | None = None, until: datetime | None = None) -> list[Miss]:
    """Every transaction whose scenario requires recording and whose call has no recording
    that passed QC (the latest finished report's verdict), oldest first."""
    query = Transaction.objects.exclude(state__in=NOT_DONE_STATES).select_related(
        "call", "call__agent"
    )
    if since is not None:
        query = query.filter(created_at__gte=since)
    if until is not None:
        query = query.filter(created_at__lt=until)
    txs = list(query.order_by("created_at"))
    calls = {t.call_id for t in txs}
    recordings = {r.call_id: r for r in Recording.objects.filter(call_id__in=calls)}
    latest: dict[uuid.UUID, QcReport] = {}
    for done in QcReport.objects.filter(call_id__in=calls, state__in=FINISHED_STATES).order_by(
        "finished_at"
    ):
        latest[done.call_id] = done
    misses = []
    for tx in txs:
        scenario = scenarios.get(tx.scenario)
        if scenario is None or not scenario.requires_recording:
            continue
        recording = recordings.get(tx.call_id)
        report = latest.get(tx.call_id)
        reason = _miss_reason(recording, report)
        if reason is None:
            continue
        agent = tx.call.agent
        misses.append(
            Miss(
                transaction_id=str(tx.pk),
                scenario=tx.scenario,
                scenario_name=scenario.name,
                tx_state=tx.state,
                call_id=str(tx.call_id),
                call_number=tx.call.number,
                agent_employee_no=agent.employee_no if agent is not None else "",
                at=tx.created_at,
                reason=reason,
                recording_id=str(recording.pk) if recording else None,
                report_id=str(report.pk) if report else None,
            )
        )
    return misses


def _miss_reason(recording: Recording | None, report: QcReport | None) -> str | None:
    """Why a transaction's call has no passing recording (`MISS_REASONS`), None if it has."""
    if recording is None:
        return "no_recording"
    if recording.state == RecordingState.FAILED:
        return "recording_failed"
    if recording.state != RecordingState.READY:
        return "recording_pending"
    if recording.damaged_at is not None:  # whatever QC said of it, the file is not evidence now
        return "recording_damaged"
    if report is None:
        return "not_inspected"
    if report.effective_verdict == Verdict.PASS:
        return None
    if report.state == ReportState.FAILED and not report.final_verdict:
        return "qc_error"
    if report.effective_verdict == Verdict.FAIL:
        return "qc_failed"
    return "needs_review"


def report_for_viewer(user: Viewer, report_id: uuid.UUID | str) -> QcReport | None:
    if not can_inspect(user):
        return None
    try:
        rid = uuid.UUID(str(report_id))
    except ValueError:
        return None
    return (
        QcReport.objects.select_related("recording", "call", "call__agent").filter(pk=rid).first()
    )


def review_queue(user: AbstractBaseUser) -> QuerySet[QcReport]:
    """Reports waiting for `user`'s review, oldest first: failed, needs-review and sampled
    passed ones, and runs that failed; second reviews only of reports someone else reviewed
    first."""
    return (
        QcReport.objects.filter(state__in=FINISHED_STATES)
        .filter(
            Q(review_state=ReviewState.PENDING)
            | (Q(review_state=ReviewState.SECOND) & ~Q(reviews__reviewer=user))
        )
        .select_related("call", "call__agent")
        .order_by("finished_at")
        .distinct()
    )


def statistics() -> dict[str, list[dict[str, Any]]]:
    """Per agent (employee number) and per scenario: reports, their effective verdicts, the
    average automatic score (a run that failed counts as fail, scoring 0)."""
    by_agent: dict[str, dict[str, Any]] = {}
    by_scenario: dict[str, dict[str, Any]] = {}
    scenarios_of: dict[Any, list[str]] = {}
    for call_id, code in Transaction.objects.exclude(state__in=NOT_DONE_STATES).values_list(
        "call_id", "scenario"
    ):
        scenarios_of.setdefault(call_id, []).append(code)
    latest: dict[Any, QcReport] = {}
    for report in (
        QcReport.objects.filter(state__in=FINISHED_STATES)
        .select_related("call", "call__agent")
        .order_by("finished_at")
    ):
        latest[report.call_id] = report
    for report in latest.values():
        agent = report.call.agent.employee_no if report.call.agent is not None else "—"
        keys = [(by_agent, agent)] + [
            (by_scenario, c) for c in scenarios_of.get(report.call_id, [])
        ]
        for table, key in keys:
            row = table.setdefault(
                key, {"key": key, "reports": 0, "pass": 0, "fail": 0, "needs_review": 0, "score": 0}
            )
            row["reports"] += 1
            row[report.effective_verdict] += 1
            row["score"] += report.score or 0
    for code, row in by_scenario.items():
        scenario = scenarios.get(code)
        row["label"] = scenario.name if scenario is not None else code  # people read names
    for table in (by_agent, by_scenario):
        for row in table.values():
            row["average_score"] = round(row.pop("score") / row["reports"], 1)
            row["pass_rate"] = round(row["pass"] / row["reports"], 3)
    return {
        "agents": sorted(by_agent.values(), key=lambda r: r["key"]),
        "scenarios": sorted(by_scenario.values(), key=lambda r: r["key"]),
    }
