"""Recordings (双录): one per call, made of raw per-track segments and one composed file.

The media job writes every incoming track as short WebM segments (`RecordingSegment`); when
the call ends a compose job turns them into one MP4 (`Recording.composed_*`). Each file's
SM3 and SHA-256 are anchored in the evidence chain (`anchor_seq` = the audit event's seq).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.calls.models import Call, Participant
from apps.recordings.keypoints import FREE, label
from apps.security.models import DataKey


class RecordingState(models.TextChoices):
    RECORDING = "recording", _("录制中")
    COMPOSING = "composing", _("合成中")
    READY = "ready", _("已就绪")
    FAILED = "failed", _("合成失败")


RECORDING_TRANSITIONS: dict[str, frozenset[str]] = {
    RecordingState.RECORDING: frozenset({RecordingState.COMPOSING, RecordingState.FAILED}),
    # A retry of a failed attempt starts composing again; a ready recording can be recomposed
    # (e.g. with a newer layout), which keeps the earlier file's digests in the audit log.
    RecordingState.COMPOSING: frozenset(
        {RecordingState.COMPOSING, RecordingState.READY, RecordingState.FAILED}
    ),
    RecordingState.FAILED: frozenset({RecordingState.COMPOSING}),
    RecordingState.READY: frozenset({RecordingState.COMPOSING}),
}


class Recording(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.OneToOneField(Call, on_delete=models.PROTECT, related_name="recording")
    state = models.CharField(
        _("状态"), max_length=16, choices=RecordingState.choices, default=RecordingState.RECORDING
    )
    # Every file of the recording is encrypted under this key (RECORDINGS_ENCRYPT).
    data_key = models.ForeignKey(
        DataKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Wall clock (server) of the first and last media written, over all tracks and epochs.
    first_media_at = models.DateTimeField(null=True, blank=True)
    last_media_at = models.DateTimeField(null=True, blank=True)

    # Composition.
    compose_requested_at = models.DateTimeField(null=True, blank=True)
    compose_started_at = models.DateTimeField(null=True, blank=True)
    compose_attempts = models.PositiveIntegerField(default=0)
    compose_job_id = models.CharField(max_length=100, blank=True)
    progress = models.FloatField(_("进度"), default=0.0)  # 0..1 of the current attempt
    error = models.CharField(max_length=500, blank=True)
    composed_at = models.DateTimeField(null=True, blank=True)
    composed_key = models.CharField(max_length=300, blank=True)
    composed_size = models.BigIntegerField(null=True, blank=True)
    composed_sm3 = models.CharField(max_length=64, blank=True)
    composed_sha256 = models.CharField(max_length=64, blank=True)
    composed_anchor_seq = models.BigIntegerField(null=True, blank=True)
    # The composed file's timeline: second 0 of the MP4 is `timeline_start` (wall clock), so
    # key points and the playback page map wall-clock times to positions in the file.
    timeline_start = models.DateTimeField(null=True, blank=True)
    timeline_end = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    # Layout version, encoder settings, interruptions shown (gaps), frame and sample counts.
    compose_info = models.JSONField(default=dict, blank=True)
    # Legal hold (法律保全): while set, nothing of the recording is deleted, whatever retention
    # says. Set and cleared through actions.retention (audited).
    legal_hold = models.BooleanField(_("法律保全"), default=False)
    legal_hold_reason = models.CharField(max_length=200, blank=True)
    legal_hold_since = models.DateTimeField(null=True, blank=True)
    # Retention ended and the files were deleted: the row (digests, anchors) stays as evidence
    # that the recording existed and what it was.
    purged_at = models.DateTimeField(_("已清除"), null=True, blank=True)
    # A chunk of the composed file failed authentication on reading (altered at rest): the
    # file is no longer the sealed evidence. Set by actions.damage, cleared by recomposing.
    damaged_at = models.DateTimeField(_("录像已损坏"), null=True, blank=True)

    class Meta:
        verbose_name = _("双录录像")
        verbose_name_plural = _("双录录像")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"recording of {self.call_id}"

    def can_move_to(self, new: str) -> bool:
        return new in RECORDING_TRANSITIONS[self.state]


class SegmentKind(models.TextChoices):
    AUDIO = "audio", _("音频")
    VIDEO = "video", _("视频")


class SegmentSource(models.TextChoices):
    CAMERA = "camera", _("摄像头")
    SCREEN = "screen", _("屏幕共享")
    # A supervisor's whisper to the agent: kept raw as evidence, never in the composed file.
    WHISPER = "whisper", _("主管耳语")
    # Server announcements (TTS): mixed into the composed audio.
    ANNOUNCE = "announce", _("系统播报")


class RecordingSegment(models.Model):
    """One raw segment of one incoming track: WebM (VP8 or Opus, remuxed, never re-encoded).

    A row is created when its file is opened (so a killed media job leaves rows pointing at
    its partial files) and completed when the file is sealed; `salvaged` marks a file whose
    writer died, hashed later as found.
    """

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="segments")
    call = models.ForeignKey(Call, on_delete=models.PROTECT, related_name="recording_segments")
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="recording_segments"
    )
    role = models.CharField(max_length=16)
    kind = models.CharField(max_length=8, choices=SegmentKind.choices)
    source = models.CharField(
        max_length=16, choices=SegmentSource.choices, default=SegmentSource.CAMERA
    )
    codec = models.CharField(max_length=16)
    epoch = models.PositiveIntegerField()  # the media job that wrote it
    # The nth incoming stream of this participant and kind within the epoch (a reconnect
    # starts a new one) and the segment's number within participant, kind and epoch.
    stream = models.PositiveIntegerField(default=1)
    seq = models.PositiveIntegerField()
    # Server wall clock of the first packet and the end of the last (RTP -> wall clock).
    start_at = models.DateTimeField()
    end_at = models.DateTimeField(null=True, blank=True)
    clock_source = models.CharField(max_length=16, blank=True)  # rtcp-sr | arrival
    clock_rate = models.PositiveIntegerField()
    rtp_first = models.BigIntegerField()
    rtp_last = models.BigIntegerField(null=True, blank=True)
    packets = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)  # plaintext size of the file
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    storage_key = models.CharField(max_length=300, unique=True)
    encrypted = models.BooleanField(default=False)
    sm3 = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    complete = models.BooleanField(default=False)
    salvaged = models.BooleanField(default=False)
    missing = models.BooleanField(default=False)  # the file was gone when it was looked for
    anchor_seq = models.BigIntegerField(null=True, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    sealed_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)  # file deleted by retention

    class Meta:
        verbose_name = _("录像分段")
        verbose_name_plural = _("录像分段")
        ordering = ["start_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["call", "participant", "kind", "source", "epoch", "seq"],
                name="uniq_segment_seq",
            )
        ]
        indexes = [models.Index(fields=["recording", "kind", "start_at"])]

    def __str__(self) -> str:
        return self.storage_key

    @property
    def sealed(self) -> bool:
        """Its digests are known: sealed by its writer, or salvaged after the writer died."""
        return self.complete or self.salvaged

    @property
    def duration_seconds(self) -> float | None:
        if self.end_at is None:
            return None
        return (self.end_at - self.start_at).total_seconds()


class KeyPointSource(models.TextChoices):
    AGENT = "agent", _("座席打点")
    AUTO = "auto", _("系统打点")


class KeyPoint(models.Model):
    """A marker (打点) on the call's timeline: its server wall-clock time and what it marks.

    `recording` is set when the call has one (it is created with the media); the composed
    MP4 carries every key point as a chapter (`timeline_start` maps `at` into the file)."""

    call = models.ForeignKey(Call, on_delete=models.PROTECT, related_name="key_points")
    recording = models.ForeignKey(
        Recording, null=True, blank=True, on_delete=models.PROTECT, related_name="key_points"
    )
    at = models.DateTimeField(_("时间"), db_index=True)
    code = models.CharField(_("打点"), max_length=40)
    text = models.CharField(_("说明"), max_length=200, blank=True)
    source = models.CharField(
        max_length=8, choices=KeyPointSource.choices, default=KeyPointSource.AGENT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    transaction_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("打点")
        verbose_name_plural = _("打点")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.code}@{self.at:%H:%M:%S}"

    @property
    def title(self) -> str:
        """What the chapter and the timeline show: the free text, or the code's label."""
        if self.code == FREE:
            return self.text
        return f"{label(self.code)}: {self.text}" if self.text else label(self.code)


class RetentionRule(models.Model):
    """How long recordings of one business type are kept, counted from the call's end.

    Keyed by the business type's code (apps.banking owns business types); `years` empty means
    forever. A business type without a rule follows ``RECORDINGS_RETENTION_DEFAULT_YEARS``."""

    business_code = models.CharField(_("业务类型代码"), max_length=64, unique=True)
    years = models.PositiveSmallIntegerField(
        _("保存年限"), null=True, blank=True, help_text=_("留空表示永久保存")
    )
    note = models.CharField(_("依据"), max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("保存期限")
        verbose_name_plural = _("保存期限")
        ordering = ["business_code"]

    def __str__(self) -> str:
        return f"{self.business_code}: {self.years if self.years is not None else 'forever'}"


class DownloadState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", _("待审批")
    QUEUED = "queued", _("排队中")
    PREPARING = "preparing", _("生成中")
    READY = "ready", _("可下载")
    REJECTED = "rejected", _("已拒绝")
    FAILED = "failed", _("生成失败")
    EXPIRED = "expired", _("已过期")


class DownloadRequest(models.Model):
    """A request to download a recording: a stated reason, an optional second person's
    approval (RECORDINGS_DOWNLOAD_APPROVAL), then a copy with a visible watermark naming
    the requester and the time, made by a job on the compose queue and kept for a while."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="downloads")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(_("下载事由"), max_length=500)
    state = models.CharField(max_length=20, choices=DownloadState.choices)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=200, blank=True)
    watermark_text = models.CharField(max_length=200, blank=True)
    progress = models.FloatField(default=0.0)
    started_at = models.DateTimeField(null=True, blank=True)  # of the copy being made
    job_id = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=500, blank=True)
    copy_key = models.CharField(max_length=300, blank=True)
    copy_size = models.BigIntegerField(null=True, blank=True)
    copy_sm3 = models.CharField(max_length=64, blank=True)
    copy_sha256 = models.CharField(max_length=64, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("录像下载申请")
        verbose_name_plural = _("录像下载申请")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"download {self.pk} of {self.recording_id}"


def as_timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def from_timestamp(ts: float) -> datetime:
    """An aware UTC datetime of a Unix time (the media job and the composer speak seconds)."""
    return datetime.fromtimestamp(ts, tz=UTC)
