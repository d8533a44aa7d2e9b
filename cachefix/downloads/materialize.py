"""Put a blob at DEST atomically: a reflink where the file system can, else a kernel copy.

DEST is written as a temp file beside it and renamed over it, so a reader never sees half
a file and a failure leaves the old DEST as it was. What DEST names is honoured, never
replaced: a symlink is written through, a device or FIFO is written to, `-` is stdout.
A hardlink into the cache is made only on request: the blob is read-only and shared, and
editing DEST must not edit the cache.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from cachefix.downloads.errors import DownloadError, InvalidInput
from cachefix.downloads.store import create_unique

FICLONE = 0x40049409  # _IOW(0x94, 9, int): btrfs, XFS (reflink=1), bcachefs, ZFS 2.2+
_NO_CLONE = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF}


def destination(dest: str | os.PathLike[str], url: str) -> Path | None:
    """The file `-o DEST` names for `url` (None: stdout), worked out before anything downloads.

    `-` is stdout; a folder (existing, or named with a trailing slash) receives the file under
    the URL's name; a symlink is followed (as curl and wget do), a dangling one included.
    """
    text = os.fspath(dest)
    if text == "-":
        return None
    if not text:
        raise InvalidInput("-o needs a file name, a folder or '-'")
    path = Path(text)
    if text.endswith(os.sep) or path.is_dir():
        path = path / url_file_name(url)
    return _through_links(path)


def place(blob: Path, path: Path | None, *, link: bool = False) -> Path | None:
    """Put `blob` at `path` from `destination` (None: stdout); returns the file written.

    A character device or FIFO is written in place and never replaced; a regular file (or
    nothing) is replaced atomically; a socket or block device is refused.
    """
    if path is None:
        _stream(blob, sys.stdout.buffer)
        return None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG
    except OSError as exc:
        raise DownloadError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        if stat.S_ISDIR(mode):
            raise DownloadError(f"cannot write {path}: it is a directory")
        if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
            if link:
                raise DownloadError(f"cannot hardlink {path}: it is a device or FIFO (drop --link)")
            with open(os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC), "wb") as sink:
                _stream(blob, sink)
        elif not stat.S_ISREG(mode):
            raise DownloadError(f"refusing to write {path}: it is a socket or block device")
        else:
            _place(blob, path, link)
    except OSError as exc:
        raise DownloadError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def url_file_name(url: str) -> str:
    """The last segment of the URL's path, decoded: the name `-o FOLDER/` gives the file."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise InvalidInput(f"cannot tell a file name from {url}: give -o FOLDER/NAME")
    return name


def _through_links(path: Path) -> Path:
    """Where writing `path` lands when it is a symlink (a dangling one included)."""
    if not path.is_symlink():
        return path
    real = Path(os.path.realpath(path))
    if real.is_symlink():
        raise DownloadError(f"cannot write {path}: it is a symlink loop")
    return real


def _stream(blob: Path, sink: BinaryIO) -> None:
    with open(blob, "rb") as source:
        shutil.copyfileobj(source, sink, 1 << 20)
    sink.flush()


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
