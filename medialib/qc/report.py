"""What QC finds: findings on the call's timeline and metrics, collected step by step."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medialib.qc.inputs import QcInput

__all__ = ["Finding", "Progress", "QcAnalysis", "Report"]


@dataclass
class Finding:
    category: str
    code: str
    severity: str  # info | warning | error
    start: float | None  # seconds from QcInput.start
    end: float | None
    participant: int | None = None
    role: str = ""
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class QcAnalysis:
    findings: list[Finding]
    metrics: dict[str, Any]
    seconds: float


class Report:
    """The findings and metrics of one analysis, as the steps add them. Steps speak in wall
    clock; findings are stored in seconds from the recording's start (`origin`)."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.findings: list[Finding] = []
        self.metrics: dict[str, Any] = {"participants": {}}

    def add(
        self,
        category: str,
        code: str,
        severity: str,
        start: float | None,
        end: float | None,
        *,
        participant: int | None = None,
        role: str = "",
        detail: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        self.findings.append(
            Finding(
                category,
                code,
                severity,
                None if start is None else round(start - self.origin, 3),
                None if end is None else round(end - self.origin, 3),
                participant=participant,
                role=role,
                detail=detail,
                data=data if data is not None else {},
            )
        )

    def participant(self, participant: int, role: str) -> dict[str, Any]:
        """The metrics of one participant (created with its role on first use)."""
        stats: dict[str, Any] = self.metrics["participants"].setdefault(
            str(participant), {"role": role}
        )
        return stats

    def sorted_findings(self) -> list[Finding]:
        """The findings in time order (whole-recording findings without a start last)."""
        return sorted(
            self.findings, key=lambda f: (f.start if f.start is not None else math.inf, f.code)
        )


class Progress:
    """Reports the share of the work done: decoding video (a second of media each) and audio
    (a tenth as much) is what takes the time."""

    def __init__(self, inp: QcInput, callback: Callable[[float], None] | None) -> None:
        self.callback = callback
        self.done = 0.0
        lengths = [(t.kind, (s.end or s.start) - s.start) for t in inp.tracks for s in t.segments]
        self.total = sum(length for kind, length in lengths if kind == "video") + 0.1 * sum(
            length for _, length in lengths
        )

    def advance(self, amount: float) -> None:
        self.done += amount
        if self.callback is not None and self.total > 0:
            self.callback(min(self.done / self.total, 1.0))

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(1.0)
