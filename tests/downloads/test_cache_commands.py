"""`cachefix cache dir|stats|clean|clear|verify` and `fetch --manifest`."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from cachefix import cached_download
from cachefix.cli import main
from cachefix.downloads.inventory import _buildx_rows
from cachefix.downloads.store import Store
from tests.downloads.conftest import FaultServer, payload, sha


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> Path:
    """Other tools' caches in known places, and a fake `docker` that answers like BuildKit."""
    home = tmp_path / "home"
    (home / "hf" / "hub" / "models--x").mkdir(parents=True)
    (home / "hf" / "hub" / "models--x" / "blob").write_bytes(b"w" * 10_000)
    (home / "uv").mkdir()
    (home / "uv" / "wheel").write_bytes(b"u" * 5000)
    (home / "pip").mkdir()
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\ncat <<'EOF'\nID                          RECLAIMABLE  SIZE     LAST ACCESSED\n"
                      "abc123*                     true         1.5GB    2 days ago\n"
                      "def456                      true         500MB    1 hour ago\n"
                      "Shared:        0B\nPrivate:       2GB\nReclaimable:   2GB\nTotal:         2GB\nEOF\n")
    docker.chmod(0o755)
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("UV_CACHE_DIR", str(home / "uv"))
    monkeypatch.setenv("PIP_CACHE_DIR", str(home / "pip"))
    monkeypatch.setenv("CACHEFIX_DOCKER", str(docker))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no uv on PATH: found through UV_CACHE_DIR
    return home


def test_cache_dir(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "cache", "dir") == (0, f"{cache_dir}\n", "")


def test_stats_json_covers_every_cache(server: FaultServer, machine: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = payload(50_000)
    url = server.add("/f", data)
    cached_download(url)
    cached_download(url, sha256=sha(data))
    code, out, _ = run(capsys, "cache", "stats", "--json")
    report = json.loads(out)
    caches = {c["name"]: c for c in report["caches"]}
    assert code == 0 and set(caches) == {"downloads", "pip", "uv", "hf", "buildah", "buildkit"}
    assert caches["downloads"]["files"] == 1 and caches["downloads"]["hits"] == 1
    assert caches["downloads"]["bytes_saved"] == len(data)
    assert caches["hf"]["files"] == 1 and caches["uv"]["files"] == 1
    assert caches["buildkit"]["bytes"] == 2_000_000_000 and caches["buildkit"]["files"] == 2
    assert report["total_bytes"] == sum(c.get("bytes", 0) for c in report["caches"])


def test_stats_text_and_missing_docker(machine: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CACHEFIX_DOCKER", str(machine / "no-such-docker"))
    code, out, _ = run(capsys, "cache", "stats")
    assert code == 0
    assert "buildkit" in out and "skipped" in out and out.splitlines()[-1].startswith("total")


def test_docker_system_df_table_is_understood() -> None:
    listing = ("Build cache usage: 1.2GB\n\nCACHE ID   CACHE TYPE        SIZE   CREATED   LAST USED   USAGE   SHARED\n"
               "k1         exec.cachemount   1GB    2 days    1 day       3       false\n"
               "k2         regular           200MB  2 days    1 day       1       false\n")
    assert _buildx_rows(listing, kind="exec.cachemount") == [1_000_000_000]


def _age(cache_dir: Path, url: str, days: float) -> None:
    store = Store(cache_dir)
    store.index.db.execute("UPDATE urls SET last_use = ? WHERE url = ?", (time.time() - days * 86400, url))


def test_clean_evicts_by_last_use_not_download_date(server: FaultServer, cache_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    old, recent = server.add("/old", payload(1000, 1)), server.add("/recent", payload(1000, 2))
    cached_download(old)
    cached_download(recent)
    _age(cache_dir, old, 40)
    _age(cache_dir, recent, 40)
    cached_download(recent, max_age=3600)  # used today: LRU keeps it although downloaded "long ago"
    code, out, _ = run(capsys, "cache", "clean", "--older-than", "30d")
    assert code == 0 and out.startswith("removed 1 entries")
    assert cached_download(recent, offline=True).exists()
    with pytest.raises(Exception, match="not in the cache"):
        cached_download(old, offline=True)


def test_clean_max_size_evicts_least_recently_used_first(server: FaultServer, cache_dir: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    urls = [server.add(f"/f{i}", payload(100_000, i)) for i in range(3)]
    for i, url in enumerate(urls):
        cached_download(url)
        _age(cache_dir, url, 10 - i)
    code, out, _ = run(capsys, "cache", "clean", "--max-size", "150K", "--dry-run")
    assert code == 0 and out.startswith("would remove 2 entries")
    assert len(list(Store(cache_dir).blobs())) == 3
    run(capsys, "cache", "clean", "--max-size", "150K")
    assert [d for d, _ in Store(cache_dir).blobs()] == [sha(payload(100_000, 2))]


def test_clean_needs_a_criterion(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "cache", "clean")
    assert code == 2 and "--older-than" in err


def test_verify_finds_and_repairs_silent_corruption(server: FaultServer, cache_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = payload(10_000)
    path = cached_download(server.add("/f", data), sha256=sha(data))
    before = path.stat()
    os.chmod(path, 0o644)
    path.write_bytes(b"X" * len(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # size and mtime as before: a hit can't tell
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1 and "corrupt" in out
    code, out, _ = run(capsys, "cache", "verify", "--repair")
    assert code == 0 and "1 fetched again" in out
    assert path.read_bytes() == data and stat.S_IMODE(path.stat().st_mode) == 0o444
    assert run(capsys, "cache", "verify")[0] == 0


def test_clear_asks_unless_yes(server: FaultServer, machine: Path, cache_dir: Path,
                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cached_download(server.add("/f", b"abc"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = run(capsys, "cache", "clear")
    assert code == 2 and "--yes" in err and cache_dir.exists()
    code, out, _ = run(capsys, "cache", "clear", "--hf", "--downloads", "--yes")
    assert code == 0 and "cleared hf" in out
    assert not cache_dir.exists() and not (machine / "hf" / "hub").exists()
    assert (machine / "uv" / "wheel").exists()


def test_clear_refuses_a_home_directory(machine: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(Path.home()))
    code, _, err = run(capsys, "cache", "clear", "--uv", "--yes")
    assert code == 2 and "refusing" in err and Path.home().exists()


def test_manifest_fetches_in_parallel_and_summarises(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"/m{i}": payload(20_000, i) for i in range(5)}
    urls = {path: server.add(path, data) for path, data in files.items()}
    cached_download(urls["/m0"])
    manifest = tmp_path / "manifest.txt"
    manifest.write_text(
        "# deps for the build\n"
        f"{urls['/m0']} {sha(files['/m0'])} out/m0\n"
        f"{urls['/m1']}   out/m1   # no digest\n"
        f"{urls['/m2']} - out/m2\n"
        f"{urls['/m3']} {sha(files['/m3'])}\n"
        f"{server.url('/missing')} out/missing\n"
        "\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "fetch", "--manifest", str(manifest), "-j", "3")
    assert code == 1
    assert "5 files: 1 hit, 3 fetched, 1 failed" in err
    assert f"{manifest}:6: could not download" in err
    assert (tmp_path / "out" / "m1").read_bytes() == files["/m1"]


def test_manifest_syntax_error_names_the_line(cache_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "m.txt"
    manifest.write_text("http://127.0.0.1:9/a\nhttp://127.0.0.1:9/b abc dest extra\n")
    code, _, err = run(capsys, "fetch", "--manifest", str(manifest))
    assert code == 2 and f"{manifest}:2:" in err


@pytest.mark.parametrize(("answer", "status", "kept"), [("n", 1, True), ("y", 0, False)])
def test_clear_asks_on_a_terminal(server: FaultServer, cache_dir: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch, answer: str, status: int, kept: bool) -> None:
    cached_download(server.add("/f", b"abc"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    code, out, _ = run(capsys, "cache", "clear", "--downloads")
    assert code == status and "downloads: " in out and cache_dir.exists() is kept


def test_clear_takes_end_of_input_at_the_question_as_no(server: FaultServer, cache_dir: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def end_of_input(prompt: str) -> str:
        raise EOFError

    cached_download(server.add("/f", b"abc"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", end_of_input)
    code, out, err = run(capsys, "cache", "clear", "--downloads")
    assert code == 1 and "nothing deleted" in out and err == "" and cache_dir.exists()
