"""Put a blob at DEST atomically: a reflink where the file system can, else a kernel copy.

DEST is written as a temp file beside it and renamed over it, so a reader never sees half
a file and a failure leaves the old DEST as it was. A download writes that temp file while
it streams (`Copy`), so a cold `fetch -o` makes no second pass over the file. What DEST names is honoured, never
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
from cachefix.downloads.store import create_unique, write_all

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


class Copy:
    """DEST's temp file, written with a download's bytes as they stream; DEST once verified.

    Opened only for a regular file or a new name in a folder that exists, so that a download
    that fails changes nothing beside DEST but this temp file, which `discard` removes. A write
    that fails (a full disk) stops the copy: `place` then writes DEST after the download and
    reports the error as it would have.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.fd: int | None = None
        self.temp: Path | None = None
        self.failed = False
        self.holds: str | None = None  # the digest of the bytes written, once the download verified them

    @classmethod
    def beside(cls, dest: Path | None) -> Copy | None:
        """A copy for `dest` from `destination`, or None where `place` must write it afterwards."""
        if dest is None or not dest.parent.is_dir():
            return None
        try:
            if not stat.S_ISREG(os.stat(dest).st_mode):
                return None
        except FileNotFoundError:
            pass
        except OSError:
            return None
        return cls(dest)

    def start(self) -> bool:
        """Open the temp file (empty it if a download wrote it already); False if it cannot be written."""
        if self.fd is None and not self.failed:
            try:
                self.fd, self.temp = create_unique(self.dest.parent, f".{self.dest.name}.", ".cachefix")
            except OSError:
                self.failed = True
        else:
            self.reset()
        return not self.failed

    def write(self, batch: list[bytes]) -> None:
        if self.failed or self.fd is None:
            return
        try:
            write_all(self.fd, batch)
        except OSError:
            self.failed = True

    def reset(self) -> None:
        """Start again from byte 0 (the download restarted)."""
        self.holds = None
        if self.failed or self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
        except OSError:
            self.failed = True

    def commit(self, digest: str) -> Path | None:
        """Rename the copy over DEST if it holds the verified bytes of `digest`; None if it does not."""
        if self.failed or self.fd is None or self.holds != digest:
            return None
        os.close(self.fd)
        self.fd = None
        try:
            os.replace(self.temp, self.dest)  # type: ignore[arg-type] - set with fd
        except OSError as exc:
            self.temp.unlink(missing_ok=True)  # type: ignore[union-attr]
            raise DownloadError(f"cannot write {self.dest}: {exc.strerror or exc}") from None
        return self.dest

    def discard(self) -> None:
        """Remove the temp file unless `commit` renamed it."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            if self.temp is not None:
                self.temp.unlink(missing_ok=True)


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
