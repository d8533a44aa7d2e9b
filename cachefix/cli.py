"""The `cachefix` command: arguments and dispatch only.

Every handler is imported inside its command, so `cachefix check Dockerfile` (what a
pre-commit hook runs on every commit) never imports the HTTP client or the download runtime.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from cachefix import __version__
from cachefix.report import FORMATS  # plain data: the reporters themselves are imported when used

LINT_COMMANDS = ("fix", "check")
OTHER_COMMANDS = ("rules", "explain", "fetch", "cache", "shell-init")


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line on stderr, not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_lint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", default=["."],
                        help="files or folders (searched recursively); default: the current folder")
    parser.add_argument("--select", metavar="CODES", help="only these rule codes (comma-separated)")
    parser.add_argument("--ignore", metavar="CODES", help="skip these rule codes (comma-separated)")
    parser.add_argument("--exclude", metavar="GLOB", action="append", default=[],
                        help="skip paths matching this gitignore-style pattern (repeatable)")
    parser.add_argument("--syntax", metavar="VERSION",
                        help="the `# syntax=` frontend to write, e.g. docker/dockerfile:1.4, or 'none' "
                             "(default: docker/dockerfile:1.3)")
    parser.add_argument("--config", metavar="FILE",
                        help="use this configuration file for every file (default: the nearest .cachefix.toml "
                             "or pyproject.toml with [tool.cachefix] above each file)")
    parser.add_argument("--fail-on", metavar="SEVERITY",
                        help="info, warning, error or never: the least severe finding that makes the exit "
                             "status 1 (default: info, i.e. any finding)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--show-ignored", action="store_true",
                        help="also list findings silenced by `# cachefix: ignore` and files skipped by "
                             "`# cachefix: skip-file`")
    parser.add_argument("--statistics", action="store_true",
                        help="count findings per rule code (with --format other than text: on stderr)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print only the findings (text: `path:line:col: CODE message`), no summary or progress")
    parser.add_argument("--no-color", action="store_true", help="never colour the output")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="cachefix",
        description="Add BuildKit cache mounts to Dockerfiles, and cache downloads outside containers.",
        epilog="`cachefix PATH...` is `cachefix fix PATH...`. Exit status: 0 clean, 1 findings remain, 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"cachefix {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    fix = commands.add_parser("fix", help="rewrite Dockerfiles in place (the default command)")
    _add_lint_options(fix)
    fix.add_argument("--diff", action="store_true", help="print a unified diff and write nothing")

    check = commands.add_parser("check", help="report uncached installs; exit 1 when any remain")
    _add_lint_options(check)

    commands.add_parser("rules", help="list the rules")
    explain = commands.add_parser("explain", help="explain a rule: what, why, before and after")
    explain.add_argument("code", help="a rule code, e.g. CF001")

    from cachefix.downloads.commands import add_commands

    add_commands(commands)
    return parser


def _with_default_command(argv: Sequence[str]) -> list[str]:
    """`cachefix ai-stack/` means `cachefix fix ai-stack/`."""
    args = list(argv)
    first = next((a for a in args if not a.startswith("-")), None)
    if any(a in ("-h", "--help", "--version") for a in args[:1]):
        return args
    if first is None or first not in LINT_COMMANDS + OTHER_COMMANDS:
        return ["fix", *args]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _dispatch(build_parser().parse_args(_with_default_command(sys.argv[1:] if argv is None else argv)))
    except BrokenPipeError:  # `cachefix --diff . | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in LINT_COMMANDS:
        from cachefix.runner import run_lint

        return run_lint(args)
    if args.command in ("rules", "explain"):
        from cachefix.report.rule_docs import explain_rule, list_rules

        return list_rules() if args.command == "rules" else explain_rule(args.code)
    return args.handler(args)
