"""`manifest.json` in an export folder: which archive holds which cache, and its digest.

The manifest is also the list of what cachefix made in that folder: only archives it lists are
ever replaced or removed by a later export.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from cachefix.mounts.archive import ArchiveInfo
from cachefix.mounts.identity import CacheIdentity

MANIFEST = "manifest.json"
VERSION = 1
SUFFIX = ".tar.gz"
_ARCHIVE_NAME = re.compile(r"cache-[A-Za-z0-9._-]{0,40}-[0-9a-f]{12}\.tar\.gz")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(Exception):
    """A manifest that cannot be read or trusted; one line naming the file."""


@dataclass(frozen=True)
class Entry:
    """One cache in the export folder."""

    identity: CacheIdentity
    targets: tuple[str, ...]  # where the project's Dockerfiles mount it (for --include and people)
    archive: str  # file name in the folder
    sha256: str
    archive_bytes: int
    content_bytes: int
    files: int

    @property
    def label(self) -> str:
        return describe(self.identity)


def describe(identity: CacheIdentity) -> str:
    """`pip (uid 1000, gid 1000)`: the id, and the options only when they are not the defaults."""
    extra = [f"{key} {value}" for key, value, default in
             (("uid", identity.uid, "0"), ("gid", identity.gid, "0"), ("mode", identity.mode, "0755"))
             if value != default]
    return identity.id + (f" ({', '.join(extra)})" if extra else "")


def archive_name(identity: CacheIdentity) -> str:
    """A file name that is safe anywhere and differs for every identity."""
    key = "\0".join((identity.id, identity.uid, identity.gid, identity.mode, str(identity.explicit)))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", identity.id).strip("-.")[:40]
    return f"cache-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}{SUFFIX}"


def entry(identity: CacheIdentity, targets: tuple[str, ...], info: ArchiveInfo) -> Entry:
    return Entry(identity, targets, archive_name(identity), info.sha256, info.archive_bytes,
                 info.content_bytes, info.files)


def read(folder: Path) -> list[Entry] | None:
    """The folder's entries; None when it has no manifest; ManifestError when it is not ours."""
    path = folder / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} cachefix manifest")
        return [_entry(item) for item in data["caches"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path} is damaged or not cachefix's: {exc}") from None


def _entry(item: dict[str, object]) -> Entry:
    explicit = item.get("explicit", False)
    if not isinstance(explicit, bool):
        raise ValueError("explicit is not true or false")
    identity = CacheIdentity(**{key: _text(item, key) for key in ("id", "uid", "gid", "mode")}, explicit=explicit)
    targets = item.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ValueError(f"targets of {identity.id!r} are not a list of strings")
    archive, sha256 = _text(item, "archive"), _text(item, "sha256")
    if not _ARCHIVE_NAME.fullmatch(archive):
        raise ValueError(f"archive name {archive!r} is not one cachefix writes")
    if not _HEX64.fullmatch(sha256):
        raise ValueError(f"sha256 of {archive} is not 64 hex digits")
    numbers = [item.get(key) for key in ("archive_bytes", "content_bytes", "files")]
    if not all(isinstance(n, int) and n >= 0 for n in numbers):
        raise ValueError(f"sizes of {archive} are not counts")
    return Entry(identity, tuple(targets), archive, sha256, *numbers)  # type: ignore[arg-type]


def _text(item: dict[str, object], key: str) -> str:
    value = item[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def write(folder: Path, engine: str, entries: list[Entry]) -> None:
    """Write the manifest atomically (temp file in the folder, fsync, rename)."""
    caches = []
    for item in sorted(entries, key=lambda e: e.identity):
        fields = asdict(item)
        caches.append({**fields.pop("identity"), **fields, "targets": list(item.targets)})
    text = json.dumps({"version": VERSION, "engine": engine, "caches": caches}, indent=2) + "\n"
    fd, temp = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".cachefix-tmp", dir=folder)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, folder / MANIFEST)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
