"""`cachefix mounts list`: the cache map as a table (rich on a terminal, plain text otherwise) or as JSON.

The JSON is a contract (CI keys its cache on a hash of it, see action.yml), so it holds no time,
no absolute path that the command line did not give, and keeps its order:
`{"version": 1, "files": [...], "caches": [...], "mounts": [...], "errors": [...]}`, documented in
the README ("The cache map").
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from cachefix.mounts.identity import CacheIdentity
from cachefix.mounts.project import CacheMap, MappedMount
from cachefix.report.text import use_color

JSON_VERSION = 1
COLUMNS = ("id", "target", "uid", "gid", "mode", "sharing", "stage", "file:line", "shared by")


def _mount_json(entry: MappedMount) -> dict[str, Any]:
    mount = entry.mount
    identity = mount.identity
    return {"id": identity.id, "target": mount.target, "uid": identity.uid, "gid": identity.gid,
            "mode": identity.mode, "explicit": identity.explicit, "sharing": mount.sharing, "stage": mount.stage,
            "file": mount.path, "line": mount.line, "services": list(entry.services)}


def _cache_json(identity: CacheIdentity, users: list[MappedMount]) -> dict[str, Any]:
    return {"id": identity.id, "uid": identity.uid, "gid": identity.gid, "mode": identity.mode,
            "explicit": identity.explicit, "mounts": len(users), "targets": sorted({u.mount.target for u in users}),
            "services": sorted({s for u in users for s in u.services})}


def as_json(cache_map: CacheMap) -> str:
    """The map as one JSON object; the same project always gives the same text."""
    document = {
        "version": JSON_VERSION,
        "files": list(dict.fromkeys(str(build.dockerfile) for build in cache_map.builds)),
        "caches": [_cache_json(identity, cache_map.users(identity)) for identity in cache_map.caches()],
        "mounts": [_mount_json(entry) for entry in cache_map.mounts],
        "errors": list(cache_map.errors),
    }
    return json.dumps(document, indent=2)


def rows(cache_map: CacheMap) -> list[tuple[str, ...]]:
    """One row a mount, grouped by the cache it uses; `shared by` counts the mounts of that cache. uid,
    gid and mode are `-` where the mount writes none of them: that is another cache than one that
    writes `uid=0`."""
    table = []
    for identity in cache_map.caches():
        users = cache_map.users(identity)
        owner = (identity.uid, identity.gid, identity.mode) if identity.explicit else ("-", "-", "-")
        for entry in users:
            mount = entry.mount
            place = f"{mount.path}:{mount.line}" + (f" ({', '.join(entry.services)})" if entry.services else "")
            table.append((identity.id, mount.target, *owner, mount.sharing, mount.stage, place, str(len(users))))
    return table


def _plain(table: list[tuple[str, ...]], stream: TextIO) -> None:
    widths = [max(len(row[i]) for row in [COLUMNS, *table]) for i in range(len(COLUMNS))]
    for row in [COLUMNS, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=stream)


def _rich(table: list[tuple[str, ...]], stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(*COLUMNS, box=None, header_style="bold")
    for row in table:
        view.add_row(*row)
    Console(file=stream, highlight=False).print(view)


def write_text(cache_map: CacheMap, stream: TextIO, color: bool = True) -> None:
    """The table, then a summary line; errors go to stderr."""
    table = rows(cache_map)
    if table:
        (_rich if use_color(stream, color) else _plain)(table, stream)
    caches, files = len(cache_map.caches()), len({build.dockerfile for build in cache_map.builds})
    print(f"{len(table)} cache mount{'s' * (len(table) != 1)} using {caches} cache{'s' * (caches != 1)} "
          f"in {files} Dockerfile{'s' * (files != 1)}", file=stream)


def write_errors(cache_map: CacheMap) -> None:
    for error in cache_map.errors:
        print(f"cachefix: error: {error}", file=sys.stderr)
