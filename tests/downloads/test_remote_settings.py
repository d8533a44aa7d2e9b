"""Which remote a fetch uses: --no-remote, --remote, CACHEFIX_REMOTE, then `remote` in the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachefix.downloads.errors import InvalidInput
from cachefix.downloads.remote import chosen
from tests.downloads.conftest import cachefix


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout whose pyproject.toml names a remote; the current folder is a subfolder of it."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.cachefix]\nremote = "s3://team/dl"\n')
    (root / "src").mkdir()
    monkeypatch.chdir(root / "src")
    monkeypatch.delenv("CACHEFIX_REMOTE", raising=False)
    return root


def test_the_configuration_names_the_remote_unless_the_environment_or_a_flag_does(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert chosen() == "s3://team/dl"
    assert chosen("https://cache.example/dl") == "https://cache.example/dl"
    assert chosen(disabled=True) is None
    monkeypatch.setenv("CACHEFIX_REMOTE", "s3://other/x")
    assert chosen() == "s3://other/x"
    monkeypatch.setenv("CACHEFIX_REMOTE", "")
    assert chosen() is None  # set but empty: no remote, whatever the configuration says


def test_the_search_stops_at_the_repository_root(project: Path, tmp_path: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / ".cachefix.toml").write_text('remote = "s3://outside/x"\n')
    assert chosen() is None


def test_a_remote_that_is_not_a_string_is_a_usage_error(project: Path) -> None:
    (project / ".cachefix.toml").write_text("remote = 3\n")
    with pytest.raises(InvalidInput, match="remote"):
        chosen()


def test_lint_accepts_the_remote_key(project: Path) -> None:
    (project / "Dockerfile").write_text("FROM python:3.12\nRUN echo hi\n")
    result = cachefix("check", str(project / "Dockerfile"))
    assert result.returncode == 0, result.stderr
