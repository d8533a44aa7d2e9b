"""The `cachefix` command: arguments and dispatch only.

Every handler is imported inside its command, so `cachefix check Dockerfile` (what a
pre-commit hook runs on every commit) never imports the HTTP client or the download runtime.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cachefix import __version__

LINT_COMMANDS = ("fix", "check")
OTHER_COMMANDS = ("rules", "explain", "fetch", "cache", "shell-init")


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
    parser.add_argument("--format", choices=("text", "json"), default="text", help="report format")
    parser.add_argument("--no-color", action="store_true", help="never colour the output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = build_parser().parse_args(_with_default_command(sys.argv[1:] if argv is None else argv))
    if args.command in LINT_COMMANDS:
        from cachefix.runner import run_lint

        return run_lint(args)
    if args.command in ("rules", "explain"):
        from cachefix.report.rule_docs import explain_rule, list_rules

        return list_rules() if args.command == "rules" else explain_rule(args.code)
    return args.handler(args)
