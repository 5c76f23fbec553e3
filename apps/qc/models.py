"""Quality inspection (质检): one automatic report per inspected recording, with findings.

A report is made by the QC job (`apps.qc.jobs.run_qc`, queue ``qc``) when a recording becomes
ready; its findings sit on the call's timeline both as seconds into the composed file
(`start_offset` / `end_offset`) and as server wall-clock times (`start_at` / `end_at`).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.calls.models import Call, Participant, ParticipantRole
from apps.recordings.models import Recording


class ReportState(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("质检中")
    DONE = "done", _("已完成")
    FAILED = "failed", _("质检失败")


#: A report that will not change without a new run: inspected, or given up on after its retries
#: (a failed run counts as not passed: verdict fail, in the review queue).
FINISHED_STATES = (ReportState.DONE, ReportState.FAILED)


class Verdict(models.TextChoices):
    PASS = "pass", _("通过")
    NEEDS_REVIEW = "needs_review", _("待复核")
    FAIL = "fail", _("不通过")


class ReviewState(models.TextChoices):
    NONE = "", _("无需复核")
    PENDING = "pending", _("待复核")
    SECOND = "second", _("待二次复核")
    DONE = "done", _("已复核")


class Severity(models.TextChoices):
    INFO = "info", _("提示")
    WARNING = "warning", _("警告")
    ERROR = "error", _("严重")


class Category(models.TextChoices):
    COMPLETE = "complete", _("完整性")
    MEDIA = "media", _("音视频质量")
    VISION = "vision", _("画面合规")
    COMPLIANCE = "compliance", _("业务合规")


class QcReport(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="qc_reports")
    call = models.ForeignKey(Call, on_delete=models.PROTECT, related_name="qc_reports")
    state = models.CharField(
        _("状态"), max_length=16, choices=ReportState.choices, default=ReportState.QUEUED
    )
    verdict = models.CharField(_("结论"), max_length=16, choices=Verdict.choices, blank=True)
    score = models.PositiveSmallIntegerField(_("得分"), null=True, blank=True)
    progress = models.FloatField(_("进度"), default=0.0)
    attempts = models.PositiveIntegerField(default=0)
    job_id = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # The composed file inspected (its SM3 at the time: a recomposed file gets a new report).
    composed_sm3 = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    analysis_seconds = models.FloatField(null=True, blank=True)
    # Human review: failed and needs-review reports, plus a sample of passed ones
    # (QC_REVIEW_SAMPLE_RATE), wait in the reviewers' queue; QC_SECOND_REVIEW asks a second,
    # different reviewer. `final_verdict` is the last required reviewer's verdict.
    review_state = models.CharField(
        _("复核状态"), max_length=16, choices=ReviewState.choices, blank=True
    )
    sampled = models.BooleanField(default=False)
    final_verdict = models.CharField(
        _("复核结论"), max_length=16, choices=Verdict.choices, blank=True
    )
    # Set when the report inspects a supplementary upload instead of the composed file.
    supplement = models.ForeignKey(
        "Supplement", null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )

    class Meta:
        verbose_name = _("质检报告")
        verbose_name_plural = _("质检报告")
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["verdict", "requested_at"])]

    def __str__(self) -> str:
        return f"qc {self.pk} of {self.recording_id}: {self.verdict or self.state}"

    @property
    def effective_verdict(self) -> str:
        """What counts: the reviewers' verdict once reviewed, else the automatic one."""
        return self.final_verdict or self.verdict


class QcFinding(models.Model):
    report = models.ForeignKey(QcReport, on_delete=models.CASCADE, related_name="findings")
    category = models.CharField(_("类别"), max_length=16, choices=Category.choices)
    code = models.CharField(_("问题"), max_length=40)
    severity = models.CharField(_("级别"), max_length=8, choices=Severity.choices)
    # Seconds into the composed file (second 0 = Recording.timeline_start) and wall clock;
    # empty for a finding about the whole recording (a missing key point).
    start_offset = models.FloatField(null=True, blank=True)
    end_offset = models.FloatField(null=True, blank=True)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    role = models.CharField(max_length=16, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("质检发现")
        verbose_name_plural = _("质检发现")
        ordering = ["start_offset", "id"]

    def __str__(self) -> str:
        return f"{self.code} {self.start_offset}-{self.end_offset}"

    def role_name(self) -> str:
        """Whose the finding is, for people: the role's name (empty for none or unknown)."""
        return str(dict(ParticipantRole.choices).get(self.role, ""))


#: What a reviewer checks that machines cannot (code -> label).
CHECKLIST: dict[str, object] = {
    "identity": _("客户身份核验过程清晰可见"),
    "risk": _("风险揭示完整、客户已听清"),
    "consent": _("客户本人明确表示同意"),
    "script": _("座席话术规范"),
    "voluntary": _("无诱导、无代办、客户自愿"),
}


class QcReview(models.Model):
    report = models.ForeignKey(QcReport, on_delete=models.PROTECT, related_name="reviews")
    round = models.PositiveSmallIntegerField(_("轮次"))  # 1, or 2 for the second reviewer
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(_("结论"), max_length=16, choices=Verdict.choices)
    comments = models.TextField(_("意见"), max_length=2000, blank=True)
    checklist = models.JSONField(_("检查项"), default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("人工复核")
        verbose_name_plural = _("人工复核")
        ordering = ["report", "round"]
        constraints = [
            models.UniqueConstraint(fields=["report", "round"], name="uniq_review_round")
        ]

    def __str__(self) -> str:
        return f"review {self.round} of {self.report_id}: {self.verdict}"


class Supplement(models.Model):
    """A supplementary recording (补录): the agent workstation's local backup of a call whose
    server recording failed QC, uploaded, validated, stored encrypted through
    apps.recordings.storage under the recording's data key, and QC'd like the original."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.ForeignKey(Call, on_delete=models.PROTECT, related_name="supplements")
    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="supplements")
    # The failed report that allowed the upload.
    failed_report = models.ForeignKey(
        QcReport, on_delete=models.PROTECT, related_name="supplements_allowed"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    storage_key = models.CharField(max_length=300, unique=True)
    size = models.BigIntegerField()
    sm3 = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    container = models.CharField(max_length=32)
    video_codec = models.CharField(max_length=16)
    audio_codec = models.CharField(max_length=16)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    duration_seconds = models.FloatField()
    anchor_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("补录")
        verbose_name_plural = _("补录")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.storage_key
