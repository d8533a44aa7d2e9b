"""Hostile and odd archives found beyond issue 8's list: each is a one-line error naming the
member, never "internal error", and never names cachefix's private temp folder."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.downloads import conftest
from tests.downloads.conftest import FaultServer, cachefix

server, cache_dir = conftest.server, conftest.cache_dir  # the download tests' fixtures, shared


def patched_zip(offset: int, value: int) -> bytes:
    """A one-member zip with a 16-bit field of both headers (local at `offset`, central at `offset + 2`) set."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", b"hello")
    data = bytearray(buffer.getvalue())
    struct.pack_into("<H", data, offset, value)
    struct.pack_into("<H", data, data.find(b"PK\x01\x02") + offset + 2, value)
    return bytes(data)


def long_name_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("pkg/" + "x" * 300)  # longer than any file system's NAME_MAX
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
    return buffer.getvalue()


@pytest.mark.parametrize(("archive", "message"), [
    (patched_zip(8, 99), "'a.txt': That compression method is not supported"),
    (patched_zip(6, 1), "'a.txt': it is encrypted"),
    (long_name_tar(), "File name too long"),
])
def test_unpackable_archives_are_one_line_errors(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                                 archive: bytes, message: str) -> None:
    done = cachefix("fetch", server.add("/a", archive), "--extract", "out", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr and "internal error" not in done.stderr and ".cachefix" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["cache"]  # nothing unpacked, no temp folder left
