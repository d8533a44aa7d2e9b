"""Reading files safely, and writing a fixed Dockerfile back without losing anyone's work.

Only regular files are read, and never more than a limit whatever `st_size` says: a FIFO would
block forever and /dev/zero never ends. A fix is written to a temporary file in the same folder
and renamed over the original, after checking that nobody changed the file since it was read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import NamedTuple

from cachefix.limits import MAX_BYTES
from cachefix.workers import Orphaned, orphaned

TEMP_PREFIX = ".cachefix-tmp-"  # no Dockerfile name pattern can match it, whatever random letters follow
_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


class UnreadableFile(Exception):
    """A file that cannot be linted: missing, binary, not UTF-8, too large. One line of text."""


class NotRegularFile(OSError):
    """A FIFO, device, socket or folder where a file was expected: reading it could hang or never end."""


class FileTooLarge(OSError):
    """More bytes than the limit (a huge file, or a device that never ends)."""


class Declined(Exception):
    """A fix that cachefix will not write, although it could (hard links, another's file): one line, a warning."""


class ChangedMeanwhile(Exception):
    """The file changed between reading and writing: the other change is kept, the fix is not written."""


class Snapshot(NamedTuple):
    """A file as read: its text, its bytes, and its status when it was opened."""

    text: str
    data: bytes
    status: os.stat_result


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; OSError (NotRegularFile, FileTooLarge) else.

    For configuration files too: a FIFO named pyproject.toml in a parent folder must not hang a lint run.
    """
    return _read(path, limit)[0]


def _read(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    _require_regular(path, os.stat(path).st_mode)  # a FIFO is never opened: opening some devices does things
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(fd)  # it may have been swapped since the stat: O_NONBLOCK kept that from hanging
        _require_regular(path, status.st_mode)
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileTooLarge(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return b"".join(chunks), status


def _require_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise NotRegularFile(errno.EINVAL, f"{kind}, not a regular file", str(path))


def read_dockerfile(path: Path) -> Snapshot:
    """The file's text, exactly as stored (CRLF and a BOM kept), or UnreadableFile."""
    try:
        data, status = _read(path, MAX_BYTES)
    except FileNotFoundError:
        raise UnreadableFile("a symbolic link to a missing file" if path.is_symlink()
                             else "no such file or folder") from None
    except FileTooLarge:
        raise UnreadableFile(f"too large for a Dockerfile (the limit is {MAX_BYTES} bytes)") from None
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    if b"\0" in data[:8192]:
        raise UnreadableFile("binary file (contains NUL bytes), not a Dockerfile")
    try:
        return Snapshot(data.decode("utf-8"), data, status)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def read_text_or_none(path: Path) -> str | None:
    """The text `read_dockerfile` reads, or None where it cannot (a file that may not be there)."""
    try:
        return read_dockerfile(path).text
    except (UnreadableFile, OSError):
        return None


def write_atomically(path: Path, text: str, read: Snapshot) -> bool:
    """Replace the file `read` came from with `text` in one rename; False if it already holds `text`.

    A symbolic link is written through (discovery followed only links inside the tree), so the
    link stays a link. The new file keeps the mode, setuid and setgid bits included (chown comes
    first: it clears them), its owner and its group. Raises Declined for a file with hard links
    (a rename would split them) or whose owner cannot be kept, ChangedMeanwhile when the file is
    not what was read, and OSError when it cannot be written.
    """
    target = Path(os.path.realpath(path))
    if read.status.st_nlink > 1:
        raise Declined(f"not fixed: it has {read.status.st_nlink} hard links, which replacing it would split "
                       "(fix one copy and link the others again)")
    if not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, "the file is read-only", str(path))
    import tempfile  # only when writing: `check` never pays for it

    data = text.encode("utf-8")
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
    renamed = False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _give_owner(temp, read.status)
        os.chmod(temp, stat.S_IMODE(read.status.st_mode))
        if not _unchanged(target, read):
            if _current(target) == data:
                return False  # another cachefix run wrote the same fix meanwhile
            raise ChangedMeanwhile("changed while cachefix was fixing it: the fix was not written "
                                   "(run cachefix again)")
        if orphaned():
            raise Orphaned
        os.replace(temp, target)
        renamed = True
    finally:
        if not renamed:
            Path(temp).unlink(missing_ok=True)
    return True


def _give_owner(temp: str, status: os.stat_result) -> None:
    """The temp file gets the original's owner and group, or Declined: a fix must not quietly
    take a file over from another user (as writing a group-writable file of theirs would)."""
    if not hasattr(os, "chown"):
        return
    with contextlib.suppress(OSError):
        os.chown(temp, status.st_uid, status.st_gid)
    now = os.stat(temp)
    if (now.st_uid, now.st_gid) != (status.st_uid, status.st_gid):
        raise Declined(f"not fixed: it belongs to user {status.st_uid} and group {status.st_gid}, which a new "
                       "file written by cachefix could not keep")


def _unchanged(target: Path, read: Snapshot) -> bool:
    """Whether the file is still the one that was read: same inode, size, time and bytes."""
    try:
        now = os.stat(target)
    except FileNotFoundError:
        return False
    same = (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) == (
        read.status.st_dev, read.status.st_ino, read.status.st_size, read.status.st_mtime_ns)
    return same and _current(target) == read.data


def _current(target: Path) -> bytes | None:
    try:
        return read_regular_file(target, MAX_BYTES)
    except OSError:
        return None
