"""One cache as one streamed archive (tar in gzip), and the rules every member must pass.

The tar keeps what a package manager's cache needs back exactly: numeric owners, modes
(Go's module cache is 0444 files in 0555 folders), symlinks, hard links and times. Members
are checked when an archive is written (export) and again when it is read (import), naming the
member: no absolute path, no `..`, nothing written below or over a symlink listed before it, a
hard link only to a file listed before it, no devices, FIFOs or sockets. A symlink's own target
is kept as it is, absolute ones included: uv's cache links its wheels to
`/root/.cache/uv/archive-v0/...` (astral-sh/uv#19033 made them relative only in 2026), and a
link is only followed inside the build container, where the cache is mounted; cachefix itself
never writes through one. Setuid and setgid bits are dropped from files: an imported cache
lands on the host, where they would count.

Compression is gzip at level 1: the bulk of a cache (wheels, .deb, Go zips) is compressed
already, and CI caches (actions/cache, GitLab's) compress their upload again; level 1 still
halves the text (apt lists, Go sources) at several times the speed of level 6.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

GZIP_LEVEL = 1
CHUNK = 1 << 20
# Where tarfile takes a `filter`, say that the checks here are the filter: Python 3.14 otherwise
# applies its `data` filter, which would drop every owner and the read-only modes.
_TRUSTED = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}

Progress = Callable[[int], None]
_BROKEN = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)  # what bad bytes raise while reading


class ArchiveDamaged(Exception):
    """An archive that must not be used: bad digest, truncated, or an unsafe member. One line."""


@dataclass(frozen=True)
class ArchiveInfo:
    """What one archive holds, as the manifest records it."""

    sha256: str
    archive_bytes: int  # the .tar.gz on disk
    content_bytes: int  # the regular files' sizes, unpacked
    files: int  # members that are not directories (files, symlinks, hard links)

    @property
    def empty(self) -> bool:
        return self.files == 0


@dataclass
class MemberCheck:
    """The rules for one archive's members, in order; remembers what earlier members were."""

    label: str  # names the archive (or cache) in messages
    symlinks: set[str] = field(default_factory=set)
    regular: set[str] = field(default_factory=set)
    content_bytes: int = 0
    files: int = 0

    def check(self, member: tarfile.TarInfo) -> str:
        """The member's normalised path ("" for the root); ArchiveDamaged when it breaks a rule."""
        path = self._path(member.name)
        for parent in _parents(path):
            if parent in self.symlinks:
                self._refuse(member, f"lies below the symlink {parent!r}")
        if path in self.symlinks:  # unpacking it would write wherever the link points
            self._refuse(member, "replaces a symlink listed before it")
        self.regular.discard(path)
        if member.isreg():
            self.regular.add(path)
            self.content_bytes += member.size
        elif member.issym():
            self.symlinks.add(path)
        elif member.islnk():
            target = self._path(member.linkname)
            if target not in self.regular:
                self._refuse(member, f"is a hard link to {member.linkname!r}, not to a file listed before it")
        elif not member.isdir():
            self._refuse(member, "is a device, FIFO or socket")
        if not member.isdir():
            self.files += 1
        return path

    def _path(self, name: str) -> str:
        if name.startswith("/"):
            raise ArchiveDamaged(f"{self.label}: member {name!r} has an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise ArchiveDamaged(f"{self.label}: member {name!r} contains '..'")
        return "/".join(parts)

    def _refuse(self, member: tarfile.TarInfo, why: str) -> None:
        raise ArchiveDamaged(f"{self.label}: member {member.name!r} {why}")


def _parents(path: str) -> list[str]:
    """'a/b/c' -> ['a', 'a/b']."""
    parts = path.split("/")[:-1] if path else []
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class _HashingWriter:
    """A write-only file that hashes and counts what passes through to `target`."""

    def __init__(self, target: BinaryIO, progress: Progress | None) -> None:
        self.target, self.progress = target, progress
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self.digest.update(data)
        self.size += len(data)
        if self.progress is not None:
            self.progress(len(data))
        return len(data)

    def flush(self) -> None:
        self.target.flush()


class _HashingReader:
    """A read-only file that hashes and counts what is read from `source`."""

    def __init__(self, source: BinaryIO, progress: Progress | None) -> None:
        self.source, self.progress = source, progress
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        self.size += len(data)
        if self.progress is not None and data:
            self.progress(len(data))
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _safe_member(member: tarfile.TarInfo) -> tarfile.TarInfo:
    if member.isreg() and member.mode & (stat.S_ISUID | stat.S_ISGID):
        member = member.replace(mode=member.mode & ~(stat.S_ISUID | stat.S_ISGID), deep=False)
    return member


class ArchiveWriter:
    """Writes one archive to a temp file beside `final`; `publish` renames it into place."""

    def __init__(self, final: Path, label: str, progress: Progress | None = None) -> None:
        self.final, self.check = final, MemberCheck(label)
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".cachefix-tmp", dir=final.parent)
        self.temp = Path(name)
        os.fchmod(fd, 0o644)  # as any file written under the usual umask; mkstemp makes it private
        self._file = os.fdopen(fd, "wb")
        self._hashing = _HashingWriter(self._file, progress)
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing,  # type: ignore[arg-type]
                                   compresslevel=GZIP_LEVEL, mtime=0)
        # Closed by `close` or `discard` (the caller's `with` block calls one of them).
        self.tar = tarfile.open(fileobj=self._gzip, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.discard()

    def add(self, member: tarfile.TarInfo, data: IO[bytes] | None) -> None:
        self.check.check(member)
        self.tar.addfile(_safe_member(member), data if member.isreg() else None)

    def add_tree(self, folder: Path, skip: Callable[[str], bool] = lambda _: False) -> None:
        """Every entry under `folder`, as `./...` (sorted, hard links as links, owners by number)."""
        def keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
            if skip(member.name):
                return None
            self.check.check(member)
            return _safe_member(member)
        self.tar.add(str(folder), arcname=".", filter=keep)

    def add_stream(self, source: BinaryIO) -> None:
        """Every member of a plain tar stream (what `tar -c` wrote in the builder)."""
        try:
            with tarfile.open(fileobj=source, mode="r|") as incoming:
                for member in incoming:
                    self.add(member, incoming.extractfile(member) if member.isreg() else None)
        except (tarfile.TarError, EOFError) as exc:
            raise ArchiveDamaged(f"{self.check.label}: the builder's tar stream is broken: {exc}") from None

    def close(self) -> ArchiveInfo:
        """Finish and fsync the temp file; the archive is not in place until `publish`."""
        self.tar.close()
        self._gzip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return ArchiveInfo(self._hashing.digest.hexdigest(), self._hashing.size,
                           self.check.content_bytes, self.check.files)

    def publish(self) -> None:
        os.replace(self.temp, self.final)
        _fsync_dir(self.final.parent)

    def discard(self) -> None:
        """Drop the temp file (an error, an empty cache, or over the quota)."""
        for closing in (self.tar.close, self._gzip.close, self._file.close):
            with contextlib.suppress(OSError, tarfile.TarError, ValueError, ArchiveDamaged):
                closing()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _reading(path: Path, label: str, progress: Progress | None) -> Iterator[tuple[tarfile.TarFile, _HashingReader]]:
    """The archive's tar stream and the reader that hashes it; broken bytes become ArchiveDamaged."""
    try:
        with open(path, "rb") as raw:
            reader = _HashingReader(raw, progress)
            try:
                with tarfile.open(fileobj=gzip.GzipFile(fileobj=reader), mode="r|") as tar:  # type: ignore[arg-type]
                    yield tar, reader
            except _BROKEN as exc:
                raise ArchiveDamaged(f"{label}: the archive is broken ({exc or type(exc).__name__})") from None
    except ArchiveDamaged:
        raise
    except OSError as exc:
        raise ArchiveDamaged(f"{label}: cannot read {path}: {exc.strerror or exc}") from None


def _checked(tar: tarfile.TarFile, check: MemberCheck) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        check.check(member)
        yield _safe_member(member)


def verify(path: Path, sha256: str, label: str, progress: Progress | None = None) -> ArchiveInfo:
    """Read the whole archive once: its digest must be `sha256` and every member must pass."""
    check = MemberCheck(label)
    damage: ArchiveDamaged | None = None
    try:
        with open(path, "rb") as raw:
            reader = _HashingReader(raw, progress)
            try:
                with tarfile.open(fileobj=gzip.GzipFile(fileobj=reader), mode="r|") as tar:  # type: ignore[arg-type]
                    for member in _checked(tar, check):
                        stream = tar.extractfile(member) if member.isreg() else None
                        while stream is not None and stream.read(CHUNK):
                            pass
            except ArchiveDamaged as exc:
                damage = exc
            except _BROKEN as exc:
                damage = ArchiveDamaged(f"{label}: the archive is broken ({exc or type(exc).__name__})")
            reader.drain()
    except OSError as exc:
        raise ArchiveDamaged(f"{label}: cannot read {path}: {exc.strerror or exc}") from None
    actual = reader.digest.hexdigest()
    if actual != sha256:  # a digest mismatch says more than the tar error it causes
        raise ArchiveDamaged(f"{label}: {path.name} has SHA-256 {actual}, the manifest says {sha256}")
    if damage is not None:
        raise damage
    return ArchiveInfo(actual, reader.size, check.content_bytes, check.files)


def extract_new(path: Path, dest: Path, label: str, progress: Progress | None = None) -> None:
    """Unpack into `dest`, a folder that must not exist yet: into a private temp folder beside
    it, then one rename, so a failure leaves nothing half-written where a builder would look.
    Owners are restored by number when running as root, as `tar --numeric-owner` does."""
    temp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".cachefix-tmp", dir=dest.parent))
    try:
        with _reading(path, label, progress) as (tar, _reader):
            tar.extractall(temp, members=_checked(tar, MemberCheck(label)), numeric_owner=True,
                           **_TRUSTED)  # type: ignore[arg-type]
        os.rename(temp, dest)
    except BaseException:
        remove_tree(temp)
        raise


def remove_tree(folder: Path) -> None:
    """Remove a tree cachefix made, read-only folders (Go's module cache) included."""
    for root, dirs, _files in os.walk(folder):
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
    shutil.rmtree(folder, ignore_errors=True)
