"""One error shape for the whole API: `{"error": {"code", "message", "detail"}}`.

`code` is stable (docs/api.md lists them); `message` is for people, in the request's language
(zh-hans by default, English with `Accept-Language: en`); `detail` is for the developer, in
English, and may be empty. DRF's own exceptions (parse errors, throttling, unknown methods)
come out in the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.response import Response

from remotebank.errors import ServiceError

logger = logging.getLogger(__name__)

MESSAGES: dict[str, Promise] = {
    # authentication (the signed-request scheme)
    "missing_signature": _("请求缺少签名。"),
    "bad_signature_algorithm": _("不支持该签名算法。"),
    "unknown_client": _("接入应用不存在或已停用。"),
    "bad_timestamp": _("请求时间戳格式不正确。"),
    "stale_request": _("请求时间与服务器时间相差过大。"),
    "bad_signature": _("请求签名不正确。"),
    "replayed_request": _("该请求已经处理过（随机数重复）。"),
    "scope_denied": _("接入应用没有执行该操作的权限。"),
    "rate_limited": _("请求过于频繁，请稍后再试。"),
    # the request itself
    "body_too_large": _("请求内容过大。"),
    "bad_json": _("请求内容不是有效的 JSON。"),
    "bad_request": _("请求参数不正确。"),
    "missing_field": _("缺少必填字段。"),
    "bad_field": _("字段取值不正确。"),
    "bad_query": _("查询参数不正确。"),
    "method_not_allowed": _("不支持该请求方法。"),
    "unsupported_media_type": _("请以 JSON 格式提交。"),
    "not_acceptable": _("无法以所要求的格式返回。"),
    "not_found": _("请求的资源不存在。"),
    "bad_idempotency_key": _("Idempotency-Key 格式不正确。"),
    "idempotency_key_reused": _("该 Idempotency-Key 已用于另一个请求。"),
    # entry tickets
    "bad_customer": _("客户信息不正确。"),
    "unknown_business": _("业务类型不存在。"),
    "bad_location": _("位置信息不正确。"),
    # calls, transactions, recordings, QC
    "call_not_found": _("会话不存在。"),
    "transaction_not_found": _("业务不存在。"),
    "no_receipt": _("该业务没有回单。"),
    "recording_not_found": _("录像不存在。"),
    "recording_not_ready": _("录像尚未合成完成。"),
    "recording_purged": _("录像已按保存期限清除。"),
    "recording_damaged": _("录像文件已损坏（校验未通过），不能下载。"),
    "download_not_found": _("下载申请不存在。"),
    "download_not_allowed": _("没有下载录像的权限。"),
    "no_acting_user": _("接入应用未配置代表的员工账号，不能申请下载。"),
    "reason_required": _("请填写下载事由。"),
    "reason_too_long": _("下载事由过长。"),
    "qc_report_not_found": _("质检报告不存在。"),
    "wrong_state": _("当前状态下不能执行该操作。"),
    # webhooks
    "webhook_not_found": _("回调地址不存在。"),
    "bad_url": _("回调地址不正确（须为 https）。"),
    "bad_events": _("订阅的事件类型不正确。"),
    "message_not_found": _("回调事件不存在。"),
    # seat widget
    "agent_not_found": _("座席不存在。"),
    "bad_origin": _("该页面源未登记为悬浮窗宿主。"),
    # the server
    "internal_error": _("服务器内部错误，请稍后再试。"),
}

GENERIC = _("请求未能完成。")


def message_for(code: str) -> str:
    return str(MESSAGES.get(code, GENERIC))


def error_body(code: str, detail: str = "") -> dict[str, Any]:
    return {"error": {"code": code, "message": message_for(code), "detail": detail}}


def error_response(code: str, detail: str = "", *, status: int = 400) -> Response:
    return Response(error_body(code, detail), status=status)


class ApiError(exceptions.APIException):
    """A refusal raised from API code, carrying a stable code (as ServiceError does)."""

    def __init__(self, code: str, detail: str = "", *, status: int = 400) -> None:
        super().__init__(detail or code)
        self.status_code = status
        self.code = code
        self.text = detail


# DRF's exceptions, by class, to our stable codes.
_DRF_CODES: tuple[tuple[type[exceptions.APIException], str], ...] = (
    (exceptions.ParseError, "bad_json"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.Throttled, "rate_limited"),
    (exceptions.NotFound, "not_found"),
    (exceptions.NotAuthenticated, "missing_signature"),
    (exceptions.AuthenticationFailed, "bad_signature"),
    (exceptions.PermissionDenied, "scope_denied"),
    (exceptions.ValidationError, "bad_request"),
)


def _drf_code(exc: exceptions.APIException) -> str:
    for cls, code in _DRF_CODES:
        if isinstance(exc, cls):
            return code
    return "bad_request"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every refusal in the one shape, logged with its code."""
    headers: dict[str, str] = {}
    if isinstance(exc, ServiceError):
        code, detail, status = exc.code, exc.message, exc.status
    elif isinstance(exc, ApiError):
        code, detail, status = exc.code, exc.text, exc.status_code
    elif isinstance(exc, Http404):
        code, detail, status = "not_found", "not found", 404
    elif isinstance(exc, exceptions.APIException):
        code, status = _drf_code(exc), exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(max(1, int(wait)))
        auth = getattr(exc, "auth_header", None)
        if auth:
            headers["WWW-Authenticate"] = auth
    else:
        return None  # a fault: the view turns it into internal_error
    logger.warning("api refused: %s (%s)", code, status)
    return Response(error_body(code, detail), status=status, headers=headers)
