"""`cache clean`, `cache verify` and `cache clear`: eviction, integrity, deletion.

Eviction is by last use as the index records it on every hit (true LRU, unlike the shell
library's `find -mtime`, which evicted by download date). A blob the index does not know
counts as used when it was written.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cachefix.downloads.errors import InvalidInput
from cachefix.downloads.index import url_key
from cachefix.downloads.layout import foreign_entries, refuse_foreign, remove_own
from cachefix.downloads.store import Store, hash_file, is_digest
from cachefix.downloads.units import format_size

STALE_TEMP = 86400  # a live download touches its temp file far more often than this


@dataclass(frozen=True)
class CleanOutcome:
    removed: int
    freed: int
    kept: int
    kept_bytes: int


def clean(store: Store, *, older_than: float | None, max_size: int | None, dry_run: bool) -> CleanOutcome:
    """Evict blobs unused for `older_than` seconds, then least recently used ones until the
    cache holds at most `max_size` bytes; also drop abandoned temp files."""
    if not store.root.is_dir():
        return CleanOutcome(0, 0, 0, 0)
    refuse_foreign(store.root, foreign_entries(store.root), "clean")
    index = store.index
    on_disk = dict(store.blobs())
    last_use = {use.digest: use.last_use for use in index.blob_uses()}
    entries = sorted((last_use.get(d, st.st_mtime), d, st.st_size) for d, st in on_disk.items())
    now = time.time()
    doomed = {d for used, d, _ in entries if older_than is not None and now - used > older_than}
    if max_size is not None:
        total = sum(size for _, d, size in entries if d not in doomed)
        for _, digest, size in entries:
            if total <= max_size:
                break
            if digest not in doomed:
                doomed.add(digest)
                total -= size
    freed = sum(size for _, d, size in entries if d in doomed)
    if not dry_run:
        for digest in doomed | (last_use.keys() - on_disk.keys()):
            store.remove(digest)
            index.evict(digest)
        for path, stat in store.temp_files():
            if now - stat.st_mtime > STALE_TEMP:
                path.unlink(missing_ok=True)
                index.drop_partial(path)
    kept = [size for _, d, size in entries if d not in doomed]
    return CleanOutcome(len(doomed), freed, len(kept), sum(kept))


def verify(store: Store, *, entry: str | None, expected: str | None, repair: bool, quiet: bool) -> int:
    """Re-hash one entry (against `expected`) or every blob; 1 if anything is missing or corrupt.

    A blob the index points to that is gone from disk counts as corrupt: the next pinned
    fetch would download it again, and an offline one would fail.
    """
    if entry is not None:
        return _verify_entry(store, entry, expected)
    if expected is not None:
        raise InvalidInput("--sha256 needs an ENTRY to compare")
    bad, checked, size = [], 0, 0
    on_disk = set()
    for digest, stat in store.blobs():
        on_disk.add(digest)
        checked, size = checked + 1, size + stat.st_size
        actual = hash_file(store.blob_path(digest))
        if actual == digest:
            store.index.note_use(lambda d=digest, s=stat: store.index.record_blob(d, s))
            continue
        print(f"✗ corrupt: {store.blob_path(digest)} (content hashes to {actual})")
        bad.append(digest)
    missing = sorted(store.index.digests() - on_disk) if store.root.is_dir() else []
    for digest in missing:
        print(f"✗ missing: {store.blob_path(digest)} (the index lists it for "
              f"{', '.join(store.index.urls_for(digest)) or 'no URL'})")
    if repair and (bad or missing):
        refuse_foreign(store.root, foreign_entries(store.root), "repair")
    unrepaired = _repair(store, bad + missing) if repair else len(bad) + len(missing)
    if not quiet:
        print(f"verified {checked} files ({format_size(size)}): {len(bad)} corrupt, {len(missing)} missing"
              + (f", {len(bad) + len(missing) - unrepaired} fetched again, {unrepaired} dropped" if repair else ""))
    return 0 if repair or not unrepaired else 1  # after --repair the index matches the disk


def _verify_entry(store: Store, entry: str, expected: str | None) -> int:
    """One entry by URL, by the SHA-256 of its URL (the shell library's key), or by digest."""
    key = entry.lower()
    urls = store.index.urls_by_key(url_key(entry) if "://" in entry else key)
    digest = urls[0].digest if urls else key if is_digest(key) else None
    path = store.blob_path(digest) if digest else None
    if path is None or not path.is_file():
        print(f"✗ Cache file not found: {entry}")
        return 1
    actual = hash_file(path)
    wanted = (expected or digest).lower()
    if actual == wanted:
        print(f"✓ Cache file valid: {entry}")
        return 0
    print(f"✗ Cache file corrupted: {entry}\n  Expected: {wanted}\n  Got:      {actual}")
    return 1


def _repair(store: Store, bad: list[str]) -> int:
    """Delete corrupt blobs and download them again by digest from their URLs; an entry that
    cannot be fetched again is dropped from the index. Returns how many were dropped."""
    from cachefix.downloads.errors import DownloadError
    from cachefix.downloads.fetch import Fetcher, Request

    dropped = 0
    with Fetcher(store) as fetcher:
        for digest in bad:
            urls = store.index.urls_for(digest)
            store.remove(digest)
            store.index.forget_blob(digest)
            for url in urls:
                try:
                    fetcher.fetch(Request(url, digest))
                    break
                except DownloadError as exc:
                    print(f"✗ could not fetch {digest} again from {url}: {exc}", file=sys.stderr)
            else:
                store.index.evict(digest)
                print(f"✗ dropped {digest} from the index: {', '.join(urls) or 'no URL'} will download again")
                dropped += 1
    return dropped


@dataclass(frozen=True)
class Target:
    name: str
    paths: list[Path]
    size: int


def clear_targets(store: Store, names: list[str]) -> list[Target]:
    """What `cache clear` would delete for each named cache, with sizes, for the question."""
    from cachefix.downloads.inventory import disk_usage, locate

    targets = []
    for name in names:
        paths = [store.root] if name == "downloads" else locate(name).paths
        paths = [p for p in paths if p.exists()]
        _refuse_dangerous(paths)
        if name == "downloads" and paths:
            refuse_foreign(store.root, foreign_entries(store.root), "clear")
        targets.append(Target(name, paths, disk_usage(paths)[1]))
    return targets


def confirm_and_clear(targets: list[Target], *, assume_yes: bool) -> int:
    """Ask (on a terminal) or require --yes, then delete; 0 when done or nothing to do."""
    targets = [t for t in targets if t.paths]
    if not targets:
        print("nothing to clear")
        return 0
    for target in targets:
        print(f"{target.name}: {format_size(target.size)} in {', '.join(map(str, target.paths))}")
    if not assume_yes:
        if not sys.stdin.isatty():
            raise InvalidInput("refusing to delete without --yes (stdin is not a terminal)")
        try:
            answer = input("delete all of this? [y/N] ")
        except EOFError:  # Ctrl-D at the question: a no
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    for target in targets:
        for path in target.paths:
            if target.name == "downloads":
                remove_own(path)
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        print(f"cleared {target.name} ({format_size(target.size)})")
    return 0


def _refuse_dangerous(paths: list[Path]) -> None:
    """A cache path from an environment variable could be `/` or $HOME: never delete those."""
    for path in paths:
        resolved = path.resolve()
        if len(resolved.parts) < 3 or resolved == Path.home().resolve():
            raise InvalidInput(f"refusing to delete {path}: it does not look like a cache folder")
