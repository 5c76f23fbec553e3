"""Names for people of the audit actions this app records (apps.audit.hooks.action_name)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

NAMES = {
    "qc.requested": _("申请质检"),
    "qc.started": _("开始质检"),
    "qc.completed": _("质检完成"),
    "qc.failed": _("质检出错"),
    "qc.lost": _("质检任务丢失"),
    "qc.report_viewed": _("查看质检报告"),
    "qc.reviewed": _("人工复核"),
    "qc.supplement_stored": _("补录已上传"),
    "qc.vision_alert": _("画面告警"),
    "qc.vision_clear": _("画面恢复正常"),
}
