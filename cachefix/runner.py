"""`cachefix fix` and `cachefix check`: files in, report and exit status out."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from cachefix.engine import BrokenRewrite, Outcome, Settings, check, fix
from cachefix.files import UnreadableFile, find_dockerfiles, read_dockerfile, write_atomically
from cachefix.model import FileError, FileResult, LintReport
from cachefix.rewriter.dockerfile import DockerfileSyntaxError
from cachefix.rules.registry import UnknownRule, select_rules

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _codes(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def settings_from(args: argparse.Namespace) -> Settings:
    rules = select_rules(_codes(args.select), _codes(args.ignore))
    return Settings(rules=[rule() for rule in rules], syntax=args.syntax)


def process(path: Path, settings: Settings, report: LintReport, *, fixing: bool, write: bool) -> FileResult | None:
    """Lint (and fix) one file; problems become FileErrors and the file is left as it was."""
    try:
        text = read_dockerfile(path)
        if fixing:
            outcome = fix(text, settings)
        else:
            found = check(text, settings)
            outcome = Outcome(found, text, found)
    except UnreadableFile as exc:
        report.errors.append(FileError(path, str(exc)))
        return None
    except DockerfileSyntaxError as exc:
        report.errors.append(FileError(path, exc.message, exc.line))
        return None
    except BrokenRewrite as exc:
        report.errors.append(FileError(path, str(exc)))
        return None
    result = FileResult(path, findings=outcome.findings, remaining=outcome.remaining,
                        original=text, fixed=outcome.fixed)
    if write and result.changed:
        try:
            write_atomically(path, outcome.fixed)
        except OSError as exc:
            report.errors.append(FileError(path, f"cannot write: {exc.strerror or exc}"))
            result.fixed = text
            result.remaining = outcome.findings
    report.files.append(result)
    return result


def unified_diff(result: FileResult) -> str:
    return "".join(difflib.unified_diff(
        result.original.splitlines(keepends=True), (result.fixed or "").splitlines(keepends=True),
        fromfile=f"a/{result.path}", tofile=f"b/{result.path}"))


def run_lint(args: argparse.Namespace) -> int:
    fixing = args.command == "fix"
    diff_only = fixing and getattr(args, "diff", False)
    try:
        settings = settings_from(args)
    except UnknownRule as exc:
        print(f"cachefix: error: unknown rule code {exc.args[0]!r} (see `cachefix rules`)", file=sys.stderr)
        return EXIT_ERROR
    report = LintReport(fixing=fixing and not diff_only)
    for path in find_dockerfiles(args.paths, args.exclude):
        result = process(path, settings, report, fixing=fixing, write=fixing and not diff_only)
        if diff_only and result is not None and result.changed:
            sys.stdout.write(unified_diff(result))
    if diff_only:
        report.fixing = True  # report what the diff would leave
    from cachefix.report import render

    render(report, args.format, color=not args.no_color, diff_mode=diff_only)
    if report.errors:
        return EXIT_ERROR
    would_change = diff_only and any(r.changed for r in report.files)
    return EXIT_FINDINGS if report.findings or would_change else EXIT_CLEAN
