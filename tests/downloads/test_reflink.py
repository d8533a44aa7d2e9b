"""A hit with `-o` on a file system that shares blocks (XFS with reflink=1) clones the blob.

The clone takes no space and no time in the file's size, yet DEST is a file of its own: writing
to it leaves the cache intact (a hard link would not). The XFS image is a sparse file mounted on
a loop device, so the test needs root, mkfs.xfs (xfsprogs) and loop devices; it skips without.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.downloads.conftest import FaultServer, cachefix, payload, sha

DATA = payload(32 << 20)


@pytest.fixture
def xfs(tmp_path: Path) -> Iterator[Path]:
    """A fresh XFS file system with reflink=1, mounted for the test."""
    if os.geteuid() != 0 or shutil.which("mkfs.xfs") is None:
        pytest.skip("needs root and mkfs.xfs (xfsprogs) to make an XFS image")
    image, mount = tmp_path / "xfs.img", tmp_path / "xfs"
    mount.mkdir()
    with open(image, "wb") as sparse:
        sparse.truncate(320 << 20)  # the smallest XFS that mkfs.xfs makes is 300 MB
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], capture_output=True, text=True)
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip(f"cannot make and mount an XFS image here: {made.stderr.strip() or 'mount failed'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def test_hit_with_output_clones_the_blob_into_an_independent_file(server: FaultServer, xfs: Path) -> None:
    env = {"CACHEFIX_CACHE_DIR": str(xfs / "cache")}  # the CLI in a child: nothing here keeps the mount busy
    url = server.add("/model.bin", DATA)
    fetched = cachefix("fetch", url, "--sha256", sha(DATA), env=env)
    assert fetched.returncode == 0, fetched.stderr
    blob = Path(fetched.stdout.strip())
    free = free_bytes(xfs)
    dest = xfs / "out" / "model.bin"
    assert cachefix("fetch", url, "--sha256", sha(DATA), "-o", str(dest), env=env).returncode == 0
    assert dest.read_bytes() == DATA
    assert free - free_bytes(xfs) < len(DATA) // 4  # shared blocks, not a second 32 MiB
    assert dest.stat().st_ino != blob.stat().st_ino and dest.stat().st_nlink == 1
    with open(dest, "r+b") as edit:  # the user's copy is theirs to change...
        edit.write(b"edited")
    assert blob.read_bytes() == DATA  # ...and the cache does not see it
    assert cachefix("fetch", url, "--sha256", sha(DATA), "--offline", env=env).stdout.strip() == str(blob)
