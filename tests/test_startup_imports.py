"""`cachefix check` on one file (what a pre-commit hook runs on every commit) imports only what
that file needs: its start-up is most of its time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NEW_MODULES = ("import sys; before = set(sys.modules); from cachefix.cli import main; main(sys.argv[1:]); "
               "print(' '.join(sorted(set(sys.modules) - before)))")


def _imported_by_code(code: str) -> set[str]:
    """The modules `code` imports beyond what the interpreter had at start."""
    done = subprocess.run([sys.executable, "-c", f"import sys; before = set(sys.modules); {code}; "
                           "print(' '.join(sorted(set(sys.modules) - before)))"],
                          capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def imported_by(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a cachefix command line imports, beyond what the interpreter had at start (by
    default with the result cache off: what linting imports)."""
    done = subprocess.run([sys.executable, "-c", NEW_MODULES, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {"CACHEFIX_NO_CACHE": "1"})})
    assert done.returncode in (0, 1), done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_a_file_without_installs_needs_no_shell_parser_and_no_rule_module(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM alpine:3.20\nRUN echo hello > /greeting\n")
    modules = imported_by("check", str(dockerfile))
    assert "cachefix.engine" in modules  # it was linted
    assert not modules & {"tree_sitter", "tree_sitter_bash", "importlib.resources"}
    assert [m for m in modules if m.startswith("cachefix.rules.builtin.")] == ["cachefix.rules.builtin.syntax"]


def test_check_builds_no_other_command_and_imports_no_help_machinery(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nRUN pip install flask\n")
    modules = imported_by("check", str(dockerfile))
    assert "cachefix.rules.builtin.pip" in modules and "tree_sitter" in modules
    assert not modules & {"cachefix.downloads.commands", "cachefix.mounts.commands", "difflib"}
    # argparse's formatter would import shutil, for a terminal width never used; tree-sitter-bash
    # may import it itself (importlib.resources, in an interpreter whose site did not already).
    parser_needs = _imported_by_code("import tree_sitter, tree_sitter_bash")
    assert "shutil" not in modules - parser_needs


def test_a_cache_hit_imports_neither_parser_nor_rules_nor_openssl(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nRUN pip install flask\n")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "CACHEFIX_NO_CACHE": ""}
    assert "cachefix.rewriter.dockerfile" in imported_by("check", str(dockerfile), env=env)
    modules = imported_by("check", str(dockerfile), env=env)
    assert "cachefix.result_cache" in modules
    assert not modules & {"cachefix.rewriter.dockerfile", "cachefix.rules.rule", "cachefix.engine", "tree_sitter",
                          "_hashlib", "json"}
    # The plain `check PATH` is read without argparse, and nothing on the way makes a dataclass
    # (dataclasses imports inspect: together a fifth of such a run).
    assert not modules & {"argparse", "gettext", "dataclasses", "inspect"}
