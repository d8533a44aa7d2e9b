"""Issue 8.12: suppression comments (configuration inside a Dockerfile) that are written wrong.

`# cachefix: ignore [CF999]` (a space before the bracket) silenced every rule and reported
nothing. Now a space before the bracket is the same as none, and every malformed comment
silences nothing and is reported as CF900 where it stands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cachefix.cli import main
from tests.helpers import write

PIP = "RUN pip install --no-cache-dir flask\n"

pytestmark = pytest.mark.usefixtures("in_tmp")


def _check(tmp_path: Path, capsys, comment: str) -> list[str]:
    write(tmp_path / "Dockerfile", f"FROM python:3.12\n{comment}\n{PIP}")
    main(["check", "--quiet", "Dockerfile"])
    out, err = capsys.readouterr()
    assert err == ""
    return [" ".join(line.split()[:2]) for line in out.splitlines()]


@pytest.mark.parametrize(("comment", "problem"), [
    ("# cachefix: ignore [CF999]", "unknown rule code CF999"),
    ("# cachefix: ignore\t[CF201, CF999]", "unknown rule code CF999"),
    ("# cachefix: ignore []", "names no code"),
    ("# cachefix: ignore[,]", "names no code"),
    ("# cachefix: ignore[CF1 01]", "unknown rule code CF1 01"),
    ("# cachefix: ignore[CF101;CF201]", "unknown rule code CF101;CF201"),
    ("# cachefix: ignore[*]", "unknown rule code *"),
    ("# cachefix: ignore CF101", "codes go in brackets: write `ignore[CF101]`"),
    ("# cachefix: ignore cf101, cf201 -- pinned", "codes go in brackets: write `ignore[cf101]`"),
    ("# cachefix: ignore [CF101", "unknown directive"),
    ("# cachefix: ignore[CF101]]", "unknown directive"),
    ("# cachefix: ignore[CF101] [CF201]", "unknown directive"),
    ("# cachefix: ignore［CF101］", "unknown directive"),
    ("# cachefix： ignore", "look-alike characters"),
    ("# cаchefix: ignore", "look-alike characters"),  # a Cyrillic а
    ("# cache\u200bfix: ignore", "look-alike characters"),
    ("# cachefix ignore[CF101]", "a colon is missing"),
    ("# cachefix-ignore", "a colon is missing"),
    ("# cachefix: skip_file", "unknown directive"),
    ("# cachefix: skip file", "unknown directive"),
    ("# cachefix: skip-file [CF101]", "takes no codes"),
    ("# cachefix: skip-file[]", "takes no codes"),
])
def test_a_malformed_suppression_silences_nothing_and_is_cf900(tmp_path: Path, capsys, comment: str,
                                                               problem: str) -> None:
    assert _check(tmp_path, capsys, comment) == ["Dockerfile:2:1: CF900", "Dockerfile:3:5: CF101"]
    main(["check", "--quiet", "Dockerfile"])
    assert problem in capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize("comment", [
    "# cachefix: ignore [CF101]", "# cachefix: ignore\t[ CF101 ]", "# cachefix: ignore [pip] -- wheels are pinned",
    "# cachefix: ignore -- wheels are pinned",
])
def test_a_space_before_the_bracket_is_the_same_as_none(tmp_path: Path, capsys, comment: str) -> None:
    assert _check(tmp_path, capsys, comment) == []


@pytest.mark.parametrize("header", ["# cachefix skip-file", "# cachefix: skip-file [CF101]", "# cachefіx: skip-file"])
def test_a_malformed_skip_file_lints_the_file_and_says_why(tmp_path: Path, capsys, header: str) -> None:
    dockerfile = write(tmp_path / "Dockerfile", f"{header}\nFROM python:3.12\n{PIP}")
    assert main(["check", "--quiet", "Dockerfile"]) == 1
    found = [" ".join(line.split()[:2]) for line in capsys.readouterr().out.splitlines()]
    assert found == ["Dockerfile:1:1: CF900", "Dockerfile:3:5: CF101"]
    assert main(["fix", "--quiet", "--syntax", "none", "Dockerfile"]) == 1  # CF900 stays
    assert "--mount=type=cache" in dockerfile.read_text()


def test_prose_that_mentions_cachefix_is_no_directive(tmp_path: Path, capsys) -> None:
    assert _check(tmp_path, capsys, "# cachefix ignores nothing here; see docs") == ["Dockerfile:3:5: CF101"]


def test_a_cf900_message_never_sends_the_comments_control_characters_to_the_terminal(tmp_path: Path, capsys) -> None:
    write(tmp_path / "Dockerfile", "FROM python\n# cachefix: ignore[\x1b[2J]\n# cachefix: ingore\x1b]0;x\x07\n" + PIP)
    main(["check", "--quiet", "Dockerfile"])
    out = capsys.readouterr().out
    assert out.count("CF900") == 2 and "\x1b" not in out and "\\x1b[2J" in out
