"""Every limit of cachefix/limits.py (issue 8.6): a file at the limit is checked and fixed as any
other, one just past it is a one-line error naming the limit (exit 2) and is left as it was.

How quickly each is checked is measured by benchmarks/worst_case_parse.py, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cachefix.limits import (
    MAX_BYTES,
    MAX_HEREDOCS,
    MAX_INSTRUCTIONS,
    MAX_LINES,
    MAX_RUNS,
    MAX_SEPARATORS,
    MAX_SHELL_BYTES,
    MAX_VALUE_BYTES,
    MAX_VARIABLES,
)
from tests.adversarial.files_support import FIXED_LINE, UNCACHED, cachefix, one_line
from tests.helpers import write

FROM, RUN = UNCACHED.splitlines(keepends=True)  # `RUN pip install flask`: the line a fix changes
SCRIPT = RUN.removeprefix("RUN ").removesuffix("\n")


def _bytes(size: int) -> str:
    """A file of `size` bytes: comment lines of 100 bytes (BuildKit refuses lines over 64 KiB)."""
    rest = size - len(UNCACHED)
    return UNCACHED + ("#" * 99 + "\n") * (rest // 100) + ("#" * (rest % 100 - 1) + "\n" if rest % 100 else "")


def _lines(count: int) -> str:
    return UNCACHED + "#\n" * (count - 2)


def _instructions(count: int) -> str:
    return UNCACHED + "COPY a /a\n" * (count - 2)


def _runs(count: int) -> str:
    return UNCACHED + "RUN true\n" * (count - 1)


def _shell_bytes(size: int) -> str:
    """RUN lines of `echo aaa...` after the pip install, `size` bytes of shell in all."""
    rest, lines = size - len(SCRIPT), []
    while rest:
        width = min(rest, 30_000)
        lines.append("RUN echo " + "a" * (width - len("echo ")) + "\n")
        rest -= width
    return UNCACHED + "".join(lines)


def _separators(count: int) -> str:
    return UNCACHED + "RUN " + "true;" * count + "\n"


def _heredocs(count: int) -> str:
    return UNCACHED + "".join(f"COPY <<EOF /f{i}\nx\nEOF\n" for i in range(count))


def _variables(count: int) -> str:
    return FROM + "ENV " + " ".join(f"V{i}={i}" for i in range(count)) + "\n" + RUN


def _value_bytes(size: int) -> str:
    """`ENV B=$A$A$C`: expanding B puts `size` bytes into one value."""
    return FROM + f"ENV C={'c' * (size % 2)} A={'a' * (size // 2)}\nENV B=$A$A$C\n" + RUN


LIMITS: list[tuple[Callable[[int], str], int, str]] = [
    (_bytes, MAX_BYTES, ""),
    (_lines, MAX_LINES, "lines"),
    (_instructions, MAX_INSTRUCTIONS, "instructions"),
    (_runs, MAX_RUNS, "RUN instructions"),
    (_shell_bytes, MAX_SHELL_BYTES, "bytes of shell in RUN instructions"),
    (_separators, MAX_SEPARATORS, "command separators (; & | ( ) ` new lines) in RUN instructions"),
    (_heredocs, MAX_HEREDOCS, "heredocs"),
    (_variables, MAX_VARIABLES, "ENV and ARG variables"),
    (_value_bytes, MAX_VALUE_BYTES, "bytes of variables expanded in one value"),
]
IDS = [build.__name__.strip("_") for build, _, _ in LIMITS]


@pytest.mark.parametrize(("build", "limit", "what"), LIMITS, ids=IDS)
def test_a_file_at_the_limit_is_checked_and_fixed(tmp_path: Path, build: Callable[[int], str], limit: int,
                                                   what: str) -> None:
    path = write(tmp_path / "Dockerfile", build(limit))
    result = cachefix("fix", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert FIXED_LINE + "\n" in path.read_text()


@pytest.mark.parametrize(("build", "limit", "what"), LIMITS, ids=IDS)
def test_a_file_past_the_limit_is_one_line_naming_it_and_left_alone(tmp_path: Path, build: Callable[[int], str],
                                                                      limit: int, what: str) -> None:
    text = build(limit + 1)
    path = write(tmp_path / "Dockerfile", text)
    result = cachefix("fix", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 2
    expected = (f"too large for a Dockerfile (the limit is {limit} bytes)" if not what
                else f"more than {limit:,} {what}, over cachefix's limit: the file is not checked")
    assert one_line(result.stdout.strip().splitlines()[0]) == f"Dockerfile: error: {expected}"
    assert path.read_bytes() == text.encode()
