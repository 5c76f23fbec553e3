"""Errors services raise for refused input or state, and the one catalogue of what each error
code means to a person.

`code` is stable (docs/protocol.md); `message` is for developers and logs. People never see
either: every code the server can send (a socket `error`, an HTTP `{"error": {...}}`, a
transaction's `result_code`, a capture's `banking.capture_failed`) and every code of the H5 SDK
has a sentence in `MESSAGES`, in Chinese, with English through Django's catalogue
(`locale/en/LC_MESSAGES/django.po`; the message context is the code, so two codes may share
Chinese words and still differ in English). Pages get the catalogue in their language from
`/jsi18n/errors.js` (`RB.errorText`); `tests/test_error_messages.py` walks every code of
docs/protocol.md and every code raised in the code base.

A key with a dot is a variant of a code for one situation (`wrong_pin.tries_left` with its
`%(tries_left)s`, `locked.customer` / `locked.agent`: what each can do next).
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import pgettext_lazy as _

from remotebank import metrics


class ServiceError(Exception):
    def __init__(self, code: str, message: str = "", *, status: int = 400) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.status = status
        metrics.count_error(code)


class NotFound(ServiceError):
    """Unknown id, or an object the caller may not see: both look the same from outside."""

    def __init__(self, code: str = "not_found", message: str = "not found") -> None:
        super().__init__(code, message, status=404)


class Forbidden(ServiceError):
    def __init__(self, code: str = "forbidden", message: str = "not allowed") -> None:
        super().__init__(code, message, status=403)


MESSAGES: dict[str, Promise] = {
    # --- the platform and the socket
    "internal_error": _("internal_error", "服务器出现问题，请稍后重试。"),
    "bad_frame": _("bad_frame", "请求格式不正确，请刷新页面后重试。"),
    "frame_too_large": _("frame_too_large", "发送的内容太大。"),
    "bad_json": _("bad_json", "请求格式不正确，请刷新页面后重试。"),
    "bad_message": _("bad_message", "请求格式不正确，请刷新页面后重试。"),
    "bad_request": _("bad_request", "请求内容不正确。"),
    "unknown_type": _("unknown_type", "页面版本过旧，请刷新页面后重试。"),
    "not_allowed": _("not_allowed", "您无权执行该操作。"),
    "forbidden": _("forbidden", "您无权执行该操作。"),
    "not_found": _("not_found", "要找的内容不存在。"),
    "not_authenticated": _("not_authenticated", "请先登录。"),
    "not_an_agent": _("not_an_agent", "该账号不是座席账号。"),
    "wrong_state": _("wrong_state", "当前状态下不能执行该操作。"),
    "rate_limited": _("rate_limited", "操作过于频繁，请稍后再试。"),
    "body_too_large": _("body_too_large", "请求内容太大。"),
    "missing_field": _("missing_field", "请求缺少必填内容。"),
    "bad_customer": _("bad_customer", "客户信息格式不正确。"),
    "unknown_business": _("unknown_business", "没有这项业务。"),
    "bad_location": _("bad_location", "位置信息无效。"),
    # API signatures (integrators)
    "missing_signature": _("missing_signature", "请求缺少签名。"),
    "bad_signature_algorithm": _("bad_signature_algorithm", "不支持该签名算法。"),
    "unknown_client": _("unknown_client", "接入方不存在或已停用。"),
    "bad_timestamp": _("bad_timestamp", "请求时间戳格式不正确。"),
    "stale_request": _("stale_request", "请求已过期，请检查时钟后重试。"),
    "bad_signature": _("bad_signature", "签名校验未通过。"),
    "replayed_request": _("replayed_request", "重复的请求已被拒绝。"),
    # entry tickets and invites
    "ticket_used": _("ticket_used", "该链接已经使用过，请返回手机银行重新发起视频办理。"),
    "ticket_expired": _("ticket_expired", "该链接已过期，请返回手机银行重新发起视频办理。"),
    "ticket_invalid": _("ticket_invalid", "链接无效，请返回手机银行重新发起视频办理。"),
    "session_expired": _("session_expired", "视频银行会话已失效，请返回手机银行重新发起。"),
    "call_ended": _("call_ended", "本次通话已结束。如需继续办理，请返回手机银行重新发起。"),
    # calls, routing, presence
    "call_not_found": _("call_not_found", "通话不存在或已经结束。"),
    "call_not_connected": _("call_not_connected", "通话尚未接通或已经结束。"),
    "offer_not_found": _("offer_not_found", "该来电已不存在。"),
    "offer_not_pending": _("offer_not_pending", "该来电已被撤回或已超时。"),
    "bad_presence": _("bad_presence", "不能手动切换到该状态。"),
    "bad_presence_transition": _("bad_presence_transition", "当前状态下不能切换到该状态。"),
    "message_not_found": _("message_not_found", "消息不存在。"),
    "chat_empty": _("chat_empty", "消息不能为空。"),
    "chat_too_long": _("chat_too_long", "消息太长，请分几条发送。"),
    "media_unavailable": _("media_unavailable", "视频服务正在启动，请稍候。"),
    "bad_sdp": _("bad_sdp", "视频连接参数有误，正在重试。"),
    # collaboration
    "share_busy": _("share_busy", "其他人正在共享屏幕，请稍后再试。"),
    "no_share": _("no_share", "当前没有人共享屏幕。"),
    "pin_entry_pending": _("pin_entry_pending", "正在输入密码，暂时不能共享屏幕。"),
    "call_full": _("call_full", "通话人数已满（最多 4 人同时视频）。"),
    "already_in_call": _("already_in_call", "对方已经在本通话中。"),
    "user_not_found": _("user_not_found", "没有这位座席或主管。"),
    "participant_not_found": _("participant_not_found", "该参与方不在通话中。"),
    "skill_not_found": _("skill_not_found", "没有这个技能组。"),
    "agent_not_available": _(
        "agent_not_available", "对方当前不是空闲状态（技能组中暂无空闲座席），请稍后再试。"
    ),
    "transfer_pending": _("transfer_pending", "已有一个转接正在等待应答。"),
    "bad_name": _("bad_name", "姓名不能为空，且不超过 64 个字符。"),
    "bad_mode": _("bad_mode", "没有这种监听方式。"),
    "hold_not_allowed": _("hold_not_allowed", "您无权设置法律保全。"),
    # payload and frame encryption
    "no_payload_key": _("no_payload_key", "加密通道尚未建立，请稍候再试。"),
    "encryption_required": _("encryption_required", "消息必须加密发送，请刷新页面后重试。"),
    "stale_key": _("stale_key", "加密密钥已更新，请刷新页面。"),
    "no_call_key": _("no_call_key", "通话的加密密钥已失效，请重新进入通话。"),
    "bad_payload": _("bad_payload", "加密内容无法解开，请刷新页面后重试。"),
    "replayed_payload": _("replayed_payload", "重复的消息已被拒绝。"),
    "stale_payload": _("stale_payload", "消息已过期，请检查手机时间后重试。"),
    "frame_encryption_required": _(
        "frame_encryption_required", "本行要求视频加密，当前浏览器不支持，请更换浏览器。"
    ),
    "bad_frame_encryption": _("bad_frame_encryption", "视频加密方式不匹配，请刷新页面。"),
    # key points
    "unknown_key_point": _("unknown_key_point", "没有这个打点类型。"),
    "text_required": _("text_required", "请填写打点说明。"),
    "text_too_long": _("text_too_long", "打点说明太长。"),
    "bad_text": _("bad_text", "打点说明格式不正确。"),
    "bad_source": _("bad_source", "打点来源不正确。"),
    "bad_transaction": _("bad_transaction", "业务编号格式不正确。"),
    # banking: transactions
    "transaction_not_found": _("transaction_not_found", "业务不存在，或不属于本通话。"),
    "transaction_open": _("transaction_open", "请先完成或取消当前业务。"),
    "unknown_scenario": _("unknown_scenario", "没有这个业务场景。"),
    "missing_skill": _("missing_skill", "您没有办理这项业务的技能。"),
    "bad_form": _("bad_form", "业务表单格式不正确。"),
    "field_required": _("field_required", "请填写所有必填项。"),
    "bad_field": _("bad_field", "有填写内容不符合要求，请检查后重试。"),
    "bad_checks": _("bad_checks", "身份核验项格式不正确。"),
    "not_account_holder": _("not_account_holder", "该账户不属于本客户。"),
    "no_core_customer": _("no_core_customer", "核心系统中没有这位客户。"),
    "wrong_scenario": _("wrong_scenario", "这项业务没有这个步骤。"),
    "documents_missing": _("documents_missing", "请先上传新证件影像。"),
    "key_point_missing": _("key_point_missing", "请先完成必需的打点。"),
    "signature_empty": _("signature_empty", "请先在签名区签名。"),
    "no_disclosure": _("no_disclosure", "这项业务没有风险揭示播报。"),
    "no_receipt": _("no_receipt", "回单尚未生成。"),
    "authorization_expired": _("authorization_expired", "委托授权已过期。"),
    # banking: identity
    "identity_check_failed": _("identity_check_failed", "请先确认所有身份核验项。"),
    "id_card_mismatch": _("id_card_mismatch", "身份证件信息与客户资料不一致。"),
    "id_card_not_read": _("id_card_not_read", "请先截取身份证件并完成识别。"),
    "id_card_unreadable": _(
        "id_card_unreadable",
        "没有识别出身份证件上的信息：请让客户把证件正面放近、放平，避免反光后重新截取。",
    ),
    "face_mismatch": _("face_mismatch", "人脸检测未通过，请重新截取。"),
    "no_face": _("no_face", "画面中没有检测到人脸：请客户正对摄像头后重新截取。"),
    "multiple_faces": _(
        "multiple_faces", "画面中有多张人脸：请确保只有客户本人在画面中后重新截取。"
    ),
    "face_id_mismatch": _("face_id_mismatch", "现场人脸与证件照片不是同一人。"),
    "face_not_compared": _("face_not_compared", "请先截取身份证件和人脸，完成人证比对。"),
    "face_not_comparable": _(
        "face_not_comparable", "未能进行人证比对：证件照或现场画面中没有可用的人脸，请重新截取。"
    ),
    "online_id_failed": _("online_id_failed", "公安联网核查未通过。"),
    "id_expired": _("id_expired", "客户的身份证件已过期。"),
    "unauthorized_principal": _("unauthorized_principal", "委托人不在通话中，或不是指定的委托人。"),
    "id_number_in_use": _("id_number_in_use", "该证件号码已属于其他客户。"),
    "no_video": _("no_video", "客户没有视频画面，无法截取。"),
    "capture_failed": _("capture_failed", "截取画面失败，请重试。"),
    "bad_document": _("bad_document", "不是有效的图片：请上传不超过 4 MB 的 JPEG 或 PNG 图片。"),
    "document_too_small": _("document_too_small", "图片太小，无法辨认（至少 600×400 像素）。"),
    "duplicate_document": _("duplicate_document", "这张图片已经上传过。"),
    # banking: PIN gateway and core refusals
    "pin_required": _("pin_required", "请在手机上输入密码。"),
    "bad_pin_envelope": _("bad_pin_envelope", "密码未能安全送达，请重新输入。"),
    "bad_pin_field": _("bad_pin_field", "密码项不正确，请重新输入。"),
    "stale_pin_key": _("stale_pin_key", "密码键盘已更新，请重新输入。"),
    "replayed_pin": _("replayed_pin", "该次密码输入已失效，请重新输入。"),
    "stale_pin": _("stale_pin", "密码输入超时，请重新输入。"),
    "pin_envelope_mismatch": _("pin_envelope_mismatch", "密码未能安全送达，请重新输入。"),
    "pin_format": _("pin_format", "密码须为 6 位数字，请重新输入。"),
    "bad_pan": _("bad_pan", "账号格式不正确。"),
    "pin_block_bad": _("pin_block_bad", "密码未能安全送达，请重新输入。"),
    "pin_block_mismatch": _("pin_block_mismatch", "密码未能安全送达，请重新输入。"),
    "pin_incomplete": _("pin_incomplete", "密码没有输完，请重新输入。"),
    "wrong_pin": _("wrong_pin", "原密码不正确，请重新输入。"),
    "wrong_pin.tries_left": _(
        "wrong_pin.tries_left", "原密码不正确，您还可以再试 %(tries_left)s 次，请重新输入。"
    ),
    "wrong_pin.last_try": _(
        "wrong_pin.last_try", "原密码不正确，您还可以再试 1 次。再次输错，卡片将被锁定。"
    ),
    "trivial_pin": _("trivial_pin", "新密码过于简单（如连续、重复的数字或生日），请换一个。"),
    "locked": _("locked", "密码错误次数已达上限，账户已被锁定。"),
    "locked.customer": _(
        "locked.customer",
        "为保护您的资金安全，卡片已被锁定。请听工作人员说明：可在本次视频中申请解锁后再修改密码，也可携带身份证件到网点办理。",
    ),
    "locked.agent": _(
        "locked.agent",
        "客户原密码连续输错 3 次，核心系统已锁定该卡。"
        "下一步：核验身份后为客户办理「借记卡密码解锁」，再重新办理密码修改；客户忘记原密码的，解锁后办理「借记卡交易密码重置」。",
    ),
    "not_locked": _("not_locked", "该账户没有被锁定，无需解锁。"),
    "not_legal_rep": _("not_legal_rep", "只有法定代表人可以办理该业务。"),
    "no_such_account": _("no_such_account", "核心系统中没有这个账户。"),
    "no_such_customer": _("no_such_customer", "核心系统中没有这位客户。"),
    "no_such_principal": _("no_such_principal", "委托人不是本行客户。"),
    "no_such_corporate": _("no_such_corporate", "核心系统中没有这家对公客户。"),
    "core_busy": _("core_busy", "核心系统繁忙，请稍后重试。"),
    "cancelled": _("cancelled", "操作已取消。"),
    # recordings, downloads, retention
    "recording_not_found": _("recording_not_found", "录像不存在。"),
    "recording_not_ready": _("recording_not_ready", "录像尚未合成完成。"),
    "recording_purged": _("recording_purged", "录像已按保存期限删除。"),
    "recording_damaged": _("recording_damaged", "录像文件已损坏，无法读取，已记录在审计日志中。"),
    "nothing_recorded": _("nothing_recorded", "本次通话没有录到音视频。"),
    "segment_not_found": _("segment_not_found", "录像分段不存在。"),
    "segment_sealed": _("segment_sealed", "录像分段已封存。"),
    "bad_codec": _("bad_codec", "录像编码格式不正确。"),
    "bad_op": _("bad_op", "录像操作不正确。"),
    "download_not_allowed": _("download_not_allowed", "您的角色不能下载录像。"),
    "approval_not_allowed": _("approval_not_allowed", "您的角色不能审批下载。"),
    "download_not_found": _("download_not_found", "下载申请不存在。"),
    "download_not_ready": _("download_not_ready", "下载文件尚未准备好。"),
    "download_expired": _("download_expired", "下载文件已过期，请重新申请。"),
    "second_person_required": _("second_person_required", "下载需要另一位同事审批。"),
    "reason_required": _("reason_required", "请填写下载原因。"),
    "reason_too_long": _("reason_too_long", "原因太长。"),
    "bad_note": _("bad_note", "备注格式不正确或太长。"),
    "bad_retention": _("bad_retention", "保存期限至少一年，或永久保存。"),
    "bad_business_code": _("bad_business_code", "请选择业务类型。"),
    "legal_hold": _("legal_hold", "录像处于法律保全中，不能删除。"),
    "hold_unchanged": _("hold_unchanged", "法律保全状态没有变化。"),
    "retention_not_over": _("retention_not_over", "保存期限尚未届满。"),
    "empty_log": _("empty_log", "审计日志为空。"),
    # QC
    "report_not_found": _("report_not_found", "质检报告不存在。"),
    "not_in_review": _("not_in_review", "该报告不在待复核状态。"),
    "same_reviewer": _("same_reviewer", "二次复核需要由另一位质检员完成。"),
    "bad_verdict": _("bad_verdict", "请选择复核结论。"),
    "comments_required": _("comments_required", "判定不合格时请填写原因。"),
    "bad_comments": _("bad_comments", "复核意见太长。"),
    "bad_checklist": _("bad_checklist", "复核清单格式不正确。"),
    "bad_time": _("bad_time", "时间格式不正确。"),
    "bad_kind": _("bad_kind", "告警类型不正确。"),
    "bad_problem": _("bad_problem", "告警问题类型不正确。"),
    "no_file": _("no_file", "请选择要上传的录像文件。"),
    "too_large": _("too_large", "文件为空或太大。"),
    "bad_digest": _("bad_digest", "文件校验值格式不正确。"),
    "digest_mismatch": _("digest_mismatch", "上传的文件与校验值不一致，请重新上传。"),
    "corrupt": _("corrupt", "文件已损坏，不是可用的录像。"),
    "unrelated": _("unrelated", "该文件与本通话无关，或通话尚未结束。"),
    "not_failed": _("not_failed", "该通话的录像质检未判定失败，无需补录。"),
    "no_data_key": _("no_data_key", "录像缺少加密密钥，无法处理。"),
    # staff sign-in (second factor)
    "otp_required": _("otp_required", "员工账号需要先设置动态口令。"),
    "otp_invalid": _("otp_invalid", "动态口令为 6 位数字。"),
    "otp_replayed": _("otp_replayed", "该动态口令已使用过，请等待下一个。"),
    "otp_already_enrolled": _("otp_already_enrolled", "已经设置过动态口令。"),
    "otp_not_enrolled": _("otp_not_enrolled", "尚未设置动态口令。"),
    "otp_not_pending": _("otp_not_pending", "没有待确认的动态口令设置。"),
    "account_locked": _("account_locked", "失败次数过多，账号已暂时锁定。"),
    # the H5 SDK's own codes
    "not_connected": _("not_connected", "与服务器的连接已断开，正在重新连接，请稍后再试。"),
    "disconnected": _("disconnected", "连接中断，操作可能没有完成，请重试。"),
    "timeout": _("timeout", "服务器没有及时响应，请重试。"),
    "unsupported": _(
        "unsupported", "当前浏览器不支持视频通话，请在手机银行内打开，或使用最新版浏览器。"
    ),
    "no_prompt": _("no_prompt", "该操作已完成或已失效。"),
    "share_unsupported": _("share_unsupported", "此浏览器不支持屏幕共享。"),
    "share_cancelled": _("share_cancelled", "已取消屏幕共享。"),
    "device_denied": _("device_denied", "没有获得使用该设备的许可。"),
    "device_missing": _("device_missing", "没有找到该设备。"),
    "device_busy": _("device_busy", "该设备正被其他应用使用。"),
    "device_failed": _("device_failed", "无法打开该设备。"),
    # --- the API for bank systems (apps.api words some shared codes for developers)
    "scope_denied": _("scope_denied", "接入应用没有执行该操作的权限。"),
    "bad_query": _("bad_query", "查询参数不正确。"),
    "method_not_allowed": _("method_not_allowed", "不支持该请求方法。"),
    "unsupported_media_type": _("unsupported_media_type", "请以 JSON 格式提交。"),
    "not_acceptable": _("not_acceptable", "无法以所要求的格式返回。"),
    "bad_idempotency_key": _("bad_idempotency_key", "Idempotency-Key 格式不正确。"),
    "idempotency_key_reused": _("idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求。"),
    "no_acting_user": _("no_acting_user", "接入应用未配置代表的员工账号，不能申请下载。"),
    "qc_report_not_found": _("qc_report_not_found", "质检报告不存在。"),
    "webhook_not_found": _("webhook_not_found", "回调地址不存在。"),
    "bad_url": _("bad_url", "回调地址不正确（须为 https）。"),
    "bad_events": _("bad_events", "订阅的事件类型不正确。"),
    "agent_not_found": _("agent_not_found", "座席不存在。"),
    "bad_origin": _("bad_origin", "该页面源未登记为悬浮窗宿主。"),
    "failed": _("failed", "操作没有成功，请重试。"),
}

# What a person sees for a code the catalogue does not know (never the code itself).
FALLBACK = "failed"


def error_text(code: str, **params: object) -> str:
    """The sentence for `code` in the active language (its variant with `params` filled in when
    given, e.g. ``error_text("wrong_pin", tries_left=2)``)."""
    for key in (f"{code}.{next(iter(params))}" if params else "", code, FALLBACK):
        if key and key in MESSAGES:
            text = str(MESSAGES[key])
            return text % params if params and "%(" in text else text
    return str(MESSAGES[FALLBACK])  # pragma: no cover - FALLBACK is in MESSAGES


def catalogue() -> dict[str, str]:
    """Every code's sentence in the active language (for the pages' script)."""
    return {code: str(text) for code, text in MESSAGES.items()}
