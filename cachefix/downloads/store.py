"""Content-addressed blobs on disk, `sha256/ab/abcd...`, published by rename.

A blob's name is the SHA-256 of its bytes, computed while the bytes streamed in, so any
number of writers can publish the same blob at once: each writes its own temp file and the
last rename wins with identical content. Correctness never rests on a lock. Blobs are
read-only (0444) so that a stray write through a returned path fails loudly.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path

from cachefix.downloads.index import Index, is_read_only
from cachefix.downloads.layout import MARKER, foreign_top, refuse_foreign

BLOB_MODE = 0o444
HASH_CHUNK = 1 << 20
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by cachefix.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


def default_root() -> Path:
    """`CACHEFIX_CACHE_DIR`, else the platform's user cache dir (`~/.cache/cachefix` on Linux)."""
    if env := os.environ.get("CACHEFIX_CACHE_DIR"):
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cachefix", appauthor=False))


def is_digest(text: str) -> bool:
    """True for 64 lowercase hex digits: the only names the store accepts."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def hash_fd(fd: int) -> hashlib._Hash:
    """SHA-256 of an open file from its current offset to the end, in 1 MiB reads."""
    hasher = hashlib.sha256()
    while chunk := os.read(fd, HASH_CHUNK):
        hasher.update(chunk)
    return hasher


def write_all(fd: int, buffers: list[bytes]) -> None:
    """Write `buffers` in order with as few `writev` calls as the kernel allows (fewer than 1024)."""
    views = [memoryview(b) for b in buffers if b]
    while views:
        done = os.writev(fd, views)
        while views and done >= len(views[0]):
            done -= len(views.pop(0))
        if done:
            views[0] = views[0][done:]


WRITEBACK_STEP = 32 << 20


class Writeback:
    """Starts writing a growing file to disk every 32 MiB, without waiting for it.

    `publish` fsyncs a blob before renaming it; after a 1 GiB download that fsync waited about
    0.3 s for the whole file to reach the disk. `sync_file_range(SYNC_FILE_RANGE_WRITE)` starts
    that writing while the download goes on, so the fsync waits for the last few MiB. Linux
    only (through libc); elsewhere it does nothing. It gives no durability by itself.
    """

    def __init__(self, fd: int, start: int = 0) -> None:
        self.fd, self.start = fd, start

    def written(self, end: int) -> None:
        """The file now holds `end` bytes."""
        if end < self.start:  # truncated
            self.start = 0
        elif end - self.start >= WRITEBACK_STEP and (start_writeback := _sync_file_range()) is not None:
            start_writeback(self.fd, self.start, end - self.start, _SYNC_FILE_RANGE_WRITE)
            self.start = end


_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def hash_file(path: Path) -> str:
    """SHA-256 of a whole file, read once."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return hash_fd(fd).hexdigest()
    finally:
        os.close(fd)


def create_unique(directory: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """Create and open a new file that no other process can be writing (O_EXCL, random name).

    Unlike `mkstemp`, the file gets the caller's umask (0666 &~ umask), as `cp` would give it.
    """
    while True:
        path = directory / f"{prefix}{os.urandom(8).hex()}{suffix}"
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), path
        except FileExistsError:
            continue


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """One cache root: blobs under `sha256/`, temp files under `tmp/`, the index beside them."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.blob_dir = self.root / "sha256"
        self.tmp_dir = self.root / "tmp"
        self.lock_dir = self.root / "locks"
        self._ready = False

    @cached_property
    def index(self) -> Index:
        self.ensure()
        return Index(self.root / "index.sqlite")

    def ensure(self) -> None:
        """Create the layout (the root 0700: a cache may hold private files) and CACHEDIR.TAG.

        A folder that exists is adopted only when it is empty or holds nothing but cachefix's
        layout: a project folder named by mistake is refused (exit 2), never littered. Creating
        the folder leaves the marker that lets `cache clear` remove it again. Nothing is
        written when the layout is complete, so a read-only cache still serves hits.
        """
        if self._ready:
            return
        if not self.root.is_dir():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.root.mkdir(mode=0o700)
                (self.root / MARKER).write_text("cachefix created this folder; `cachefix cache clear` may remove it\n")
            except FileExistsError:
                pass
        refuse_foreign(self.root, foreign_top(self.root), "use as a cache")
        try:
            for sub in (self.blob_dir, self.tmp_dir, self.lock_dir):
                if not sub.is_dir():
                    sub.mkdir(exist_ok=True)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.exists():
                tag.write_text(CACHEDIR_TAG)
        except OSError as exc:  # a read-only cache can still serve its hits; a miss says why not
            if not is_read_only(exc):
                raise
        self._ready = True

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest[:2] / digest

    def new_temp(self, prefix: str) -> tuple[int, Path]:
        self.ensure()
        return create_unique(self.tmp_dir, prefix, ".part")

    def publish(self, fd: int, temp: Path, digest: str) -> os.stat_result:
        """fsync, make read-only and rename `temp` (open as `fd`) to its blob name.

        Replacing an existing blob is fine: the name is the content's digest, so the old
        file held the same bytes or was corrupt.
        """
        os.fsync(fd)
        os.fchmod(fd, BLOB_MODE)
        target = self.blob_path(digest)
        target.parent.mkdir(exist_ok=True)
        os.replace(temp, target)
        fsync_dir(target.parent)
        return target.stat()

    def remove(self, digest: str) -> int:
        """Delete a blob; returns the bytes freed (0 if it was already gone)."""
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def blobs(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every blob on disk with its stat, whatever the index says."""
        if not self.blob_dir.is_dir():
            return
        for fan in os.scandir(self.blob_dir):
            if not fan.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(fan.path):
                if is_digest(entry.name) and entry.is_file(follow_symlinks=False):
                    yield entry.name, entry.stat(follow_symlinks=False)

    def temp_files(self) -> Iterator[tuple[Path, os.stat_result]]:
        """Temp and partial downloads (a live download keeps its file's mtime fresh)."""
        if self.tmp_dir.is_dir():
            for entry in os.scandir(self.tmp_dir):
                yield Path(entry.path), entry.stat(follow_symlinks=False)
