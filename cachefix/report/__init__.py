"""Reporters: one module per output format, imported only when that format is asked for."""

from __future__ import annotations

import sys
from typing import TextIO

from cachefix.model import LintReport

FORMATS = ("text", "json")


def render(report: LintReport, fmt: str, *, color: bool = True, diff_mode: bool = False,
           stream: TextIO | None = None) -> None:
    """Print the report; in --diff mode text goes to stderr so stdout stays a clean patch."""
    out = stream or (sys.stderr if diff_mode and fmt == "text" else sys.stdout)
    if fmt == "json":
        from cachefix.report.json_report import render_json

        out.write(render_json(report) + "\n")
    else:
        from cachefix.report.text import render_text

        render_text(report, out, color=color)
