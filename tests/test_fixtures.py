"""The golden fixtures: fixtures/<rule>/<case>/Dockerfile and what cachefix must make of it.

Each case holds `Dockerfile` and either `expected` (the fixed file, byte for byte) or `error`
(the one-line error for a file BuildKit rejects, which must be left alone). Every case with an
`expected` file has a `findings` file: what `check` reports on the original, one finding a line
(`LINE CODE fixable|unfixable MESSAGE`, format in tests/fixture_findings.py), so a reviewer reads
behaviour here rather than in test code. After changing what a rule reports, rewrite them all and
review the diff:

    python -m tests.fixture_findings --update

A case with a `semantic-change` file documents a fix that rewrites a command on purpose (the
HuggingFace safe pattern). What a fix may change is judged by tests/oracle.py, with what each
manager allows in fixtures/<manager>/oracle.toml.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cachefix.engine import fix
from cachefix.model import Finding, Position
from cachefix.rewriter.dockerfile import DockerfileSyntaxError
from tests.fixture_findings import SETTINGS, UPDATE_COMMAND, cases, expected_text, render
from tests.oracle import allowances, non_cache_changes, read_allowances
from tests.oracle import parse as oracle_parse

CASES = cases()


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
    want = expected_text(case)
    if want is None:
        assert not (case / "findings").exists(), f"{case_id(case)}: a case BuildKit rejects has no findings"
        return
    assert (case / "findings").exists(), f"{case_id(case)} has no findings file: run {UPDATE_COMMAND}"
    assert read(case / "findings").splitlines() == want.splitlines(), f"out of date? review, then {UPDATE_COMMAND}"


def test_a_findings_line_keeps_a_multi_line_message_on_one_line() -> None:
    finding = Finding("CF101", "pip", "first\nsecond", Position(3, 1), Position(3, 9))
    assert render([finding]) == "3 CF101 unfixable first\\nsecond\n"


def test_the_oracle_notices_a_change_that_is_not_about_caches() -> None:
    before = "FROM python:3.12\nRUN pip install --no-cache-dir flask && rm -rf /var/lib/apt/lists/*\n"
    assert non_cache_changes(before, before.replace("pip", "--mount=type=cache,target=/root/.cache/pip pip", 1)) == []
    assert non_cache_changes(before, before.replace("flask", "django")) != []
    assert non_cache_changes(before, before.replace("RUN", "RUN --network=none")) != []


def test_the_oracle_lets_a_fix_unset_a_cache_switch_for_one_command() -> None:
    before = "FROM python:3.12\nENV PIP_NO_CACHE_DIR=1 UV_NO_CACHE=1\nRUN pip install flask\n"
    mounted = "RUN --mount=type=cache,target=/root/.cache/pip,mode=0777 env -u PIP_NO_CACHE_DIR pip install flask"
    assert non_cache_changes(before, before.replace("RUN pip install flask", mounted)) == []
    exec_form = 'RUN ["env", "-u", "PIP_NO_CACHE_DIR", "-u", "UV_NO_CACHE", "pip", "install", "flask"]'
    assert non_cache_changes(before.replace("RUN pip install flask", 'RUN ["pip", "install", "flask"]'),
                             before.replace("RUN pip install flask", exec_form)) == []
    assert non_cache_changes(before, before.replace("RUN pip", "RUN env -u PIP_NO_CACHE_DIR -u HOME pip")) != []
    assert non_cache_changes(before, before.replace("RUN pip", "RUN env -u PATH pip")) != []


def test_the_oracle_reads_every_managers_oracle_toml() -> None:
    """A new manager needs only fixtures/<manager>/oracle.toml, no edit of tests/oracle.py."""
    found = sorted(Path(__file__).resolve().parent.parent.glob("fixtures/*/oracle.toml"))
    assert found and list(allowances().files) == found


def test_a_new_oracle_toml_adds_its_allowances(tmp_path: Path) -> None:
    bun = tmp_path / "oracle.toml"
    bun.write_text("plumbing = ['bun pm cache rm']\nwords = ['BUN_INSTALL_CACHE_DIR=\\S*']\n"
                   "paths = ['\\S*/\\.bun/install/cache']\nunset = ['BUN_NO_CACHE']\n")
    combined = read_allowances([*allowances().files, bun])
    assert combined.words.fullmatch("BUN_INSTALL_CACHE_DIR=/cache") and combined.words.fullmatch("--no-cache-dir")
    assert combined.paths.fullmatch("/root/.bun/install/cache/x") and combined.paths.fullmatch("/var/lib/apt/lists")
    assert any(p.fullmatch("bun pm cache rm") for p in combined.plumbing) and "BUN_NO_CACHE" in combined.unset
    bun.write_text("word = ['typo']\n")
    with pytest.raises(ValueError, match="unknown keys"):
        read_allowances([bun])
