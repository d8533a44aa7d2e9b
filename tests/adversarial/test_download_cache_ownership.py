"""Issue 8.1: `cache clear`, `clean` and `verify --repair` delete only what cachefix made,
and no command adopts (or litters) a folder that holds someone else's files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.downloads import conftest
from tests.downloads.conftest import FaultServer, cachefix, payload, sha

server, cache_dir = conftest.server, conftest.cache_dir  # the download tests' fixtures, shared

DATA = payload(20_000)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A source folder that CACHEFIX_CACHE_DIR names by mistake."""
    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    monkeypatch.setenv("CACHEFIX_CACHE_DIR", str(root))
    return root


def test_stats_then_clear_leave_a_project_folder_alone(project: Path) -> None:
    stats = cachefix("cache", "stats", "--downloads")
    assert stats.returncode == 2 and "src" in stats.stderr and "did not make" in stats.stderr
    assert sorted(os.listdir(project)) == ["src"]  # no CACHEDIR.TAG, no index, no sha256/
    clear = cachefix("cache", "clear", "--yes")
    assert clear.returncode == 2 and "refusing to clear" in clear.stderr and "src" in clear.stderr
    assert clear.stderr.count("\n") == 1 and "cleared" not in clear.stdout
    assert (project / "src" / "main.c").read_text().startswith("int main")


def test_fetch_refuses_to_adopt_a_project_folder(project: Path, server: FaultServer) -> None:
    done = cachefix("fetch", server.add("/f", DATA))
    assert done.returncode == 2 and "refusing to use as a cache" in done.stderr
    assert sorted(os.listdir(project)) == ["src"]


def test_cache_dir_dot_never_empties_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    done = cachefix("cache", "clear", "--yes", env={"CACHEFIX_CACHE_DIR": "."}, cwd=tmp_path)
    assert done.returncode == 2 and "notes.txt" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_file_dropped_into_the_cache_stops_clear_clean_and_repair(server: FaultServer, cache_dir: Path) -> None:
    assert cachefix("fetch", server.add("/f", DATA), "--sha256", sha(DATA)).returncode == 0
    blob = cache_dir / "sha256" / sha(DATA)[:2] / sha(DATA)
    (cache_dir / "tmp" / "my-notes.txt").write_text("mine")
    for args in (["cache", "clear", "--yes"], ["cache", "clean", "--max-size", "0"]):
        done = cachefix(*args)
        assert done.returncode == 2 and "tmp/my-notes.txt" in done.stderr, (args, done.stderr)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"x" * len(DATA))  # corrupt: --repair would delete it
    done = cachefix("cache", "verify", "--repair")
    assert done.returncode == 2 and "tmp/my-notes.txt" in done.stderr
    assert (cache_dir / "tmp" / "my-notes.txt").read_text() == "mine" and blob.exists()


def test_a_foreign_file_deep_in_the_blob_folders_is_named(server: FaultServer, cache_dir: Path) -> None:
    assert cachefix("fetch", server.add("/f", DATA)).returncode == 0
    stray = cache_dir / "sha256" / sha(DATA)[:2] / "thesis.pdf"
    stray.write_text("mine")
    done = cachefix("cache", "clear", "--yes")
    assert done.returncode == 2 and f"sha256/{sha(DATA)[:2]}/thesis.pdf" in done.stderr
    assert stray.read_text() == "mine"


def test_clear_removes_a_folder_only_when_cachefix_created_it(server: FaultServer, tmp_path: Path) -> None:
    made, existing = tmp_path / "made", tmp_path / "existing"
    existing.mkdir()
    for root in (made, existing):
        env = {"CACHEFIX_CACHE_DIR": str(root)}
        assert cachefix("fetch", server.add("/f", DATA), env=env).returncode == 0
        done = cachefix("cache", "clear", "--yes", env=env)
        assert done.returncode == 0 and "cleared downloads" in done.stdout, done.stderr
    assert not made.exists()
    assert existing.is_dir() and os.listdir(existing) == []


def test_a_cache_variable_naming_a_file_is_a_usage_error(server: FaultServer, tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("mine")
    env = {"CACHEFIX_CACHE_DIR": str(tmp_path / "notes")}
    for args in (["fetch", server.add("/f", DATA)], ["cache", "clear", "--yes"]):
        done = cachefix(*args, env=env)
        assert done.returncode == 2 and "not a folder" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert (tmp_path / "notes").read_text() == "mine"
