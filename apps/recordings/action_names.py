"""Names for people of the audit actions this app records (apps.audit.hooks.action_name)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

NAMES = {
    "keypoint.marked": _("标记关键节点"),
    "recording.capture_started": _("开始录制"),
    "recording.capture_stopped": _("停止录制"),
    "recording.segment_sealed": _("录像分段封存"),
    "recording.segment_failed": _("录像分段写入失败"),
    "recording.degraded": _("录制中断"),
    "recording.resumed": _("录制恢复"),
    "recording.sealed": _("录像封存"),
    "recording.compose_requested": _("申请合成录像"),
    "recording.compose_started": _("开始合成录像"),
    "recording.composed": _("录像合成完成"),
    "recording.compose_failed": _("录像合成失败"),
    "recording.compose_lost": _("合成任务丢失"),
    "recording.viewed": _("查看录像"),
    "recording.streamed": _("在线回放录像"),
    "recording.download_requested": _("申请下载录像"),
    "recording.download_approved": _("批准下载录像"),
    "recording.download_prepared": _("下载文件已生成"),
    "recording.download_failed": _("下载文件生成失败"),
    "recording.download_expired": _("下载文件已过期"),
    "recording.downloaded": _("下载录像"),
    "recording.legal_hold_set": _("设置法律保全"),
    "recording.retention_set": _("设置保存期限"),
    "recording.purged": _("清除录像"),
    "recording.damaged": _("发现录像损坏"),
    "recording.damaged_read": _("读取已损坏的录像"),
}
