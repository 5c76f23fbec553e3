"""Reads of the audit log for people: the auditor's read-only log page (apps.audit.views)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from apps.audit.hooks import action_name
from apps.audit.models import GENESIS_HASH, AuditEvent, ChainHead, Checkpoint

PAGE_SIZE = 50
# The model permission the auditor role holds (apps.accounts.roles.ROLE_PERMISSIONS): reading
# the whole log is an auditor's right, not a supervisor's or an agent's.
READ_PERMISSION = "audit.view_auditevent"


def may_read_log(user: AbstractBaseUser | AnonymousUser) -> bool:
    return isinstance(user, User) and user.is_active and user.has_perm(READ_PERMISSION)


@dataclass(frozen=True)
class LogRow:
    event: AuditEvent
    actor: str  # a person's name for staff, else the id
    hash_ok: bool  # entry_hash is SM3(prev_hash || body) of what is stored now
    link_ok: bool  # prev_hash is the entry_hash of the entry before (genesis for the first)
    action_name: str = ""  # the action's name for people ("" when no app names it)


@dataclass(frozen=True)
class ChainSummary:
    entries: int
    head_seq: int
    checkpoints: int
    latest_checkpoint: int | None  # tree size
    latest_checkpoint_at: datetime | None
    unsigned: int  # entries after the latest signed checkpoint


def log_events(*, action: str = "", object_id: str = "", call_id: str = "") -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.order_by("-seq")
    if action:
        events = events.filter(action=action)
    if object_id:
        events = events.filter(object_id=object_id)
    if call_id:
        events = events.filter(call_id=call_id)
    return events


def log_page(
    events: QuerySet[AuditEvent], number: int | str
) -> tuple[Page[AuditEvent], list[LogRow]]:
    """One page of events with each one's own check (its hash and its link to the entry
    before it); the whole chain, checkpoints and digests are verify_chain's work."""
    page = Paginator(events, PAGE_SIZE).get_page(number)
    items = list(page.object_list)
    before = dict(
        AuditEvent.objects.filter(seq__in=[e.seq - 1 for e in items]).values_list(
            "seq", "entry_hash"
        )
    )
    before[0] = GENESIS_HASH
    staff_ids = {int(e.actor_id) for e in items if e.actor_type == "staff" and e.actor_id.isdigit()}
    names = {
        str(u.pk): _("%(name)s（%(username)s）")
        % {"name": f"{u.last_name}{u.first_name}", "username": u.username}
        if u.last_name
        else u.username
        for u in User.objects.filter(pk__in=staff_ids)
    }
    rows = [
        LogRow(
            event=e,
            actor=names.get(e.actor_id, e.actor_id) if e.actor_type == "staff" else e.actor_id,
            hash_ok=e.compute_hash() == e.entry_hash,
            link_ok=before.get(e.seq - 1) == e.prev_hash,
            action_name=action_name(e.action),
        )
        for e in items
    ]
    return page, rows


def log_actions() -> list[tuple[str, str]]:
    """Every recorded action with its name for people (the code itself when none)."""
    codes = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    return [(code, action_name(code) or code) for code in codes]


def chain_summary() -> ChainSummary:
    head = ChainHead.objects.filter(id=1).first()
    latest = Checkpoint.objects.order_by("-tree_size").first()
    head_seq = head.seq if head else 0
    return ChainSummary(
        entries=AuditEvent.objects.count(),
        head_seq=head_seq,
        checkpoints=Checkpoint.objects.count(),
        latest_checkpoint=latest.tree_size if latest else None,
        latest_checkpoint_at=latest.created_at if latest else None,
        unsigned=head_seq - (latest.tree_size if latest else 0),
    )


# What each failure of verify_chain (apps.audit.verification) means, for the log page.
FAILURE_LABELS = {
    "hash_mismatch": _("记录内容与其哈希不符（记录被改动）"),
    "prev_link_mismatch": _("与前一条记录的哈希链接断开"),
    "seq_gap": _("序号不连续（有记录缺失）"),
    "head_mismatch": _("链头与最后一条记录不符（末尾记录可能被删除）"),
    "checkpoint_root_mismatch": _("签名检查点的默克尔根与记录不符"),
    "checkpoint_beyond_log": _("签名检查点覆盖的记录已不存在"),
    "checkpoint_link_mismatch": _("签名检查点没有接上前一个检查点"),
    "bad_signature": _("检查点签名无效"),
    "untrusted_key": _("检查点由不受信任的密钥签名"),
    "checkpoint_file_mismatch": _("只追加检查点文件与数据库不一致"),
    "digest_mismatch": _("录像或文件的摘要与记录不符"),
    "verifier_error": _("摘要校验未能完成"),
}


def failure_label(reason: str) -> str:
    return str(FAILURE_LABELS.get(reason, reason))
