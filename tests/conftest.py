"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-examples", type=int, default=None, metavar="N",
                     help="examples per fuzz test (tests/adversarial/test_fuzz_*.py), random instead of derandomized")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty folder, as a user runs cachefix from a project's root."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
