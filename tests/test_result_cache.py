"""The result cache: a file checked again unchanged, with the same settings, is answered from the
cache without being linted; anything its outcome depends on (the text, the configuration, a
sibling base image's Dockerfile, cachefix's own code) makes it linted again; a file that failed
is never cached; concurrent runs never see half an entry."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cachefix import result_cache
from cachefix.model import Edit, Finding, Position, Severity
from cachefix.result_cache import Cached, ResultCache, default_root
from tests.helpers import write

# Runs cachefix in-process and says, after the report, whether the engine was imported: it is
# imported only for a file that is linted, so "LINTED False" is a cache hit.
RUN = ("import sys; from cachefix.cli import main; code = main(sys.argv[1:]); "
       "print('LINTED', 'cachefix.engine' in sys.modules); sys.exit(code)")
PIP = "FROM python:3.12\nRUN pip install flask\n"


def cachefix(*args: str, cache: Path, cwd: Path | None = None, **env: str) -> tuple[int, str, bool]:
    """Exit status, report and whether any file was linted."""
    done = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "XDG_CACHE_HOME": str(cache), "CACHEFIX_NO_CACHE": "", **env})
    report, _, linted = done.stdout.rpartition("LINTED ")
    return done.returncode, report + done.stderr, linted.strip() == "True"


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "cachefix-lint").glob("*/*.py-literal"))


def test_an_unchanged_file_is_answered_from_the_cache_with_the_same_report(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    first = cachefix("check", str(dockerfile), cache=tmp_path / "cache")
    second = cachefix("check", str(dockerfile), cache=tmp_path / "cache")
    assert first[2] and not second[2]
    assert first[:2] == second[:2] and first[0] == 1 and "CF101" in first[1]
    for fmt in ("json", "sarif"):  # every format renders the cached findings as it renders fresh ones
        fresh = cachefix("check", "--no-cache", "--format", fmt, str(dockerfile), cache=tmp_path / "cache")
        assert cachefix("check", "--format", fmt, str(dockerfile), cache=tmp_path / "cache")[:2] == fresh[:2]


def test_a_changed_text_or_configuration_is_linted_again(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    cache = tmp_path / "cache"
    cachefix("check", str(dockerfile), cache=cache)
    write(dockerfile, PIP + "RUN apt-get update && apt-get install -y curl\n")
    _, report, linted = cachefix("check", str(dockerfile), cache=cache)
    assert linted and "CF201" in report
    write(tmp_path / ".cachefix.toml", 'ignore = ["CF201"]\n')
    _, report, linted = cachefix("check", str(dockerfile), cache=cache)
    assert linted and "CF201" not in report and "CF101" in report
    assert not cachefix("check", str(dockerfile), cache=cache)[2]
    (tmp_path / ".cachefix.toml").unlink()
    _, report, linted = cachefix("check", "--select", "CF201", str(dockerfile), cache=cache)
    assert linted and "CF101" not in report and "CF201" in report


def test_a_change_in_a_sibling_base_image_is_seen(tmp_path: Path) -> None:
    """The base image's Dockerfile, read from the tree, decides where pip's cache is."""
    cache = tmp_path / "cache"
    app = write(tmp_path / "images" / "app" / "Dockerfile", "FROM example/base\nRUN pip install flask\n")
    assert "/root/.cache/pip" in cachefix("check", str(app), cache=cache)[1]  # no base in the tree yet
    base = write(tmp_path / "images" / "base" / "Dockerfile", "FROM debian\nENV PIP_CACHE_DIR=/opt/pip-cache\n")
    _, report, linted = cachefix("check", str(app), cache=cache)
    assert linted and "/opt/pip-cache" in report
    assert not cachefix("check", str(app), cache=cache)[2]
    write(base, "FROM debian\nENV PIP_CACHE_DIR=/srv/pip\n")
    _, report, linted = cachefix("check", str(app), cache=cache)
    assert linted and "/srv/pip" in report


def test_no_cache_flag_and_environment_turn_it_off(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    cache = tmp_path / "cache"
    assert cachefix("check", "--no-cache", str(dockerfile), cache=cache)[2]
    assert cachefix("check", str(dockerfile), cache=cache, CACHEFIX_NO_CACHE="1")[2]
    assert entries(cache) == []
    cachefix("check", str(dockerfile), cache=cache)
    assert cachefix("check", "--no-cache", str(dockerfile), cache=cache)[2]
    assert cachefix("check", str(dockerfile), cache=cache, CACHEFIX_NO_CACHE="true")[2]


def test_a_file_that_failed_is_never_cached(tmp_path: Path) -> None:
    broken = write(tmp_path / "Dockerfile", "FROM python:3.12\nFOO bar\n")
    for _ in range(2):
        status, _, linted = cachefix("check", str(broken), cache=tmp_path / "cache")
        assert status == 2 and linted
    assert entries(tmp_path / "cache") == []


def test_a_fix_caches_what_it_wrote_and_leaves_fixable_files_to_the_engine(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    cache = tmp_path / "cache"
    assert cachefix("check", str(dockerfile), cache=cache)[2]
    assert cachefix("fix", "--syntax", "none", str(dockerfile), cache=cache)[2]  # fixable: the cache cannot fix it
    assert "--mount=type=cache" in dockerfile.read_text()
    again = cachefix("check", "--syntax", "none", str(dockerfile), cache=cache)
    fresh = cachefix("check", "--syntax", "none", "--no-cache", str(dockerfile), cache=cache)
    assert not again[2] and again[:2] == fresh[:2]
    assert not cachefix("fix", "--syntax", "none", str(dockerfile), cache=cache)[2]  # nothing left to fix


def test_a_damaged_entry_is_a_miss_and_is_written_again(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    cache = tmp_path / "cache"
    expected = cachefix("check", str(dockerfile), cache=cache)[:2]
    (entry,) = entries(cache)
    for damage in (entry.read_text()[:40], "[]", "__import__('os').system('false')",
                   repr({**ast.literal_eval(entry.read_text()), "key": "0" * 64})):
        entry.write_text(damage)
        status, report, linted = cachefix("check", str(dockerfile), cache=cache)
        assert linted and (status, report) == expected
    assert not cachefix("check", str(dockerfile), cache=cache)[2]


def test_concurrent_runs_agree(tmp_path: Path) -> None:
    files = [write(tmp_path / f"d{i}" / "Dockerfile", PIP + f"RUN npm install left-pad@1.{i}.0\n") for i in range(6)]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "CACHEFIX_NO_CACHE": ""}
    runs = [subprocess.Popen([sys.executable, "-m", "cachefix", "check", "--format", "json", *map(str, files)],
                             stdout=subprocess.PIPE, text=True, env=env) for _ in range(6)]
    reports = {run.communicate(timeout=120)[0] for run in runs}
    assert len(reports) == 1
    after = subprocess.run([sys.executable, "-m", "cachefix", "check", "--format", "json", *map(str, files)],
                           capture_output=True, text=True, env=env).stdout
    assert reports == {after} and len(entries(tmp_path / "cache")) == 6
    assert not list((tmp_path / "cache" / "cachefix-lint").glob("*/.*.tmp"))


def test_another_version_of_cachefix_uses_other_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    finding = Finding("CF101", "pip", "message", Position(2, 5), Position(2, 9), Severity.WARNING,
                      (Edit(1, 2, "x"),), ((Position(1, 1), Position(1, 2)),), ("--mount=type=cache,target=/c",), "t")
    cache = ResultCache(tmp_path)
    key = cache.key(tmp_path / "Dockerfile", PIP, "settings")
    cache.put(key, Cached([finding], [], False), {tmp_path / "base" / "Dockerfile": None})
    assert cache.get(key, lambda path: None) == Cached([finding], [], False)
    assert cache.get(key, lambda path: "FROM debian\n") is None  # the sibling appeared
    assert cache.key(tmp_path / "Dockerfile", PIP, "other settings") != key
    monkeypatch.setattr(result_cache, "__version__", "999.0")
    assert ResultCache(tmp_path).key(tmp_path / "Dockerfile", PIP, "settings") != key


@pytest.mark.parametrize("xdg", ["", "/srv/cache", "relative/cache"])
def test_the_folder_is_the_one_platformdirs_names(xdg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from platformdirs import user_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert default_root() == Path(user_cache_dir("cachefix-lint", appauthor=False))
