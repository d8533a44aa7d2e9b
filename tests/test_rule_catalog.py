"""Rules are imported only for files that need them: the catalog the registry reads instead of
importing every rule module is current, and linting with deferred rules finds exactly what
linting with every rule loaded finds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cachefix.engine import Settings, check, fix
from cachefix.rewriter.dockerfile import DockerfileSyntaxError
from cachefix.rules import catalog, registry
from cachefix.rules.registry import DeferredRule, all_entries, all_rules, builtin_modules, builtin_rules, entry_of
from tests.fixture_findings import cases

EAGER = Settings(rules=[rule() for rule in all_rules()])
DEFERRED = Settings(rules=[DeferredRule(entry) for entry in all_entries()])


def test_the_catalog_is_current() -> None:
    rows = sorted((tuple(entry_of(rule)) for rule in builtin_rules(builtin_modules())), key=lambda row: row[0])
    assert list(catalog.BUILTIN_RULES) == rows, "run python scripts/rule_catalog.py"


@pytest.mark.parametrize("case", cases(), ids=lambda case: f"{case.parent.name}/{case.name}")
def test_deferred_rules_find_and_fix_what_every_rule_loaded_does(case: Path) -> None:
    text = (case / "Dockerfile").read_text(encoding="utf-8")
    try:
        eager, deferred = check(text, EAGER), check(text, DEFERRED)
    except DockerfileSyntaxError:
        return  # a case BuildKit rejects: no findings either way
    assert deferred.findings == eager.findings and deferred.ignored == eager.ignored
    assert fix(text, DEFERRED).fixed == fix(text, EAGER).fixed


def test_a_rule_module_missing_from_the_catalog_is_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "BUILTIN_RULES", tuple(row for row in catalog.BUILTIN_RULES if row[2] != "npm"))
    registry.all_entries.cache_clear()
    try:
        (npm,) = [entry for entry in all_entries() if entry.manager == "npm"]
        codes = {f.code for f in check("FROM node:20\nRUN npm ci\n",
                                       Settings([DeferredRule(e) for e in all_entries()])).findings}
    finally:
        registry.all_entries.cache_clear()
    assert npm.code == "CF401" and "CF401" in codes


def test_check_imports_only_the_rules_a_file_mentions(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nRUN pip install flask\n")
    script = ("import sys\nfrom cachefix.cli import main\ncode = main(['check', sys.argv[1]])\n"
              "print(' '.join(sorted(m for m in sys.modules if m.startswith('cachefix.rules.builtin.'))))\n")
    done = subprocess.run([sys.executable, "-c", script, str(dockerfile)], capture_output=True, text=True, check=True)
    assert "CF101" in done.stdout
    modules = set(done.stdout.splitlines()[-1].split())
    assert "cachefix.rules.builtin.pip" in modules
    assert not modules & {"cachefix.rules.builtin.apt", "cachefix.rules.builtin.npm", "cachefix.rules.builtin.go"}
