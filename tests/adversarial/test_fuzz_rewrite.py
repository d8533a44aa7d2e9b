"""The rewrite fuzzer: Dockerfiles written from the grammar (tests/adversarial/strategies.py),
checked against BuildKit's own parser (the `dockerfile` package) as an oracle.

Properties: no traceback, ever; a file BuildKit rejects is reported and left alone; a file it
accepts is fixed into one it still accepts, with the same instructions apart from cache mounts
and cache plumbing; a second fix changes nothing.

CI runs a small derandomized budget (the same examples every run); explore with

    python -m pytest tests/adversarial/test_fuzz_rewrite.py --fuzz-examples 20000
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dockerfile
import pytest
from hypothesis import HealthCheck, given, settings

from cachefix.engine import Settings, check, fix
from cachefix.rewriter.dockerfile import DockerfileSyntaxError
from cachefix.rules.registry import all_rules
from tests.adversarial.files_support import cachefix
from tests.adversarial.strategies import dockerfiles
from tests.oracle import non_cache_changes
from tests.oracle import parse as oracle_parse

SETTINGS = Settings(rules=[rule() for rule in all_rules()])
# Rules whose fixes rewrite a command on purpose (a download through a cache, then a copy): their
# fixtures document each rewrite with a `semantic-change` file. The oracle judges the others.
REWRITING = frozenset({"CF301", "CF302", "CF701"})
CACHE_ONLY = Settings(rules=[rule() for rule in all_rules() if rule.code not in REWRITING])


@pytest.fixture
def fuzz(request: pytest.FixtureRequest) -> Callable[[int], settings]:
    """Hypothesis settings: `ci` examples derandomized, or --fuzz-examples N random ones; no database."""
    asked = request.config.getoption("--fuzz-examples")

    def make(ci: int) -> settings:
        return settings(max_examples=asked or ci, derandomize=asked is None, database=None, deadline=None,
                        suppress_health_check=list(HealthCheck))
    return make


def spaced(text: str) -> str:
    """The oracle's lexer (shlex) reads `);` as one word: a fix that leaves `( a ); b` where
    `( a ) && rm x; b` was reads as a changed command. Spacing every `)` apart avoids that."""
    return text.replace(")", " ) ")


def buildkit_accepts(text: str) -> bool:
    try:
        oracle_parse(text)
    except (dockerfile.GoParseError, ValueError):
        return False
    return True


def test_fixes_keep_what_buildkit_sees_and_are_idempotent(fuzz: Callable[[int], settings]) -> None:
    @fuzz(300)
    @given(dockerfiles())
    def holds(text: str) -> None:
        accepted = buildkit_accepts(text)
        try:
            outcome = fix(text, SETTINGS)
            check(text, SETTINGS)
        except DockerfileSyntaxError:
            assert not accepted, "cachefix refused a file BuildKit accepts"
            return
        assert accepted, "BuildKit rejects the file but cachefix took it"
        fixed = outcome.fixed
        if fixed != text:
            assert buildkit_accepts(fixed), f"BuildKit rejects the fixed file:\n{fixed}"
            only_cache = fix(text, CACHE_ONLY).fixed
            assert non_cache_changes(spaced(text), spaced(only_cache)) == []
        assert fix(fixed, SETTINGS).fixed == fixed, "a second fix changed the file"

    holds()


def test_the_command_line_never_shows_a_traceback(fuzz: Callable[[int], settings], tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"

    @fuzz(10)
    @given(dockerfiles())
    def holds(text: str) -> None:
        path.write_bytes(text.encode())
        result = cachefix("fix", "Dockerfile", cwd=tmp_path)
        assert "Traceback" not in result.stdout + result.stderr
        assert result.returncode in (0, 1, 2), result.stdout + result.stderr
        if result.returncode == 2:
            assert path.read_bytes() == text.encode(), "a file with an error was changed"

    holds()
