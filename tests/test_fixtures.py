"""The golden fixtures: fixtures/<rule>/<case>/Dockerfile and what cachefix must make of it.

Each case holds `Dockerfile` and either `expected` (the fixed file, byte for byte) or `error`
(the one-line error for a file BuildKit rejects, which must be left alone). `findings` lists
what `check` reports on the original (`LINE CODE fixable|unfixable`), so a reviewer reads
behaviour here rather than in test code. A case with a `semantic-change` file documents a fix
that rewrites a command on purpose (the HuggingFace safe pattern).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cachefix.engine import Settings, fix, lint
from cachefix.rewriter.dockerfile import DockerfileSyntaxError, parse
from cachefix.rules.registry import all_rules
from tests.oracle import non_cache_changes
from tests.oracle import parse as oracle_parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = sorted(p.parent for p in FIXTURES.glob("*/*/Dockerfile"))
SETTINGS = Settings(rules=[rule() for rule in all_rules()])


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def case_id(case: Path) -> str:
    return f"{case.parent.name}/{case.name}"


@pytest.fixture(params=CASES, ids=case_id)
def case(request) -> Path:
    return request.param


def test_every_case_has_an_expectation(case: Path) -> None:
    assert (case / "expected").exists() or (case / "error").exists(), f"{case_id(case)} has no expected or error"


def test_fix_gives_the_expected_file(case: Path) -> None:
    original = read(case / "Dockerfile")
    if (case / "error").exists():
        with pytest.raises(DockerfileSyntaxError) as raised:
            fix(original, SETTINGS)
        assert str(raised.value) == read(case / "error").strip()
        return
    assert fix(original, SETTINGS).fixed == read(case / "expected")


def test_fix_is_idempotent(case: Path) -> None:
    if not (case / "expected").exists():
        pytest.skip("invalid input")
    expected = read(case / "expected")
    assert fix(expected, SETTINGS).fixed == expected


def test_buildkit_sees_only_cache_changes(case: Path) -> None:
    if not (case / "expected").exists():
        pytest.skip("invalid input")
    before, after = read(case / "Dockerfile"), read(case / "expected")
    oracle_parse(after)  # BuildKit accepts the result
    if (case / "semantic-change").exists():
        pytest.skip((case / "semantic-change").read_text().strip())
    assert non_cache_changes(before, after) == []


def test_findings_are_as_documented(case: Path) -> None:
    if not (case / "findings").exists():
        pytest.skip("no findings file")
    findings = lint(parse(read(case / "Dockerfile")), SETTINGS)
    got = [f"{f.start.line} {f.code} {'fixable' if f.fixable else 'unfixable'}" for f in findings]
    assert got == read(case / "findings").split("\n")[:-1]


def test_the_oracle_notices_a_change_that_is_not_about_caches() -> None:
    before = "FROM python:3.12\nRUN pip install --no-cache-dir flask && rm -rf /var/lib/apt/lists/*\n"
    assert non_cache_changes(before, before.replace("pip", "--mount=type=cache,target=/root/.cache/pip pip", 1)) == []
    assert non_cache_changes(before, before.replace("flask", "django")) != []
    assert non_cache_changes(before, before.replace("RUN", "RUN --network=none")) != []
