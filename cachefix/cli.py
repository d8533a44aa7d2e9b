"""The `cachefix` command: dispatch only; the options and help are in `cachefix.arguments`.

Every handler is imported inside its command, so `cachefix check Dockerfile` (what a
pre-commit hook runs on every commit) never imports the HTTP client or the download runtime;
and that plain form, `check PATH...` without an option, is recognised here without argparse.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

TYPE_CHECKING = False  # typing itself costs a cached check 2 ms: type checkers read the name as theirs
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

LINT_COMMANDS = ("fix", "check")
OTHER_COMMANDS = ("rules", "explain", "fetch", "cache", "shell-init", "mounts")
EXIT_USAGE = 2
# What argparse makes of `check PATH...` besides the paths, and an empty `exclude` (a test holds the two to one answer).
PLAIN_CHECK = {"command": "check", "select": None, "ignore": None, "syntax": None, "id_scope": None, "config": None,
               "fail_on": None, "format": "text", "output": None, "show_ignored": False, "statistics": False,
               "quiet": False, "no_cache": False, "no_color": False}


def plain_check(argv: Sequence[str]) -> SimpleNamespace | None:
    """The arguments of `check PATH...` with no option, or None for any other command line.

    Importing argparse and building the parser is about a tenth of a cached one-file check, so
    this form is read here; every other one (an option, `--`, help, a mistake) goes to argparse.
    """
    if len(argv) < 2 or argv[0] != "check" or any(arg.startswith("-") for arg in argv[1:]):
        return None
    return SimpleNamespace(**PLAIN_CHECK, exclude=[], paths=list(argv[1:]))


def _with_default_command(argv: Sequence[str]) -> list[str]:
    """`cachefix ai-stack/` means `cachefix fix ai-stack/`."""
    args = list(argv)
    first = next((a for a in args if not a.startswith("-")), None)
    if any(a in ("-h", "--help", "--version") for a in args[:1]):
        return args
    if first is None or first not in LINT_COMMANDS + OTHER_COMMANDS:
        return ["fix", *args]
    return args


def _needs_a_path(argv: Sequence[str], command: str, explicit: bool) -> int:
    """`cachefix check` without a PATH: writing (or checking) needs to be told where."""
    import shlex

    prog = f"cachefix {command}" if explicit else "cachefix"
    example = shlex.join(["cachefix", *argv, "."])
    print(f"{prog}: error: needs a PATH (a Dockerfile or a folder), e.g. `{example}` for the current folder",
          file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        plain = plain_check(argv)
        if plain is not None:
            return _dispatch(plain)
        from cachefix.arguments import build_parser

        full = _with_default_command(argv)
        parser = build_parser(full[0] if argv else None)
        if not argv:  # bare `cachefix`: help, as git and docker give, never a run over the current folder
            parser.print_help()
            return EXIT_USAGE
        args = parser.parse_args(full)
        if args.command in LINT_COMMANDS and not args.paths:
            return _needs_a_path(argv, args.command, explicit=full == argv)
        return _dispatch(args)
    except BrokenPipeError:  # `cachefix --diff . | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:
        from cachefix.rules.registry import DuplicateCode  # imported here: the registry loads every rule

        if not isinstance(exc, DuplicateCode):
            raise
        print(f"cachefix: error: {exc}", file=sys.stderr)  # two rules with one code: a plugin's packaging bug
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace | SimpleNamespace) -> int:
    if args.command in LINT_COMMANDS:
        from cachefix.runner import run_lint

        return run_lint(args)
    if args.command in ("rules", "explain"):
        from cachefix.report.rule_docs import explain_rule, list_rules

        return list_rules(args.format) if args.command == "rules" else explain_rule(args.rule)
    return args.handler(args)
