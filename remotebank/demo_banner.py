"""What `make run` prints: where to go and how to log in."""

from __future__ import annotations

import unicodedata

DEMO_PASSWORD = "remotebank-demo"  # noqa: S105 - same as apps.accounts.demo.DEMO_PASSWORD

# Every staff entry and the demo accounts that may open it (tests/test_start_banner.py checks
# that each page of the staff navigation is listed).
STAFF_ENTRIES = [
    ("座席工作台", "Agent workstation", "/agent/", "agent01..agent04"),
    ("我的录像", "My recordings", "/recordings/", "agent01..agent04"),
    ("通话监控", "Live call monitor", "/supervisor/monitor/", "supervisor01"),
    ("监控大屏", "Wallboard", "/supervisor/wallboard/", "supervisor01"),
    ("双录录像", "Recordings", "/recordings/", "supervisor01, qc01, auditor01"),
    ("质检报告", "QC reports", "/qc/", "qc01, supervisor01"),
    ("复核队列", "QC review queue", "/qc/queue/", "qc01, supervisor01"),
    ("质检统计", "QC statistics", "/qc/stats/", "qc01, supervisor01"),
    ("应录未录", "Missed recordings", "/qc/misses/", "qc01, supervisor01"),
    ("审计日志", "Audit log", "/audit/", "auditor01"),
    ("管理后台", "Django admin", "/admin/", "supervisor01, qc01, auditor01"),
    ("接口文档", "API reference", "/api/v1/docs", "supervisor01, qc01, auditor01"),
]
CUSTOMER_ENTRY = (
    "手机银行演示",
    "Demo mobile banking",
    "/demo/mobile-bank/",
    "customer entry link",
)


def _pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where a Chinese character takes two columns."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(1, width - shown)


def banner(base: str) -> str:
    lines = ["", "RemoteBank is running:"]
    for chinese, english, path, who in [*STAFF_ENTRIES, CUSTOMER_ENTRY]:
        lines.append(
            f"  {_pad(chinese, 13)}{_pad(english, 20)}{_pad(base + path, len(base) + 21)}({who})"
        )
    lines += [
        f"  {_pad('演示密码', 13)}{_pad('Demo password', 20)}{DEMO_PASSWORD}",
        "  Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)
