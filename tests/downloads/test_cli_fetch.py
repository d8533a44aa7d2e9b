"""`cachefix fetch` as users and scripts run it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cachefix.cli import main
from tests.downloads.conftest import FaultServer, cachefix, payload, sha

DATA = payload(200_000)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_the_cached_path_for_command_substitution(server: FaultServer, cache_dir: Path) -> None:
    done = cachefix("fetch", server.add("/f", DATA), "--sha256", sha(DATA))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).read_bytes() == DATA
    assert done.stderr == ""  # nothing but the path on a pipe: no progress bar, no chatter


def test_output_file_and_verbose_status(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    url = server.add("/f.tar", DATA)
    code, out, err = run(capsys, "fetch", url, "-o", str(tmp_path / "f"), "-v")
    assert (code, out) == (0, "") and "⬇ fetched" in err
    code, out, err = run(capsys, "fetch", url, "-o", str(tmp_path / "f"), "-v", "--max-age", "1h")
    assert code == 0 and "✓ hit" in err and (tmp_path / "f").read_bytes() == DATA


@pytest.mark.parametrize(("args", "status", "message"), [
    (["fetch", "notaurl"], 2, "bad URL 'notaurl'"),
    (["fetch", "http://127.0.0.1:9/x", "--sha256", "xyz"], 2, "bad SHA-256 'xyz'"),
    (["fetch"], 2, "give either a URL or --manifest"),
    (["fetch", "http://127.0.0.1:9/x", "--offline"], 1, "not in the cache"),
    (["fetch", "http://127.0.0.1:9/x", "--retries", "1", "--connect-timeout", "2"], 1, "could not download"),
    (["fetch", "http://127.0.0.1:9/x", "--max-age", "soon"], 2, "bad duration 'soon'"),
])
def test_bad_input_gives_one_line_and_a_status(cache_dir: Path, capsys: pytest.CaptureFixture[str],
                                               args: list[str], status: int, message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == status and out == ""
    assert err.startswith("cachefix: error: ") and message in err and err.count("\n") == 1


def test_digest_mismatch_shows_both_digests_and_keeps_dest(server: FaultServer, cache_dir: Path,
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "f"
    dest.write_text("old")
    code, _, err = run(capsys, "fetch", server.add("/f", DATA), "-o", str(dest), "--sha256", "0" * 64)
    assert code == 1 and f"expected {'0' * 64}, got {sha(DATA)}" in err
    assert dest.read_text() == "old"


def test_unwritable_dest_is_a_clear_error(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "fetch", server.add("/f", DATA), "-o", str(blocker / "sub" / "out"))
    assert code == 1 and err == f"cachefix: error: cannot write {blocker / 'sub' / 'out'}: Not a directory\n"


def test_dest_folder_gets_the_url_file_name_unless_that_is_a_folder(server: FaultServer, cache_dir: Path,
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = server.add("/f", DATA)
    code, _, err = run(capsys, "fetch", url, "-o", str(tmp_path))
    assert (code, err) == (0, "") and (tmp_path / "f").read_bytes() == DATA
    (tmp_path / "sub" / "f").mkdir(parents=True)
    code, _, err = run(capsys, "fetch", url, "-o", str(tmp_path / "sub"))
    assert code == 1 and err == f"cachefix: error: cannot write {tmp_path / 'sub' / 'f'}: it is a directory\n"


def test_concurrent_processes_download_once(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    big = payload(2_000_000, seed=3)
    url = server.add("/big", big, chunk_delay=0.02)  # ~0.6 s on the wire: the others arrive meanwhile
    procs = [subprocess.Popen([sys.executable, "-m", "cachefix", "fetch", url, "-o", str(tmp_path / f"out{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, results
    assert server.bodies["/big"] == 1
    assert all((tmp_path / f"out{i}").read_bytes() == big for i in range(8))


def test_kill_9_mid_download_then_rerun_resumes(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    big = payload(3_000_000, seed=4)
    url = server.add("/big", big, chunk_delay=0.01)
    dest = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "cachefix", "fetch", url, "-o", str(dest)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while server.sent["/big"] < 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not dest.exists()
    server.routes["/big"].chunk_delay = 0
    done = cachefix("fetch", url, "-o", str(dest), "--sha256", sha(big))
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == big
    assert server.headers_of("/big")[-1].get("Range", "").startswith("bytes=")  # resumed, not restarted
    assert server.sent["/big"] < 2 * len(big)
    assert list((cache_dir / "tmp").iterdir()) == []


def test_progress_bar_only_when_asked_off_a_terminal(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    quiet = cachefix("fetch", url)
    assert quiet.stderr == ""
    shown = cachefix("fetch", server.add("/g", DATA + b"x"), "--progress", env={"COLUMNS": "100"})
    assert shown.returncode == 0 and shown.stderr  # rich wrote its bar to stderr


def test_progress_is_off_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from cachefix.downloads.progress import wanted

    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert wanted(None) is False and wanted(True) is True


def test_extract_option_unpacks(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/README")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    code, _, err = run(capsys, "fetch", server.add("/a.tgz", buffer.getvalue()), "--extract", str(tmp_path / "x"))
    assert code == 0, err
    assert (tmp_path / "x" / "pkg" / "README").read_text() == "hello"


def test_fetch_does_not_import_httpx_on_a_pinned_hit(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    cachefix("fetch", url)
    code = ("import sys; from cachefix.cli import main; rc = main(['fetch', sys.argv[1], '--sha256', sys.argv[2]]);"
            " bad = [m for m in ('httpx', 'rich', 'filelock') if m in sys.modules]; print(bad, file=sys.stderr);"
            " sys.exit(rc or bool(bad))")
    done = subprocess.run([sys.executable, "-c", code, url, sha(DATA)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("body", "message"), [
    ("hostile", "unsafe archive member '../evil': contains '..'"),
    ("broken", "broken archive"),
    ("big", "expands past 1024 bytes"),
])
def test_bad_archives_are_one_line_errors(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], body: str, message: str) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil" if body == "hostile" else "big")
        info.size = 5000
        tar.addfile(info, io.BytesIO(b"x" * 5000))
    data = buffer.getvalue()[:40] if body == "broken" else buffer.getvalue()
    code, _, err = run(capsys, "fetch", server.add("/a.tgz", data), "--extract", str(tmp_path / "x"),
                       "--max-extract-size", "1K")
    assert code == 1 and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "evil").exists()
