"""The `cachefix` command line for argparse: the commands, their options, help and usage errors.

`cachefix.cli` imports this for every command line but the plain `check PATH...` of a pre-commit
hook, which needs neither argparse nor the parser built.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any, NoReturn

from cachefix import __version__
from cachefix.cli import EXIT_USAGE, LINT_COMMANDS
from cachefix.report import FORMATS  # plain data: the reporters themselves are imported when used

DESCRIPTION = """\
Add BuildKit cache mounts to the package installs and downloads in Dockerfiles (pip, uv, apt,
apk, dnf, npm, yarn, pnpm, bun, go, cargo, maven, gradle, HuggingFace models, curl, wget, ...:
see `cachefix rules`), and cache downloads outside containers."""

EPILOG = """\
examples:
  cachefix --diff .            what fixing every Dockerfile under this folder would change
  cachefix .                   fix them, in place (`cachefix PATH...` is `cachefix fix PATH...`)
  cachefix check .             report only, change nothing (for CI)
  cachefix explain apt         what the apt rule changes, and why

exit status: 0 done and clean, 1 findings remain (fix, check) or the operation failed (fetch,
cache), 2 an error (a bad argument, a file that cannot be read, parsed or written).

`cachefix` alone prints this help and changes nothing; fix and check need a PATH.
`cachefix COMMAND --help` describes a command's options and exit status."""

FIX_DESCRIPTION = """\
Rewrite the package installs in Dockerfiles, in place, to use BuildKit cache mounts: each RUN
that installs with a known package manager gets a `--mount=type=cache` on that manager's cache,
and what would defeat the cache (`--no-cache-dir`, `rm -rf /var/lib/apt/lists/*`, ...) is
removed from that RUN. The rest of the file stays byte for byte. A file that cannot be read or
parsed is reported and left as it is; the other files are still fixed. With --diff nothing is
written: the changes are printed as a unified diff (for `git apply`) and the report goes to
stderr."""

CHECK_DESCRIPTION = """\
Report the package installs in Dockerfiles that do not use a BuildKit cache mount (and what
would defeat one), changing no file: for CI and pre-commit. Each finding says whether
`cachefix fix` can fix it; `cachefix explain CODE` says what to do when it cannot."""

SELECT_FORMS = """\
--select and --ignore take a comma-separated list of:
  rule codes       CF101,CF201
  code prefixes    such as CF1 (pip, uv, poetry, conda, spacy), CF2 (apt, apk, dnf), CF4 (npm, yarn, pnpm, bun)
  manager names    pip, apt, npm, go, ... (`cachefix rules` lists codes and managers)"""

FIX_EPILOG = f"""\
{SELECT_FORMS}

exit status:
  0  nothing left to fix (at or above --fail-on)
  1  findings left that cachefix cannot fix (at or above --fail-on); with --diff: also changes to make
  2  an error: a PATH that does not exist, a file that cannot be read, parsed or written, a bad
     option or configuration (even when there are findings; the other files are still fixed)

examples:
  cachefix fix --diff .                  what would change under the current folder
  cachefix fix .                         change it
  cachefix fix --select apt Dockerfile   only the apt rule, in one file"""

CHECK_EPILOG = f"""\
{SELECT_FORMS}

exit status:
  0  no finding (at or above --fail-on)
  1  findings
  2  an error: a PATH that does not exist, a file that cannot be read or parsed, a bad option or
     configuration (even when there are findings)

examples:
  cachefix check .                           every Dockerfile under the current folder
  cachefix check --format github .           annotations in a GitHub Actions job
  cachefix check --fail-on error --quiet .   fail only on errors, one line a finding"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (lists, examples); commands listed without a
    `COMMAND` line above them."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None, **kwargs: Any) -> None:
        # argparse makes a formatter for every add_argument; its own width lookup imports shutil
        # (and with it bz2 and lzma) on every run, help or not.
        width = _terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width, **kwargs)

    def _format_action(self, action: argparse.Action) -> str:
        text = super()._format_action(action)
        return text.split("\n", 1)[1] if isinstance(action, argparse._SubParsersAction) else text


@functools.lru_cache(maxsize=1)
def _terminal_columns() -> int:
    """The width shutil.get_terminal_size() gives: $COLUMNS, else the terminal's, else 80 (asked once)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line on stderr, not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_lint_options(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help=f"a Dockerfile (read whatever its name) or a folder: every Dockerfile and "
                             f"Containerfile under it, skipping what .gitignore ignores; `.` {verb} the "
                             f"current folder")
    parser.add_argument("--select", metavar="CODES", help="only these rules (codes, code prefixes or manager "
                                                          "names, comma-separated: see below)")
    parser.add_argument("--ignore", metavar="CODES", help="skip these rules (same forms as --select)")
    parser.add_argument("--exclude", metavar="GLOB", action="append", default=[],
                        help="in the folders searched, skip paths matching this gitignore-style pattern "
                             "(relative to the folder given; repeatable)")
    parser.add_argument("--syntax", metavar="FRONTEND",
                        help="the frontend image written as `# syntax=` at the top of a file that gains its "
                             "first cache mount and has none: docker/dockerfile:1.3 by default (a "
                             "docker/dockerfile tag is raised to what the file needs: 1.4 for heredocs), another "
                             "image reference, or 'none' to write none. A docker/dockerfile directive already in "
                             "the file is raised when too old, whatever this says")
    parser.add_argument("--id-scope", choices=("distro", "arch"),
                        help="give each cache mount a fix writes an id of its own per distribution release "
                             "(distro: `id=/var/cache/apt-debian-bookworm`, from the stage's FROM) or per "
                             "architecture (arch: `id=/root/.cache/pip-${TARGETARCH}`), for builders that build "
                             "for several (config key `id-scope`)")
    parser.add_argument("--config", metavar="FILE",
                        help="use this configuration file for every file (default: for each file, the "
                             ".cachefix.toml, or pyproject.toml with [tool.cachefix], found first in its "
                             "folder or the folders above)")
    parser.add_argument("--fail-on", metavar="SEVERITY",
                        help="info, warning, error or never: the least severe finding that makes the exit "
                             "status 1 (default: info, i.e. any finding)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="report format: text (default), json, sarif, github (workflow annotations) or "
                             "gitlab (code quality)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--show-ignored", action="store_true",
                        help="also list findings silenced by `# cachefix: ignore` and files skipped by "
                             "`# cachefix: skip-file`")
    parser.add_argument("--statistics", action="store_true",
                        help="count findings per rule code instead of listing them (with a --format other "
                             "than text: the report as usual, and the counts on stderr)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="text: only the findings, one a line (`path:line:col: CODE message`), and the "
                             "errors; no summary, no progress bar")
    parser.add_argument("--no-cache", action="store_true",
                        help="lint every file again: neither read nor write the cache of results, kept per file "
                             "content and settings (in ~/.cache/cachefix-lint on Linux; also CACHEFIX_NO_CACHE=1)")
    parser.add_argument("--no-color", action="store_true",
                        help="never colour the output (it is coloured only on a terminal without NO_COLOR)")


def _add_lint_command(commands: argparse._SubParsersAction, name: str, help_line: str, description: str,
                      epilog: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_line, description=description, epilog=epilog,
                                 usage=f"cachefix {name} [options] PATH...",
                                 formatter_class=HelpFormatter)
    _add_lint_options(parser, "fixes" if name == "fix" else "checks")
    return parser


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or just enough of it to parse `only` (a lint command): a hook
    checking one file need not build, nor import, the other commands' options."""
    parser = Parser(prog="cachefix", description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"cachefix {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    fix = _add_lint_command(commands, "fix", "rewrite Dockerfiles in place to use cache mounts (--diff: only show)",
                            FIX_DESCRIPTION, FIX_EPILOG)
    fix.add_argument("--diff", action="store_true",
                     help="write nothing: print the changes as a unified diff on stdout (the report goes to "
                          "stderr, or to --output), and exit 1 when there are changes to make")
    _add_lint_command(commands, "check", "report uncached installs, change nothing; exit 1 when any remain",
                      CHECK_DESCRIPTION, CHECK_EPILOG)
    if only in LINT_COMMANDS:
        return parser

    rules = commands.add_parser("rules", help="list the rules: code, manager, name, summary",
                                description="List the rules cachefix runs (plugins included), and CF900, the code "
                                            "of a `# cachefix:` comment that cannot work.")
    rules.add_argument("--format", choices=("text", "json"), default="text",
                       help="text (default), or json: a list of objects with code, name, manager, summary, "
                            "fixable and fix_safety")
    explain = commands.add_parser("explain", help="a rule's documentation: what, why, before and after, fix safety",
                                  description="Print a rule's documentation: what it finds, why it matters, an "
                                              "example and its fix, and how safe the fix is.")
    explain.add_argument("rule", metavar="RULE",
                         help="a rule code (CF201), a rule name (apt-cache-mount) or a manager (apt): a "
                              "manager explains each of its rules")

    from cachefix.downloads.commands import add_commands
    from cachefix.mounts.commands import add_mounts_command

    add_commands(commands)
    add_mounts_command(commands)
    return parser
