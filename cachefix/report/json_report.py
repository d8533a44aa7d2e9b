"""`--format json`: one object, stable for scripts (see the command-line contract in the README)."""

from __future__ import annotations

import json

from cachefix.model import FileResult, Finding, LintReport
from cachefix.report.positions import LineIndex


def _position(index: LineIndex, offset: int) -> dict[str, int]:
    line, column = index.position(offset)
    return {"line": line, "column": column}


def finding_dict(result: FileResult, finding: Finding, index: LineIndex | None) -> dict:
    item = {
        "file": str(result.path),
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
    if finding.edits and index is not None:
        item["fix"] = {"edits": [
            {"start": _position(index, e.start), "end": _position(index, e.end),
             "replacement": e.replacement}
            for e in finding.edits
        ]}
    return item


def render_json(report: LintReport) -> str:
    findings = []
    for result in report.files:
        chosen = result.remaining if report.fixing else result.findings
        # Edits of remaining findings refer to the fixed text, of original findings to the original.
        index = LineIndex(result.fixed if report.fixing and result.fixed is not None else result.original)
        findings.extend(finding_dict(result, f, index) for f in chosen)
    errors = [{"file": str(e.path), "line": e.line, "message": e.message} for e in report.errors]
    return json.dumps({"version": 1, "files": len(report.files) + len(report.errors),
                       "fixed": sum(1 for r in report.files if r.changed) if report.fixing else 0,
                       "findings": findings, "errors": errors}, indent=2)
