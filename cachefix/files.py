"""Finding Dockerfiles under the paths given, reading them safely, and writing them atomically."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# Dockerfile, Containerfile, Dockerfile.prod, Dockerfile-dev, api.Dockerfile, x.containerfile.
NAMES = re.compile(r"(^|\.)(dockerfile|containerfile)([.-].*)?$", re.IGNORECASE)
MAX_BYTES = 4 * 1024 * 1024  # no real Dockerfile is near this; a bigger file is not one


class UnreadableFile(Exception):
    """A file that cannot be linted: missing, binary, not UTF-8, too large. One line of text."""


def is_dockerfile_name(name: str) -> bool:
    return bool(NAMES.search(name)) and not name.lower().endswith(".dockerignore")


def _ignore_spec(lines: Sequence[str]):  # -> pathspec.GitIgnoreSpec
    import pathspec  # only when a .gitignore or --exclude is there: start-up time matters

    return pathspec.GitIgnoreSpec.from_lines(lines)


def find_dockerfiles(paths: Sequence[str], exclude: Sequence[str] = ()) -> Iterator[Path]:
    """Files named on the command line, and Dockerfiles found below folders.

    Folders are walked skipping `.git` and what each folder's `.gitignore` ignores; `exclude`
    holds gitignore-style patterns matched against paths relative to the folder given.
    """
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            yield path
            continue
        excluded = _ignore_spec(exclude) if exclude else None
        ignores: list[tuple[str, object]] = []  # (folder relative to `path`, spec)
        for folder, dirs, files in os.walk(path):
            rel_folder = os.path.relpath(folder, path)
            rel_folder = "" if rel_folder == "." else rel_folder + "/"
            ignores = [(base, spec) for base, spec in ignores if rel_folder.startswith(base)]
            if ".gitignore" in files:
                try:
                    text = Path(folder, ".gitignore").read_text(errors="replace")
                    ignores.append((rel_folder, _ignore_spec(text.splitlines())))
                except OSError:
                    pass

            dirs[:] = sorted(d for d in dirs
                             if d != ".git" and not _skipped(rel_folder + d + "/", excluded, ignores))
            for name in sorted(files):
                if is_dockerfile_name(name) and not _skipped(rel_folder + name, excluded, ignores):
                    yield Path(folder, name)


def _skipped(relative: str, excluded, ignores: list[tuple[str, object]]) -> bool:
    """Excluded on the command line, or ignored by a .gitignore above it (relative to that file)."""
    if excluded is not None and excluded.match_file(relative):
        return True
    return any(spec.match_file(relative[len(base):]) for base, spec in ignores)


def read_dockerfile(path: Path) -> str:
    """The file's text, exactly as stored (CRLF and a BOM kept), or UnreadableFile."""
    try:
        if path.is_dir():
            raise UnreadableFile("is a folder with no Dockerfile")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise UnreadableFile(f"too large for a Dockerfile ({size} bytes; the limit is {MAX_BYTES})")
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFile("no such file or folder") from None
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    if b"\0" in data[:8192]:
        raise UnreadableFile("binary file (contains NUL bytes), not a Dockerfile")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one rename, keeping its mode (and owner, where allowed)."""
    stat = path.stat()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".cachefix")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.st_mode & 0o7777)
        if hasattr(os, "chown"):
            with contextlib.suppress(OSError):  # not ours to give away: keep our own ownership
                os.chown(temp, stat.st_uid, stat.st_gid)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
