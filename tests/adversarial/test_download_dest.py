"""Issue 8.2: `fetch -o DEST` honours what DEST is: `-` is stdout, a folder receives the file,
a symlink is written through, a device or FIFO is written to and never replaced."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from tests.downloads import conftest
from tests.downloads.conftest import FaultServer, cachefix, payload

server, cache_dir = conftest.server, conftest.cache_dir  # the download tests' fixtures, shared

DATA = payload(100_000)


def test_dash_streams_to_stdout(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    done = cachefix("fetch", server.add("/tool.tgz", DATA), "-o", "-", cwd=tmp_path, text=False)
    assert done.returncode == 0 and done.stdout == DATA
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("existing", [False, True])
def test_a_folder_receives_the_file_under_the_url_name(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                                       existing: bool) -> None:
    if existing:
        (tmp_path / "newdir").mkdir()
    done = cachefix("fetch", server.add("/dl/tool%20v1.tgz", DATA), "-o", "newdir/", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "newdir").is_dir() and (tmp_path / "newdir" / "tool v1.tgz").read_bytes() == DATA


def test_a_folder_needs_a_file_name_in_the_url(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    done = cachefix("fetch", server.add("/", DATA), "-o", "out/", cwd=tmp_path)
    assert done.returncode == 2 and "give -o FOLDER/NAME" in done.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_is_written_through(server: FaultServer, cache_dir: Path, tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "real" / "tool.bin"
    target.parent.mkdir()
    if not dangling:
        target.write_bytes(b"old")
    (tmp_path / "link").symlink_to(target)
    done = cachefix("fetch", server.add("/f", DATA), "-o", str(tmp_path / "link"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "link").is_symlink() and target.read_bytes() == DATA


def test_a_fifo_is_written_to_not_replaced(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    done = cachefix("fetch", server.add("/f", DATA), "-o", str(fifo))
    reader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and received == [DATA]


def test_a_character_device_is_written_to_not_replaced(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    done = cachefix("fetch", server.add("/f", DATA), "-o", str(null))
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.lstat(null).st_rdev == os.makedev(1, 3)


def test_a_socket_is_refused_and_kept(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        done = cachefix("fetch", server.add("/f", DATA), "-o", str(path))
    assert done.returncode == 1 and "socket" in done.stderr and done.stderr.count("\n") == 1
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_an_empty_name_is_a_usage_error(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    done = cachefix("fetch", server.add("/f", DATA), "-o", "", cwd=tmp_path)
    assert done.returncode == 2 and "-o needs" in done.stderr and os.listdir(tmp_path) == []  # refused before any I/O


@pytest.mark.parametrize("path", ["/dl/..%2F..%2Fescape", "/dl/..", "/dl/a%00b"])
def test_a_url_file_name_cannot_leave_the_folder(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                                 path: str) -> None:
    (tmp_path / "out").mkdir()
    done = cachefix("fetch", server.add(path, DATA), "-o", "out/", cwd=tmp_path)
    assert done.returncode == 2 and "give -o FOLDER/NAME" in done.stderr
    assert os.listdir(tmp_path) == ["out"] and os.listdir(tmp_path / "out") == []  # refused before any download
