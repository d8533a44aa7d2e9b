"""Deeply nested input is checked in linear time or refused with a one-line error (issue 8.6).

Nested `$(...)` took seconds at 3,000 levels and a minute at 10,000: every level's words hold
the text of the levels inside it. Nesting that costs nothing extra (subshells, braces) is
analysed at any depth; nesting that does is refused past a limit no real script comes near,
with exit status 2 and the file left as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cachefix.limits import MAX_SEPARATORS
from cachefix.rewriter.shell import MAX_DEPTH, ShellTooDeep, commands
from tests.adversarial.files_support import FIXED_LINE, cachefix, one_line
from tests.helpers import write

PIP = "pip install flask"


def dollar_parens(levels: int) -> str:
    return "echo " + "$(echo " * levels + "x" + ")" * levels


def dockerfile(script: str) -> str:
    return f"FROM python:3.12-slim\nRUN {script}\n"


def test_the_issues_ten_thousand_nested_substitutions_are_refused_and_left_alone(tmp_path: Path) -> None:
    text = dockerfile(f"{PIP} && echo " + "$(" * 10_000 + "x" + ")" * 10_000)  # 30 KB, under the line limit
    path = write(tmp_path / "Dockerfile", text)
    result = cachefix("fix", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result.stdout.strip().splitlines()[0]) == (  # its 20,000 parentheses are over a limit first
        f"Dockerfile: error: more than {MAX_SEPARATORS:,} command separators (; & | ( ) ` new lines) in RUN "
        "instructions, over cachefix's limit: the file is not checked")
    assert path.read_text() == text


def test_substitutions_nested_up_to_the_limit_still_get_their_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "Dockerfile", dockerfile(f"{PIP} && {dollar_parens(MAX_DEPTH)}"))
    result = cachefix("fix", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{FIXED_LINE} && echo $(echo" in path.read_text()


@pytest.mark.parametrize(("opening", "closing"), [("( ", " )"), ("{ ", "; }"), ("if true; then ", "; fi")])
def test_nesting_that_costs_nothing_extra_is_analysed_at_any_depth(tmp_path: Path, opening: str,
                                                                    closing: str) -> None:
    path = write(tmp_path / "Dockerfile", dockerfile(opening * 600 + PIP + closing * 600))  # within MAX_SEPARATORS
    result = cachefix("fix", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert path.read_text().splitlines()[-1].startswith(FIXED_LINE.removesuffix(PIP))


def test_a_substitution_past_the_limit_is_found_wherever_it_is() -> None:
    assert [c.name for c in commands(f"{PIP}; {dollar_parens(MAX_DEPTH)}")][:2] == ["pip", "echo"]
    for script in (dollar_parens(MAX_DEPTH + 1), f"diff <(echo {dollar_parens(MAX_DEPTH)}) x",
                   f"echo `{dollar_parens(MAX_DEPTH)}`"):
        with pytest.raises(ShellTooDeep):
            commands(script)


@pytest.mark.parametrize(("text", "message"), [
    ("FROM a\n" + "ONBUILD " * 3_000 + "RUN x\n",
     "ONBUILD chained more than 16 deep (and BuildKit refuses `ONBUILD ONBUILD` when it builds)"),
    ("FROM a\nRUN cat <<EOF " + "${a:-" * 3_000 + "x" + "}" * 3_000 + "\nbody\nEOF\n",
     "variable substitutions nested more than 16 deep: cachefix does not analyse this line"),
])
def test_deep_dockerfile_constructs_are_an_error_not_a_traceback(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "Dockerfile", text)
    result = cachefix("check", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result.stdout.strip().splitlines()[0]) == f"Dockerfile:2: error: {message}"
    assert path.read_text() == text


def test_a_heredoc_line_with_a_word_of_megabytes_still_gets_its_fix(tmp_path: Path) -> None:
    """The heredoc lexer grew its words a character at a time: quadratic in the word's length."""
    word = "\\\n".join(["a" * 200] * 300)  # as long as MAX_SHELL_BYTES allows
    path = write(tmp_path / "Dockerfile", f"FROM python:3.12-slim\nRUN {PIP} {word} <<EOF\nbody\nEOF\n")
    result = cachefix("fix", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"\n{FIXED_LINE} aaa" in path.read_text()
