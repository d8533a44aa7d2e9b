"""Human-readable output: per file what was found or fixed, with line numbers, and a summary.

Colour (through rich) only on a terminal and never with NO_COLOR set; on a pipe or in CI the
same lines come out as plain text, without importing rich at all. Paths and messages can carry
text from a file (or a file name): their control characters are escaped, so no file can send
escape sequences to the terminal or break a line apart.
"""

from __future__ import annotations

import os
from typing import TextIO

from cachefix.model import FileResult, Finding, LintReport
from cachefix.report import ReportOptions
from cachefix.report.items import items
from cachefix.report.statistics import statistics_lines
from cachefix.shown import escaped

# The label of a finding after `fix`, and after `fix --diff` (dry_run), where nothing was written.
FIXED = {False: "fixed", True: "would fix"}
NOT_FIXED = {False: "not fixed", True: "would not fix"}
STYLES = {"path": "bold", "code": "bold red", "fixed": "green", "error": "bold red", "position": "cyan",
          "dim": "dim", "summary": "bold"}

Line = list[tuple[str, str | None]]  # (text, style) segments


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _finding_line(finding: Finding, status: str | None) -> Line:
    line: Line = [(f"  {finding.start.line}:{finding.start.column}", "position"), ("  ", None),
                  (finding.code, "code"), ("  ", None)]
    if status:
        line += [(status, "fixed" if status in FIXED.values() else "dim"), ("  ", None)]
    line.append((escaped(finding.message), None))
    return line


def _file_lines(result: FileResult, fixing: bool, options: ReportOptions) -> list[Line]:
    fixed, not_fixed = FIXED[options.dry_run], NOT_FIXED[options.dry_run]
    remaining = {(f.code, f.message) for f in result.remaining}
    listed: list[tuple[Finding, str | None]] = []
    for finding in result.findings:
        if fixing:
            status = fixed if (finding.code, finding.message) not in remaining else not_fixed
        else:
            status = "fixable" if finding.fixable else None
        listed.append((finding, status))
    if fixing:  # anything the fix itself could not settle but the re-lint found
        seen = {(f.code, f.message) for f in result.findings}
        listed.extend((f, not_fixed) for f in result.remaining if (f.code, f.message) not in seen)
    if options.show_ignored:
        listed.extend((f, "ignored") for f in result.ignored)
    listed.sort(key=lambda pair: (pair[0].start.line, pair[0].start.column))
    return [_finding_line(finding, status) for finding, status in listed]


def report_lines(report: LintReport, options: ReportOptions) -> list[Line]:
    """The findings (or with --statistics a table of counts), the errors, and a summary unless --quiet."""
    if options.statistics:
        body = [[(line, None)] for line in statistics_lines(items(report))]
    elif options.quiet:
        body = _quiet_lines(report, options.show_ignored)
    else:
        body = _listing(report, options)
    return [*body, *_error_lines(report), *([] if options.quiet else [_summary(report, options.dry_run)])]


def _listing(report: LintReport, options: ReportOptions) -> list[Line]:
    out: list[Line] = []
    for result in report.files:
        body = _file_lines(result, report.fixing, options)
        if body:
            out.append([(escaped(str(result.path)), "path")])
            out.extend(body)
        elif result.skipped and options.show_ignored:
            out.append([(escaped(str(result.path)), "path"), ("  skipped (# cachefix: skip-file)", "dim")])
    return out


def _quiet_lines(report: LintReport, show_ignored: bool) -> list[Line]:
    """`path:line:col: CODE message`, one finding a line, as editors and grep read them."""
    return [[(f"{escaped(str(item.result.path))}:{item.finding.start.line}:{item.finding.start.column}:", "path"),
             (" ", None), (item.finding.code, "code"), (" [ignored]" if item.ignored else "", "dim"),
             (f" {escaped(item.finding.message)}", None)]
            for item in items(report, show_ignored=show_ignored)]


def _error_lines(report: LintReport) -> list[Line]:
    return [[(escaped(f"{error.path}:{error.line}" if error.line else str(error.path)), "path"), (": ", None),
             ("error", "error"), (f": {escaped(error.message)}", None)] for error in report.errors]


def _fixed(result: FileResult) -> list[Finding]:
    """The findings of the original that the fixed text no longer has."""
    left = {(f.code, f.message) for f in result.remaining}
    return [f for f in result.findings if (f.code, f.message) not in left]


def _failures(report: LintReport) -> str:
    """What went wrong, first in the summary: files left unchecked (or unfixed: a parse error, a
    fix refused), and files whose fix could not be written."""
    handled = {r.path for r in report.files}
    failed = {e.path for e in report.errors}
    unhandled, unwritten = len(failed - handled), len(failed & handled)
    verb = "fixed" if report.fixing else "checked"
    above = "(errors above)" if len(report.errors) > 1 else "(error above)"
    if unhandled and unwritten:
        return f"{_plural(unhandled, 'file')} could not be {verb} and {unwritten} could not be written {above}"
    return f"{_plural(unhandled or unwritten, 'file')} could not be {verb if unhandled else 'written'} {above}"


def _outcome(report: LintReport, dry_run: bool, after_failures: bool) -> str:
    """What the files that were checked hold (check), or what was done to them (fix)."""
    checked = len(report.files)
    files = f"the {checked} checked" if after_failures else _plural(checked, "file")
    if report.fixing:
        fixed_files = sum(1 for r in report.files if r.changed)
        fixed = sum(len(_fixed(r)) for r in report.files if r.changed)
        left = report.findings
        by_hand = " to fix by hand" if not any(f.fixable for f in left) else ""
        left_note = f"; {_plural(len(left), 'finding')} left{by_hand}" if left else ""
        verb = "Would fix" if dry_run else "Fixed"
        if fixed:
            where = f"{_plural(fixed_files, 'file')} of {checked} checked"
            return f"{verb} {_plural(fixed, 'finding')} in {where}{left_note}"
        return f"{verb} nothing in {files}{left_note}" if left else f"Nothing to fix in {files}"
    found = report.findings
    if not found:
        return f"No uncached installs in {files}"
    fixable = sum(1 for f in found if f.fixable)
    with_findings = sum(1 for r in report.files if r.findings)
    return (f"Found {_plural(len(found), 'finding')} ({fixable} fixable with `cachefix fix`) in "
            f"{_plural(with_findings, 'file')} of {checked} checked")


def _summary(report: LintReport, dry_run: bool) -> Line:
    """One line, errors first: a run where files failed must not read as a clean one."""
    parts = []
    if report.errors:
        parts.append(_failures(report))
    if report.files:
        outcome = _outcome(report, dry_run, after_failures=bool(parts))
        parts.append(outcome[0].lower() + outcome[1:] if parts else outcome)
    elif not parts:
        parts.append("No Dockerfiles to check")
    ignored = sum(len(r.ignored) for r in report.files)
    if ignored:
        parts.append(f"{ignored} silenced by `# cachefix: ignore`")
    return [("; ".join(parts) + ".", "summary")]


def use_color(stream: TextIO, color: bool) -> bool:
    return color and "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def write(report: LintReport, options: ReportOptions, stream: TextIO) -> None:
    lines = report_lines(report, options)
    if not use_color(stream, options.color):
        stream.write("".join("".join(text for text, _ in line) + "\n" for line in lines))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False, soft_wrap=True)
    for line in lines:
        console.print(Text.assemble(*((text, STYLES.get(style, "")) if style else text for text, style in line)))
