"""`# cachefix: ignore[...]` and `# cachefix: skip-file`: what they silence, and CF900 when they cannot work."""

from __future__ import annotations

import pytest

from cachefix.engine import Settings, fix, lint
from cachefix.rewriter.dockerfile import parse
from cachefix.rules.registry import all_rules

SETTINGS = Settings(rules=[rule() for rule in all_rules()])
PIP = "RUN pip install --no-cache-dir flask\n"
APT_AND_PIP = "RUN apt-get update && apt-get install -y curl && pip install flask\n"


def codes(text: str) -> list[str]:
    return [f.code for f in lint(parse(text), SETTINGS)]


@pytest.mark.parametrize("comment", [
    "# cachefix: ignore", "# cachefix: ignore[CF101]", "#cachefix:ignore[CF101]", "  # CacheFix: IGNORE[cf101]",
    "# cachefix: ignore[pip]", "# cachefix: ignore[CF1]", "# cachefix: ignore[CF101] -- wheels come from a mirror",
])
def test_an_ignore_comment_silences_the_instruction_below(comment: str) -> None:
    text = f"FROM python:3.12\n{comment}\n{PIP}"
    outcome = fix(text, SETTINGS)
    assert outcome.findings == [] and outcome.fixed == text  # neither reported nor fixed
    assert [f.code for f in outcome.ignored] == ["CF101"]


def test_an_ignore_comment_names_codes_and_the_others_still_count() -> None:
    text = f"FROM debian\n# cachefix: ignore[CF201]\n{APT_AND_PIP}"
    outcome = fix(text, SETTINGS)
    assert [f.code for f in outcome.findings] == ["CF101"]
    assert [f.code for f in outcome.ignored] == ["CF201"]
    assert "--mount=type=cache,target=/root/.cache/pip" in outcome.fixed
    assert "/var/cache/apt" not in outcome.fixed  # the silenced apt install is not fixed either


def test_comments_may_sit_between_the_ignore_and_its_instruction_but_not_a_blank_line() -> None:
    assert codes(f"FROM python\n# cachefix: ignore[CF101]\n# pinned wheels\n{PIP}") == []
    assert codes(f"FROM python\n# cachefix: ignore[CF101]\n\n{PIP}") == ["CF900", "CF101"]


def test_an_ignore_silences_only_its_own_instruction() -> None:
    assert codes(f"FROM python\n# cachefix: ignore\n{PIP}{PIP}") == ["CF101"]


def test_a_comment_inside_a_continuation_or_heredoc_is_not_a_suppression() -> None:
    continued = "FROM python\nRUN echo start && \\\n# cachefix: ignore\n    pip install flask\n"
    assert codes(continued) == ["CF101"]
    heredoc = "# syntax=docker/dockerfile:1.4\nFROM python\nRUN <<EOF\n# cachefix: ignore\npip install flask\nEOF\n"
    assert codes(heredoc) == ["CF101"]


@pytest.mark.parametrize(("comment", "problem"), [
    ("# cachefix: ignore[CF999]", "unknown rule code CF999"),
    ("# cachefix: ignore[CF101,nosuch]", "unknown rule code nosuch"),
    ("# cachefix: ignore[]", "names no code"),
    ("# cachefix: ingore", "unknown directive"),
    ("# cachefix: skip-file[CF101]", "takes no codes"),
])
def test_a_suppression_that_cannot_work_is_cf900_at_the_comment(comment: str, problem: str) -> None:
    text = f"FROM python\n{comment}\n{PIP}"
    found = lint(parse(text), SETTINGS)
    cf900 = [f for f in found if f.code == "CF900"]
    assert len(cf900) == 1 and problem in cf900[0].message
    assert (cf900[0].start.line, cf900[0].start.column) == (2, 1)
    assert not cf900[0].fixable


def test_known_codes_in_a_list_with_an_unknown_one_still_work() -> None:
    assert codes(f"FROM python\n# cachefix: ignore[CF101, CF999]\n{PIP}") == ["CF900"]


def test_skip_file_in_the_header_leaves_the_file_alone_even_when_it_does_not_parse() -> None:
    text = ("# syntax=docker/dockerfile:1\n# generated from a template\n# cachefix: skip-file\n\n"
            "FROM {{ base }}\nBOGUS\n")
    outcome = fix(text, SETTINGS)
    assert outcome.skipped and outcome.findings == [] and outcome.fixed == text


def test_skip_file_after_the_first_instruction_is_cf900() -> None:
    assert codes(f"FROM python\n# cachefix: skip-file\n{PIP}") == ["CF900", "CF101"]


def test_ignored_findings_after_a_fix_point_into_the_fixed_text() -> None:
    text = f"FROM python\n{PIP}# cachefix: ignore\n{PIP}"
    outcome = fix(text, SETTINGS)
    assert outcome.fixed.startswith("# syntax=")
    assert [f.start.line for f in outcome.ignored] == [4]
    assert [f.start.line for f in outcome.still_ignored] == [5]


def test_ordinary_comments_that_mention_cachefix_are_left_alone() -> None:
    assert codes(f"FROM python\n# we use cachefix for this file\n{PIP}") == ["CF101"]
