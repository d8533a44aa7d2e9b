"""The Python API: `cached_download(url, dest, sha256=...)`, re-exported as `cachefix.cached_download`.

A hit with a pinned digest costs a stat and two SQLite statements on a connection kept for
the process, so calling this in a loop or at import time is fine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from cachefix.downloads.fetch import Fetcher, Request, Result
from cachefix.downloads.materialize import Copy, destination, place
from cachefix.downloads.progress import Display
from cachefix.downloads.remote import chosen
from cachefix.downloads.remote.shared import Remote
from cachefix.downloads.store import Store, default_root

if TYPE_CHECKING:
    from cachefix.downloads.extract import Limits

__all__ = ["cached_download", "deliver"]


def cached_download(
    url: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    sha256: str | None = None,
    mirrors: Sequence[str] = (),
    extract_to: str | os.PathLike[str] | None = None,
    offline: bool = False,
    max_age: float = 0.0,
    link: bool = False,
    progress: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    remote: str | None = None,
) -> Path:
    """Fetch `url` through the cache and return the file written, or the cached file without `dest`.

    sha256: the digest the file must have; a hit then needs no network at all.
    mirrors: URLs of the same file tried in order when `url` fails (`{sha256}` is filled in).
    extract_to: also unpack the archive (tar.gz/bz2/xz/zst, zip) into this directory.
    offline: never ask the origin (only this cache and the remote); raises `OfflineMiss` on a miss.
    max_age: seconds during which an unpinned entry is used without asking the server.
    dest: a file (a symlink is written through), a folder (the file keeps the URL's name), or
    `-` for stdout; the file written is returned.
    link: hardlink `dest` to the cache entry instead of copying (it is read-only).
    remote: the team's shared tier (`s3://BUCKET/PREFIX` or `http(s)://HOST/BASE`); default
    `CACHEFIX_REMOTE`, "" for none.
    The cached file itself is shared and read-only: copy it (pass `dest`) to modify it.
    Raises `cachefix.downloads.errors.DownloadError` (or a subclass) on failure.
    """
    fetcher = Fetcher(_store(Path(cache_dir) if cache_dir else default_root()), offline=offline,
                      max_age=max_age, retries=retries, timeout=timeout, display=Display(progress),
                      remote=_remote(chosen(remote)))
    with fetcher, fetcher.display:
        result, placed = deliver(fetcher, Request(url, sha256, tuple(mirrors)), dest=dest,
                                 extract_to=extract_to, link=link)
    return placed or result.path


def deliver(
    fetcher: Fetcher,
    request: Request,
    *,
    dest: str | os.PathLike[str] | None = None,
    extract_to: str | os.PathLike[str] | None = None,
    link: bool = False,
    limits: Limits | None = None,
) -> tuple[Result, Path | None]:
    """Fetch, then unpack into `extract_to` and place at `dest`: what the CLI and API share.

    Returns the result and the file written for `dest` (None without `dest`, or for stdout).
    """
    where = None if dest is None else destination(dest, request.url)  # a bad DEST fails before the download
    copy = None if link else Copy.beside(where)  # written while a download streams
    try:
        result = fetcher.fetch(request, copy)
        if extract_to is not None:
            from cachefix.downloads.extract import extract  # tarfile, zipfile & co. only when unpacking

            extract(result.path, extract_to, limits)
        placed = None
        if dest is not None:
            placed = (copy and copy.commit(result.digest)) or place(result.path, where, link=link)
    finally:
        if copy is not None:
            copy.discard()
    return result, placed


@lru_cache(maxsize=8)
def _remote(spec: str | None) -> Remote | None:
    """One remote per spec for the process: its connections are reused, and one that failed
    stays given up instead of costing its timeout on every call."""
    return None if spec is None else Remote.open(spec)


@lru_cache(maxsize=8)
def _store(root: Path) -> Store:
    """One Store (and so one SQLite connection per thread) per cache root, for the process."""
    return Store(root)
