"""`--format github`: GitHub Actions workflow commands, which show as annotations on the diff.

`::warning file=F,line=L,col=C,endLine=L,endColumn=C,title=CF101::message`, one a line,
escaped as the runner expects: `%`, CR and LF everywhere, and `:` and `,` in properties too.
Other control characters (an escape sequence from a Dockerfile, which the log would render)
are escaped first, as in the text report.
"""

from __future__ import annotations

from typing import TextIO

from cachefix.model import LintReport, Severity
from cachefix.report import ReportOptions
from cachefix.report.items import Item, display_path, items
from cachefix.shown import escaped

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return escaped(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(level: str, properties: dict[str, object], message: str) -> str:
    listed = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{level} {listed}::{escape_data(message)}"


def finding_command(item: Item) -> str:
    finding = item.finding
    properties = {"file": item.path, "line": finding.start.line, "col": finding.start.column,
                  "endLine": finding.end.line, "endColumn": finding.end.column,
                  "title": f"{finding.code} (ignored)" if item.ignored else finding.code}
    return command("notice" if item.ignored else LEVELS[finding.severity], properties, finding.message)


def render_github(report: LintReport, options: ReportOptions) -> str:
    lines = [finding_command(item) for item in items(report, show_ignored=options.show_ignored)]
    for error in report.errors:
        properties: dict[str, object] = {"file": display_path(error.path)}
        if error.line:
            properties["line"] = error.line
        properties["title"] = "cachefix error"
        lines.append(command("error", properties, error.message))
    return "".join(line + "\n" for line in lines)


def write(report: LintReport, options: ReportOptions, stream: TextIO) -> None:
    stream.write(render_github(report, options))
