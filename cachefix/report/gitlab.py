"""`--format gitlab`: a GitLab code quality report (a JSON array of issues).

GitLab tells new issues from old ones by fingerprint, so it hashes the path, the code and the
flagged text, never the line number. A file cachefix could not check is a critical issue,
so that a merge request shows it.
"""

from __future__ import annotations

import json
from typing import TextIO

from cachefix.model import LintReport, Severity
from cachefix.report import ReportOptions
from cachefix.report.items import display_path, fingerprint, items

SEVERITIES = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info"}
ERROR_CHECK = "cachefix-error"


def render_gitlab(report: LintReport, options: ReportOptions) -> str:
    issues = [{
        "description": f"{item.finding.code}: {item.finding.message}",
        "check_name": item.finding.code,
        "fingerprint": item.fingerprint,
        "severity": SEVERITIES[item.finding.severity],
        "location": {"path": item.path,
                     "lines": {"begin": item.finding.start.line, "end": item.finding.end.line}},
    } for item in items(report)]  # code quality has no notion of a suppressed issue
    issues.extend({
        "description": f"cachefix could not check this file: {error.message}",
        "check_name": ERROR_CHECK,
        "fingerprint": fingerprint(display_path(error.path), ERROR_CHECK, error.message),
        "severity": "critical",
        "location": {"path": display_path(error.path), "lines": {"begin": error.line or 1}},
    } for error in report.errors)
    return json.dumps(issues, indent=2)


def write(report: LintReport, options: ReportOptions, stream: TextIO) -> None:
    stream.write(render_gitlab(report, options) + "\n")
