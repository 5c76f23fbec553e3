"""QC of one recording, step by step (the package docstring lists the checks)."""

from __future__ import annotations

import time
from collections.abc import Callable

from medialib.qc.coverage import check_composed, check_coverage
from medialib.qc.inputs import QcInput, QcOptions
from medialib.qc.picture import check_video
from medialib.qc.report import Progress, QcAnalysis, Report
from medialib.qc.sound import check_audio

__all__ = ["analyze"]


def analyze(
    inp: QcInput,
    options: QcOptions | None = None,
    progress: Callable[[float], None] | None = None,
) -> QcAnalysis:
    """Findings (in time order) and metrics of the recording `inp`; `progress` is told the
    share of the work done as the cameras and microphones are decoded."""
    began = time.perf_counter()
    opts = options or QcOptions()
    report = Report(inp.start)
    done = Progress(inp, progress)
    check_coverage(inp, opts, report)
    check_composed(inp, opts, report)
    check_video(inp, opts, report, done)
    check_audio(inp, opts, report, done)
    findings = report.sorted_findings()
    done.finish()
    return QcAnalysis(findings, report.metrics, time.perf_counter() - began)
