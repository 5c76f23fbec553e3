"""What `make run` prints: where to go and how to log in."""

from __future__ import annotations

DEMO_PASSWORD = "remotebank-demo"  # noqa: S105 - same as apps.accounts.demo.DEMO_PASSWORD


def banner(base: str) -> str:
    return "\n".join(
        [
            "",
            "RemoteBank is running:",
            f"  Agent workstation      {base}/agent/            (agent01..agent04)",
            f"  Demo mobile banking    {base}/demo/mobile-bank/ (get a customer entry link)",
            f"  Admin                  {base}/admin/            (supervisor01, qc01, auditor01)",
            f"  Demo password          {DEMO_PASSWORD}",
            "  Ctrl-C stops everything.",
            "",
        ]
    )
