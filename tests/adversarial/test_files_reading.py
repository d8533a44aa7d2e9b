"""Reading: only regular files, never more than the limit (issue 8.4, 8.5)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cachefix.files import MAX_BYTES, FileTooLarge, NotRegularFile, read_regular_file
from tests.adversarial.files_support import UNCACHED, cachefix
from tests.helpers import write


@pytest.mark.parametrize("where", ["named", "found"])
def test_a_fifo_named_dockerfile_is_an_error_not_a_hang(tmp_path: Path, where: str) -> None:
    write(tmp_path / "svc" / "Dockerfile", UNCACHED)
    os.mkfifo(tmp_path / "Dockerfile")
    result = cachefix("fix", "Dockerfile" if where == "named" else ".", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "Dockerfile: error: a FIFO, not a regular file" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    if where == "found":  # the others are still fixed
        assert "--mount=type=cache" in (tmp_path / "svc" / "Dockerfile").read_text()


@pytest.mark.parametrize("name", [".cachefix.toml", "pyproject.toml"])
def test_a_fifo_configuration_in_a_parent_folder_is_an_error_not_a_hang(tmp_path: Path, name: str) -> None:
    write(tmp_path / "repo" / "Dockerfile", UNCACHED)
    os.mkfifo(tmp_path / name)
    result = cachefix("check", "Dockerfile", cwd=tmp_path / "repo", timeout=60)
    assert result.returncode == 2
    assert name in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_named_on_the_command_line_is_not_read(tmp_path: Path, device: str) -> None:
    result = cachefix("check", device, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert f"{device}: error: a character device, not a regular file" in result.stdout


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_configuration_linked_to_a_device_is_an_error_not_a_memory_error(tmp_path: Path, device: str) -> None:
    write(tmp_path / "Dockerfile", UNCACHED)
    (tmp_path / ".cachefix.toml").symlink_to(device)
    result = cachefix("check", "Dockerfile", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert ".cachefix.toml" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a device node")
def test_a_device_node_inside_the_tree_behind_a_link_is_not_read(tmp_path: Path) -> None:
    os.mknod(tmp_path / "zero", 0o666 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
    (tmp_path / "Dockerfile").symlink_to("zero")
    result = cachefix("check", ".", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "Dockerfile: error: a character device, not a regular file" in result.stdout


def test_at_most_the_limit_is_read_whatever_the_size_says() -> None:
    status = Path("/proc/self/status")
    if not status.exists() or status.stat().st_size != 0:
        pytest.skip("needs a /proc file whose size says 0")
    assert read_regular_file(status, 4096).startswith(b"Name:")
    with pytest.raises(FileTooLarge):
        read_regular_file(status, 10)


def test_reading_a_fifo_raises_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotRegularFile, match="a FIFO"):
        read_regular_file(tmp_path / "fifo", 100)


def test_a_file_larger_than_the_limit_is_one_line(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", UNCACHED + "#" * MAX_BYTES)
    result = cachefix("check", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 2
    assert f"Dockerfile: error: too large for a Dockerfile (the limit is {MAX_BYTES} bytes)" in result.stdout
