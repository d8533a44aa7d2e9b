"""Unpack tar (gz, bz2, xz, zst) and zip archives without trusting them.

Everything is unpacked into a private temp dir beside DIR, checked, then renamed into place,
so a broken or hostile archive leaves DIR as it was. Members are written by this module,
not by `tarfile.extractall`: the `data` filter had link bypasses on the Python versions we
support (CVE-2025-4517 and later), so the rules are enforced here, naming the member:
no absolute paths or `..`, no writing through a symlink, no link that resolves outside the
tree, no devices or FIFOs, no setuid bits, and bounded bytes, members and compression ratio
(counted as bytes are written: archive headers lie). Compression is sniffed from the bytes.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, NoReturn

from cachefix.downloads.errors import ArchiveError, DownloadError, InvalidInput

COPY_CHUNK = 1 << 20
RATIO_FLOOR = 64 << 20  # below this many bytes out, any compression ratio is fine
MAX_LINK_TARGET = 4096


@dataclass(frozen=True)
class Limits:
    """What an archive may expand to: total bytes, members, and bytes out per byte in."""

    max_bytes: int = 32 << 30
    max_members: int = 200_000
    max_ratio: int = 250


def extract(archive: Path, dest: str | os.PathLike[str], limits: Limits | None = None) -> None:
    """Unpack `archive` into `dest` (created if missing; merged into if it has files)."""
    limits = limits or Limits()
    if not os.fspath(dest):
        raise InvalidInput("--extract needs a folder ('.' for the current one)")
    link = Path(dest).is_symlink()
    dest = Path(os.path.realpath(dest) if link else os.path.abspath(dest))  # into a LINK's folder, as `tar -C`
    into_existing = dest.is_dir()
    sink = None
    try:
        if not into_existing:
            dest.parent.mkdir(parents=True, exist_ok=True)
        # An existing DIR (`.` too) holds the temp folder itself: its parent need not be writable,
        # and its own mode and owner stay as they are.
        temp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".cachefix",
                                     dir=dest if into_existing else dest.parent))
        sink = _Sink(temp, limits, os.stat(archive).st_size)
        _unpack(Path(archive), sink)
        sink.finish()
        _publish(temp, dest, into_existing)
    except OSError as exc:  # disk full, a name too long...: name the member and DEST, never the temp folder
        member = f" {sink.member!r}" if sink and sink.member else ""
        raise DownloadError(f"cannot unpack{member} into {dest}: {exc.strerror or exc}") from None
    finally:
        if sink is not None:
            shutil.rmtree(sink.root, ignore_errors=True)


def _unpack(archive: Path, sink: _Sink) -> None:
    with open(archive, "rb") as raw:
        head = raw.read(8)
        raw.seek(0)
        try:
            if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
                _unzip(raw, sink)
            else:
                _untar(_decompressor(head, raw), sink)
        except _data_errors() as exc:
            raise ArchiveError(f"broken archive {archive.name}: {exc}") from None
        except OSError as exc:
            if exc.errno is not None:  # a real I/O error (disk full, permissions), not bad data
                raise
            raise ArchiveError(f"broken archive {archive.name}: {exc}") from None


def _data_errors() -> tuple[type[BaseException], ...]:
    """What a decoder raises for bad bytes (zstandard's own error only once it was imported)."""
    errors: tuple[type[BaseException], ...] = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error,
                                               lzma.LZMAError)
    zstd = sys.modules.get("zstandard")
    return (*errors, zstd.ZstdError) if zstd else errors


def _decompressor(head: bytes, raw: BinaryIO) -> IO[bytes]:
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            import zstandard
        except ImportError:
            raise ArchiveError("this archive is zstd-compressed: `pip install zstandard` to unpack it") from None
        return zstandard.ZstdDecompressor().stream_reader(raw)  # type: ignore[no-any-return]
    return raw


def _open_tar(stream: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=stream, mode="r|")
    except tarfile.ReadError:
        raise ArchiveError("not a tar or zip archive (or an unsupported compression)") from None


def _untar(stream: IO[bytes], sink: _Sink) -> None:
    with _open_tar(stream) as tar:
        for member in tar:
            sink.count(member.name)
            if member.isreg():
                sink.file(member.name, tar.extractfile(member), member.mode, member.mtime)  # type: ignore[arg-type]
            elif member.isdir():
                sink.directory(member.name, member.mode)
            elif member.issym():
                sink.symlink(member.name, member.linkname)
            elif member.islnk():
                sink.hardlink(member.name, member.linkname)
            else:
                sink.reject(member.name, "is a device or FIFO, which is never unpacked")


def _unzip(raw: BinaryIO, sink: _Sink) -> None:
    with zipfile.ZipFile(raw) as archive:
        for info in archive.infolist():
            sink.count(info.filename)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if info.is_dir():
                sink.directory(info.filename, mode or 0o755)
            elif kind == stat.S_IFLNK:
                if info.file_size > MAX_LINK_TARGET:
                    sink.reject(info.filename, "is a symlink with an oversized target")
                sink.symlink(info.filename, archive.read(info).decode("utf-8", "surrogateescape"))
            elif kind not in (0, stat.S_IFREG):
                sink.reject(info.filename, "is a device or FIFO, which is never unpacked")
            else:
                try:
                    stream = archive.open(info)
                except (NotImplementedError, RuntimeError) as exc:  # encrypted, or an unknown method
                    why = "it is encrypted" if info.flag_bits & 0x1 else str(exc)
                    raise ArchiveError(f"cannot unpack {info.filename!r}: {why}") from None
                with stream:
                    mtime = time.mktime((*info.date_time, 0, 0, -1))
                    sink.file(info.filename, stream, mode or 0o644, mtime)


class _Sink:
    """Writes members under `root`, enforcing every rule; knows nothing of archive formats."""

    def __init__(self, root: Path, limits: Limits, archive_size: int) -> None:
        self.root, self.limits = root, limits
        self.real_root = os.path.realpath(root)  # what resolved link targets are compared with
        self.budget = min(limits.max_bytes, max(RATIO_FLOOR, archive_size * limits.max_ratio))
        self.members = self.written = 0
        self.member = ""  # the one being unpacked, for error messages
        self.safe_dirs: set[Path] = {root}
        self.dir_modes: dict[Path, int | None] = {}  # None: not listed, made 0755 less umask as by tar
        self.links: dict[Path, str] = {}

    def reject(self, name: str, why: str) -> NoReturn:
        raise ArchiveError(f"unsafe archive member {name!r}: {why}; nothing was extracted")

    def count(self, name: str) -> None:
        self.member = name
        self.members += 1
        if self.members > self.limits.max_members:
            self.reject(name, f"the archive has more than {self.limits.max_members} members")

    def file(self, name: str, stream: IO[bytes], mode: int, mtime: float) -> None:
        path = self._target(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            while chunk := stream.read(COPY_CHUNK):
                self.written += len(chunk)
                if self.written > self.budget:
                    self.reject(name, f"the archive expands past {self.budget} bytes (a decompression"
                                      " bomb, or raise the limit)")
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fchmod(fd, (mode & 0o755) | 0o600)  # no setuid/setgid/sticky, no group/other write
        finally:
            os.close(fd)
        os.utime(path, (mtime, mtime), follow_symlinks=False)

    def directory(self, name: str, mode: int) -> None:
        if not _parts(name):
            return  # "./" itself
        path = self._target(name, clear=False)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                self.reject(name, "is a directory where the archive already put a file or link")
        self.safe_dirs.add(path)
        self.dir_modes[path] = (mode & 0o755) | 0o700

    def symlink(self, name: str, target: str) -> None:
        where = PurePosixPath(*_parts(name)).parent
        if target.startswith("/") or _escapes(where / target):
            self.reject(name, f"is a symlink to {target!r}, outside the target directory")
        path = self._target(name)
        os.symlink(target, path)
        self.links[path] = name

    def hardlink(self, name: str, target: str) -> None:
        try:
            source = self.root.joinpath(*_parts(target)) if _parts(target) else None
        except ArchiveError:
            source = None
        try:
            mode = os.lstat(source).st_mode if source else 0
        except FileNotFoundError:
            mode = 0
        if source is None or not stat.S_ISREG(mode) or source.parent not in self.safe_dirs:
            self.reject(name, f"is a hard link to {target!r}, which is not a file unpacked before it")
        os.link(source, self._target(name), follow_symlinks=False)

    def finish(self) -> None:
        """Check where every symlink really resolves (chains included), then set dir modes."""
        self.member = ""  # what fails from here on is about DEST, not a member
        for link, name in self.links.items():
            real = os.path.realpath(link)
            if os.path.commonpath([real, self.real_root]) != self.real_root:
                self.reject(name, "is a symlink that resolves outside the target directory")
        umask = _umask()
        for path, mode in sorted(self.dir_modes.items(), reverse=True):
            os.chmod(path, mode if mode is not None else 0o755 & ~umask)
        os.chmod(self.root, 0o777 & ~umask)

    def _target(self, name: str, *, clear: bool = True) -> Path:
        """`name` under the root, through real directories only; an old non-directory is removed."""
        parts = _parts(name)
        if not parts:
            self.reject(name, "has an empty path")
        path = self.root
        for part in parts[:-1]:
            path = path / part
            if path in self.safe_dirs:
                continue
            try:
                os.mkdir(path, 0o700)
                self.dir_modes.setdefault(path, None)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    self.reject(name, f"goes through {part!r}, which is a symlink or a file")
            self.safe_dirs.add(path)
        path = path / parts[-1]
        if clear:
            try:
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    self.reject(name, "would replace a directory")
                os.unlink(path)  # a later member of the same name wins, as with tar
                self.links.pop(path, None)
            except FileNotFoundError:
                pass
        return path


def _parts(name: str) -> list[str]:
    """The path's components without `.`; rejects absolute paths and `..` outright."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"unsafe archive member {name!r}: absolute path; nothing was extracted")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"unsafe archive member {name!r}: contains '..'; nothing was extracted")
    return parts


def _escapes(path: PurePosixPath) -> bool:
    """Does a relative path climb above its root, read lexically?"""
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish(temp: Path, dest: Path, into_existing: bool) -> None:
    """Rename the tree into place, or merge it into an existing DIR entry by entry."""
    if not into_existing:
        try:
            os.rename(temp, dest)  # one atomic step
            return
        except OSError as exc:  # made meanwhile by someone else: merge into it
            if not dest.is_dir() or exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    _merge(temp, dest, lambda src, dst: None)  # first find every conflict, touching nothing
    _merge(temp, dest, os.replace)


def _merge(source: Path, dest: Path, move: Callable[[str, Path], None]) -> None:
    for entry in os.scandir(source):
        target = dest / entry.name
        try:
            existing = os.lstat(target).st_mode
        except FileNotFoundError:
            existing = None
        if entry.is_dir(follow_symlinks=False) and existing is not None:
            if not stat.S_ISDIR(existing):
                raise ArchiveError(f"cannot unpack into {target}: it exists and is not a directory")
            _merge(Path(entry.path), target, move)
        elif existing is not None and stat.S_ISDIR(existing):
            raise ArchiveError(f"cannot unpack {entry.name} into {dest}: a directory of that name exists")
        else:
            move(entry.path, target)
