"""How much one Dockerfile may hold: beyond these limits cachefix refuses it instead of checking it.

A pre-commit hook runs cachefix on every commit, so any file it accepts must be checked in well
under a second, whatever is in it. The work grows with the size of the file, and for some parts
(each RUN's shell, each variable a RUN sees) faster than that; these limits bound every such part,
measured with `benchmarks/worst_case_parse.py` (its cases are generated as large as each limit
allows). Each is far above what real Dockerfiles hold: the largest of a corpus of 341 real ones
(moby/buildkit's) has 20 KB, 511 lines, 254 instructions, 36 RUNs, 7 KB of shell in them with
232 command separators, 10 heredocs and 85 ENV and ARG variables. A file over a limit is a
one-line error (exit 2) and is left as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cachefix.rewriter.errors import DockerfileSyntaxError

if TYPE_CHECKING:
    from cachefix.rewriter.dockerfile import Dockerfile, Instruction

# Bytes of a Dockerfile: flags and other words are read one by one (25,000 `--mount` flags
# take seconds). 12 times the largest real Dockerfile.
MAX_BYTES = 256 * 1024
# Bytes of a configuration file (pyproject.toml can be large, and only its TOML is read): enough
# to stop a FIFO or /dev/zero, not a limit on its contents.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
# Physical lines, comments and continuations included: the parser's cost is per line. 20 times real.
MAX_LINES = 10_000
# Instructions (FROM included, so stages too). 8 times real.
MAX_INSTRUCTIONS = 2_000
# RUN instructions (ONBUILD RUN included): each costs the rules about half a millisecond. 14 times real.
MAX_RUNS = 500
# Bytes of shell the RUNs hold together, heredoc bodies included: parsing shell costs up to
# ~13 µs a byte. 9 times real.
MAX_SHELL_BYTES = 64 * 1024
# Command separators in the RUNs' shell (`;`, `&`, `|`, parentheses, backticks, new lines):
# there are at least as many as commands but one, and each command costs ~100 µs to find
# and read. 8 times real.
MAX_SEPARATORS = 2_000
SEPARATORS = ";&|()`\n"
# Heredocs (`<<EOF`) in the file: the shell parser's work grows faster than their number. 20 times real.
MAX_HEREDOCS = 200
# ENV and ARG variables declared, each counted at each declaration: every RUN gets a copy
# of those in effect. 12 times real.
MAX_VARIABLES = 1_000
# Bytes that variables put into one value as it is expanded (ENV, ARG, USER, WORKDIR, and the
# words rules read): `ENV B=$A$A C=$B$B ...` doubles at each step. Real values are a few
# hundred bytes.
MAX_VALUE_BYTES = 64 * 1024


class OverLimit(DockerfileSyntaxError):
    """A file over one of the limits: reported in one line that names the limit, never checked."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(None, f"more than {limit:,} {what}, over cachefix's limit: the file is not checked")


def check_text(text: str) -> None:
    """Refuse a text with too many lines, before parsing it."""
    if text.count("\n") > MAX_LINES:
        raise OverLimit("lines", MAX_LINES)


def check_parsed(dockerfile: Dockerfile) -> None:
    """Refuse a parsed file over a limit on instructions, heredocs, variables, RUNs, bytes of
    shell or command separators, before any rule runs."""
    instructions = dockerfile.instructions
    if len(instructions) > MAX_INSTRUCTIONS:
        raise OverLimit("instructions", MAX_INSTRUCTIONS)
    if sum(len(i.unwrapped.heredocs) for i in instructions) > MAX_HEREDOCS:
        raise OverLimit("heredocs", MAX_HEREDOCS)
    if sum(_variables(i) for i in instructions) > MAX_VARIABLES:
        raise OverLimit("ENV and ARG variables", MAX_VARIABLES)
    scripts = [s for s in map(_shell, instructions) if s is not None]
    if len(scripts) > MAX_RUNS:
        raise OverLimit("RUN instructions", MAX_RUNS)
    if sum(len(s.encode()) for s in scripts) > MAX_SHELL_BYTES:
        raise OverLimit("bytes of shell in RUN instructions", MAX_SHELL_BYTES)
    if sum(s.count(c) for s in scripts for c in SEPARATORS) > MAX_SEPARATORS:
        raise OverLimit("command separators (; & | ( ) ` new lines) in RUN instructions", MAX_SEPARATORS)


def _shell(instruction: Instruction) -> str | None:
    """What a RUN (or ONBUILD RUN) runs: its command line and heredoc bodies; None for another instruction."""
    target = instruction.unwrapped
    if target.keyword != "RUN":
        return None
    return " ".join(target.value) + "".join("\n" + h.content for h in target.heredocs)


def _variables(instruction: Instruction) -> int:
    if instruction.keyword == "ENV":
        return len(instruction.value) // 2
    return len(instruction.value) if instruction.keyword == "ARG" else 0
