"""What in a cache folder cachefix made: the only things `cache clear`, `clean` and `verify
--repair` may delete.

`CACHEFIX_CACHE_DIR` can name any folder, a project or $HOME by mistake included, so the
delete commands never trust the path: they list the folder first and refuse, naming the
entries, when anything in it is not cachefix's own layout. The folder itself is removed only
when cachefix created it, which the `created-by-cachefix` marker records; a folder that
existed before is emptied of cachefix's files and left in place.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from cachefix.downloads.errors import InvalidInput

MARKER = "created-by-cachefix"
SUBDIRS = ("sha256", "tmp", "locks")
_FILES = re.compile(r"CACHEDIR\.TAG|created-by-cachefix|index\.sqlite(-wal|-shm|-journal|\.corrupt-\d+)?")
_INSIDE = {
    "tmp": re.compile(r"[0-9a-f]{16}\.[0-9a-f]{16}\.part"),
    "locks": re.compile(r"[0-9a-f]{64}\.lock"),
}
_FAN = re.compile(r"[0-9a-f]{2}")
_BLOB = re.compile(r"[0-9a-f]{64}")
SHOWN = 5  # foreign entries named in an error; the rest are counted


class ForeignEntries(InvalidInput):
    """The cache folder holds something cachefix did not make: it is not deleted, nor adopted."""


def foreign_top(root: Path) -> list[str]:
    """Names directly in `root` that are not cachefix's layout (cheap: one listing)."""
    if not root.is_dir():
        raise InvalidInput(f"the cache folder {root} is not a folder (see CACHEFIX_CACHE_DIR)")
    found = []
    for entry in os.scandir(root):
        if entry.name in SUBDIRS:
            if not entry.is_dir(follow_symlinks=False):
                found.append(entry.name)
        elif not (_FILES.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)):
            found.append(entry.name)
    return sorted(found)


def foreign_entries(root: Path) -> list[str]:
    """Every path under `root` (relative) that cachefix would not have made."""
    found = foreign_top(root)
    for sub in SUBDIRS:
        folder = root / sub
        if sub in found or not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if sub == "sha256":
                found += _foreign_fan(Path(entry.path), root)
            elif not (_INSIDE[sub].fullmatch(entry.name) and entry.is_file(follow_symlinks=False)):
                found.append(f"{sub}/{entry.name}")
    return found


def _foreign_fan(fan: Path, root: Path) -> list[str]:
    if not (_FAN.fullmatch(fan.name) and fan.is_dir() and not fan.is_symlink()):
        return [str(fan.relative_to(root))]
    return [str(Path(e.path).relative_to(root)) for e in os.scandir(fan)
            if not (_BLOB.fullmatch(e.name) and e.name.startswith(fan.name) and e.is_file(follow_symlinks=False))]


def refuse_foreign(root: Path, found: list[str], doing: str) -> None:
    """Raise `ForeignEntries` naming what is in the way of `doing`, if anything is."""
    if not found:
        return
    shown = ", ".join(found[:SHOWN]) + (f" and {len(found) - SHOWN} more" if len(found) > SHOWN else "")
    raise ForeignEntries(f"refusing to {doing} {root}: it holds files cachefix did not make ({shown}); "
                         "point CACHEFIX_CACHE_DIR at cachefix's own cache folder")


def remove_own(root: Path) -> None:
    """Delete cachefix's layout under `root` (checked first), and `root` if cachefix made it."""
    refuse_foreign(root, foreign_entries(root), "clear")
    for sub in SUBDIRS:
        shutil.rmtree(root / sub, ignore_errors=True)  # another `clear` may be removing it too
        if (root / sub).exists():
            shutil.rmtree(root / sub)  # what is left failed for a real reason: report it
    created = (root / MARKER).is_file()
    for entry in os.scandir(root):
        if entry.name != MARKER and _FILES.fullmatch(entry.name):
            Path(entry.path).unlink(missing_ok=True)
    if created and not root.is_symlink():
        os.unlink(root / MARKER)
        with contextlib.suppress(OSError):  # something appeared meanwhile: keep the folder
            os.rmdir(root)

