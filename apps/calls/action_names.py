"""Names for people of the audit actions this app records (apps.audit.hooks.action_name):
``call.<state>`` and ``call.<event kind>`` by the names of the state and the event kind,
``offer.<state>`` by the offer's."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.calls.models import CallEventKind, CallState, OfferState

NAMES = {
    "call.queued": _("会话进入排队"),
    "call.ringing": _("会话振铃"),
    "call.connected": _("会话接通"),
    "call.ended": _("会话结束"),
    "call.lost": _("通话中断"),
    "call.guest_invited": _("邀请外部参与方"),
    "call.guest_joined": _("外部参与方加入"),
    "ticket.issued": _("签发入口票据"),
    "ticket.redeemed": _("使用入口票据"),
    "chat.sent": _("发送文字消息"),
    "agent.presence": _("座席状态变更"),
    "socket.origin_refused": _("拒绝来源不明的连接"),
}
KINDS = dict(CallEventKind.choices)
OFFER_STATES = dict(OfferState.choices)


def name(action: str) -> object:
    if action in NAMES:
        return NAMES[action]
    domain, _dot, what = action.partition(".")
    if domain == "call" and what in KINDS and what not in CallState.values:
        return KINDS[what]
    if domain == "offer" and what in OFFER_STATES:
        return _("座席邀约：%(state)s") % {"state": OFFER_STATES[what]}
    return None
