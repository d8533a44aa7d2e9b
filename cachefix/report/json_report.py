"""`--format json`: one object, stable for scripts (see the command-line contract in the README).

`{"version": 1, "files": N, "fixed": N, "findings": [...], "errors": [...]}`; with
--show-ignored also `"ignored": [...]` (same shape as findings) and `"skipped": [paths]`.
"""

from __future__ import annotations

import json
from typing import TextIO

from cachefix.model import LintReport
from cachefix.report import ReportOptions
from cachefix.report.items import Item, items


def _position(item: Item, offset: int) -> dict[str, int]:
    line, column = item.index.position(offset)
    return {"line": line, "column": column}


def finding_dict(item: Item) -> dict:
    finding = item.finding
    entry = {
        "file": str(item.result.path),
        "line": finding.start.line,
        "column": finding.start.column,
        "end_line": finding.end.line,
        "end_column": finding.end.column,
        "code": finding.code,
        "manager": finding.manager,
        "severity": finding.severity.value,
        "message": finding.message,
        "fixable": finding.fixable,
    }
    if finding.edits:
        entry["fix"] = {"edits": [
            {"start": _position(item, e.start), "end": _position(item, e.end), "replacement": e.replacement}
            for e in finding.edits
        ]}
    return entry


def render_json(report: LintReport, options: ReportOptions) -> str:
    listed = list(items(report, show_ignored=options.show_ignored))
    document = {
        "version": 1,
        "files": report.checked,
        "fixed": sum(1 for r in report.files if r.changed) if report.fixing else 0,
        "findings": [finding_dict(i) for i in listed if not i.ignored],
        "errors": [{"file": str(e.path), "line": e.line, "message": e.message} for e in report.errors],
    }
    if options.show_ignored:
        document["ignored"] = [finding_dict(i) for i in listed if i.ignored]
        document["skipped"] = [str(r.path) for r in report.files if r.skipped]
    return json.dumps(document, indent=2)


def write(report: LintReport, options: ReportOptions, stream: TextIO) -> None:
    stream.write(render_json(report, options) + "\n")
