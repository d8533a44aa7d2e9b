"""Put a blob at DEST atomically: a reflink where the file system can, else a kernel copy.

DEST is written as a temp file beside it and renamed over it, so a reader never sees half
a file and a failure leaves the old DEST as it was. A hardlink into the cache is made only
on request: the blob is read-only and shared, and editing DEST must not edit the cache.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path

from cachefix.downloads.errors import DownloadError
from cachefix.downloads.store import create_unique

FICLONE = 0x40049409  # _IOW(0x94, 9, int): btrfs, XFS (reflink=1), bcachefs, ZFS 2.2+
_NO_CLONE = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF}


def place(blob: Path, dest: Path, *, link: bool = False) -> None:
    """Make `dest` a copy of `blob` (or a hardlink with `link`), replacing it atomically."""
    dest = Path(dest)
    if dest.is_dir():
        raise DownloadError(f"cannot write {dest}: it is a directory; give a file name")
    try:
        _place(blob, dest, link)
    except OSError as exc:
        raise DownloadError(f"cannot write {dest}: {exc.strerror or exc}") from None


def _place(blob: Path, dest: Path, link: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if link:
        temp = dest.parent / f".{dest.name}.{os.urandom(8).hex()}.cachefix"
        os.link(blob, temp)
    else:
        fd, temp = create_unique(dest.parent, f".{dest.name}.", ".cachefix")
        try:
            with open(blob, "rb") as source:
                clone_or_copy(source.fileno(), fd)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
    try:
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def clone_or_copy(source: int, target: int) -> None:
    """FICLONE (instant, shares blocks), else copy_file_range (in-kernel), else a read/write loop."""
    try:
        fcntl.ioctl(target, FICLONE, source)
        return
    except OSError as exc:
        if exc.errno not in _NO_CLONE:
            raise
    size = os.fstat(source).st_size
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < size:
                step = os.copy_file_range(source, target, size - copied)
                if step == 0:
                    break
                copied += step
        except OSError as exc:
            if exc.errno not in _NO_CLONE:
                raise
    if copied < size:
        os.lseek(source, copied, os.SEEK_SET)
        os.lseek(target, copied, os.SEEK_SET)
        with open(source, "rb", closefd=False) as src, open(target, "wb", closefd=False) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
