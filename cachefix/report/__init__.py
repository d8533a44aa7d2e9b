"""Reporters: one module per output format, imported only when that format is asked for.

Each format module has `write(report, options, stream)`. A pre-commit hook prints text to a
pipe, so neither rich nor any other format's module is imported on that path.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple, TextIO

from cachefix.model import LintReport

FORMATS = {
    "text": "cachefix.report.text",
    "json": "cachefix.report.json_report",
    "sarif": "cachefix.report.sarif",
    "github": "cachefix.report.github",
    "gitlab": "cachefix.report.gitlab",
}


class ReportOptions(NamedTuple):
    color: bool = True  # text only, and only on a terminal
    show_ignored: bool = False  # also list what suppression comments silenced
    statistics: bool = False  # text: a table of counts per code instead of every finding
    quiet: bool = False  # text: only the findings, one a line, no summary
    dry_run: bool = False  # `fix --diff`: the fixes were shown, not written


def render(report: LintReport, fmt: str, options: ReportOptions, stream: TextIO) -> None:
    importlib.import_module(FORMATS[fmt]).write(report, options, stream)
