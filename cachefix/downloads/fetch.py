"""Resolve a URL to a verified blob: a hit, a revalidated hit, or a download.

The hit path imports neither httpx nor filelock: with a pinned digest it is a stat and two
SQLite statements. Corruption is caught on every hit by comparing the blob's size and mtime
with the fingerprint recorded when it was last hashed (blobs are 0444, so a changed file
almost always shows a new mtime); a mismatch costs one full re-hash, and `cache verify`
re-hashes everything for what a fingerprint cannot see. Full re-hashing on every hit (as
Bazel and pooch do) would cost about 0.7 s per GiB on each use.

Concurrent fetches of one URL take a per-URL file lock so that one downloads and the others
wait and then hit. The lock only saves bandwidth: every writer has its own temp file and
publishes by rename, so a fake lock (NFS) costs a second download, never a corrupt blob.

With a remote tier (`remote/`), a local miss asks the remote before the origin, and what the
origin sent is written back to it; machines take turns through a lease on the remote.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from cachefix.downloads.errors import (
    DigestMismatch,
    InvalidInput,
    OfflineMiss,
    ReadOnlyCache,
    TransferFailed,
    describe,
)
from cachefix.downloads.index import is_read_only, url_key
from cachefix.downloads.progress import Display, Meter
from cachefix.downloads.store import Store, hash_file, is_digest
from cachefix.downloads.units import format_size

if TYPE_CHECKING:
    import httpx

    from cachefix.downloads.http import Pace, Partial, Transfer
    from cachefix.downloads.materialize import Copy
    from cachefix.downloads.remote.shared import Remote

log = logging.getLogger("cachefix.downloads")

Outcome = Literal["hit", "revalidated", "fetched", "remote"]
_WRITING: set[str] = set()  # partials this process is writing right now (any thread)


@dataclass(frozen=True)
class Request:
    """One file to fetch: its URL, the SHA-256 it must have, and mirrors to fall back to.

    A mirror may contain `{sha256}`, filled with the pinned digest (a content-addressed
    mirror such as `https://mirror.example/sha256/{sha256}`).
    """

    url: str
    sha256: str | None = None
    mirrors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for url in (self.url, *self.mirrors):
            _check_url(url)
        if self.sha256 is not None:
            digest = self.sha256.strip().lower().removeprefix("sha256:")
            if not is_digest(digest):
                raise InvalidInput(f"bad SHA-256 {self.sha256!r}: expected 64 hexadecimal digits")
            object.__setattr__(self, "sha256", digest)
        if any("{sha256}" in m for m in self.mirrors) and not self.sha256:
            raise InvalidInput("a mirror with {sha256} needs --sha256")

    def sources(self) -> list[str]:
        return [self.url, *(m.replace("{sha256}", self.sha256 or "") for m in self.mirrors)]


def _check_url(url: str) -> None:
    """Refuse what no server can be asked for, as a usage error (exit 2), before any I/O."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError as exc:
        raise InvalidInput(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"bad URL {url!r}: expected http:// or https:// and a host name")
    if any(c <= " " or c == "\x7f" for c in url):
        raise InvalidInput(f"bad URL {url!r}: spaces and control characters must be %-encoded")


@dataclass(frozen=True)
class Result:
    path: Path
    digest: str
    size: int
    outcome: Outcome

    def status_line(self, url: str, where: object = None) -> str:
        """`⬇ fetched: URL (1.2 MiB) → WHERE`, the line `-v` prints."""
        mark = "⬇" if self.outcome in ("fetched", "remote") else "✓"
        return f"{mark} {self.outcome}: {url} ({format_size(self.size)}) → {where or self.path}"


@dataclass
class Fetcher:
    """Fetches into one store; keeps one HTTP client, so a manifest reuses its connections."""

    store: Store
    offline: bool = False
    max_age: float = 0.0
    retries: int = 5
    timeout: float = 60.0
    connect_timeout: float = 30.0
    speed_limit: float = 1024.0  # bytes/s that a transfer must keep up over speed_time (0: off)
    speed_time: float = 30.0
    max_time: float | None = None  # seconds for a whole fetch, retries and mirrors included
    max_size: int | None = None  # bytes a downloaded file may have
    display: Display = field(default_factory=lambda: Display(False))
    remote: Remote | None = None  # the shared tier between this cache and the origin
    _client: httpx.Client | None = field(default=None, init=False, repr=False)
    _client_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()

    def fetch(self, request: Request, copy: Copy | None = None) -> Result:
        """The verified blob for `request`, downloading only when the cache cannot answer.

        A download from the origin also writes `copy` as it streams (see `Copy.holds`).
        """
        try:
            hit = self._hit(request)
            if hit is not None:
                return hit
            if self.offline:
                if self.remote is not None and (found := self._from_remote(request)) is not None:
                    return found
                raise OfflineMiss(f"{request.url} is not in the cache at {self.store.root},"
                                  " and --offline forbids downloading it")
            if self.store.index.read_only:
                raise ReadOnlyCache(self._read_only_miss(request.url, "its index cannot be written"))
            waited_since = time.time()
            with self._lock(request.url):
                return self._hit(request, fresh_since=waited_since) or self._through_remote(request, copy)
        except (OSError, sqlite3.OperationalError) as exc:
            if not is_read_only(exc):
                raise
            raise ReadOnlyCache(self._read_only_miss(request.url, describe(exc)[1])) from None

    def _read_only_miss(self, url: str, why: str) -> str:
        return (f"cannot fetch {url}: the cache at {self.store.root} is read-only ({why}), so it serves"
                " only hits that need no download (--sha256, --max-age, --offline); use a writable"
                " CACHEFIX_CACHE_DIR to download")

    # -- hits ----------------------------------------------------------------------------

    def _hit(self, request: Request, fresh_since: float | None = None) -> Result | None:
        """A hit that needs no network: a pinned digest, offline, `max_age`, or just revalidated
        by the process we waited for."""
        index = self.store.index
        if request.sha256:
            size = self.verified_size(request.sha256)
            if size is None:
                return None
            index.note_use(lambda: index.record_hit(request.url, request.sha256, size))
            return Result(self.store.blob_path(request.sha256), request.sha256, size, "hit")
        entry = index.url(request.url)
        if entry is None or (size := self.verified_size(entry.digest)) is None:
            return None
        fresh = time.time() - entry.checked < self.max_age
        if not (self.offline or fresh or (fresh_since is not None and entry.checked >= fresh_since)):
            return None
        index.note_use(lambda: index.record_hit(request.url, entry.digest, size))
        return Result(self.store.blob_path(entry.digest), entry.digest, size, "hit")

    def verified_size(self, digest: str) -> int | None:
        """The blob's size if it is present and intact; a corrupt blob is deleted (None)."""
        path = self.store.blob_path(digest)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        if self.store.index.fingerprint(digest) == (stat.st_size, stat.st_mtime_ns):
            return stat.st_size
        actual = hash_file(path)
        if actual == digest:
            self.store.index.note_use(lambda: self.store.index.record_blob(digest, stat))
            return stat.st_size
        log.warning("cached blob %s is corrupt (its content hashes to %s); fetching it again",
                    path, actual)
        self.store.remove(digest)
        self.store.index.forget_blob(digest)
        return None

    @contextmanager
    def _lock(self, url: str) -> Iterator[None]:
        """Wait while another process downloads the same URL (best effort, see module doc)."""
        from filelock import FileLock, Timeout

        self.store.ensure()
        lock = FileLock(self.store.lock_dir / f"{url_key(url)}.lock")
        try:
            lock.acquire(timeout=0.5)
        except Timeout:
            log.info("waiting for another cachefix process that is downloading %s", url)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    # -- the remote tier -----------------------------------------------------------------

    def _through_remote(self, request: Request, copy: Copy | None) -> Result:
        """The remote's copy, else one machine's download from the origin, written back."""
        remote = self.remote
        if remote is None:
            return self._download(request, copy)
        found = self._from_remote(request)
        if found is not None:
            return found
        waiting_since = time.time()
        with remote.turn(request.url, lambda: self._from_remote(request, fresh_since=waiting_since)) as found:
            if found is not None:
                return found
            result = self._download(request, copy)
            self._write_back(request, result)
            return result

    def _from_remote(self, request: Request, fresh_since: float | None = None) -> Result | None:
        """A verified copy from the remote that needs no origin: a pinned digest, or a URL record
        fresh per `max_age` (or offline). A stale record's blob is still copied in and recorded,
        so the download that follows only revalidates it (a 304 moves no bytes)."""
        assert self.remote is not None
        index = self.store.index
        if request.sha256:
            size = self._pull(request.sha256)
            if size is None:
                return None
            index.record_hit(request.url, request.sha256, size)
            return Result(self.store.blob_path(request.sha256), request.sha256, size, "remote")
        mapping = self.remote.lookup(request.url)
        if mapping is None or (size := self._pull(mapping.digest)) is None:
            return None
        stat = self.store.blob_path(mapping.digest).stat()
        index.record_download(request.url, mapping.digest, stat, mapping.etag, mapping.last_modified,
                              checked=mapping.checked)
        fresh = (self.offline or time.time() - mapping.checked < self.max_age
                 or (fresh_since is not None and mapping.checked >= fresh_since))
        return Result(self.store.blob_path(mapping.digest), mapping.digest, size, "remote") if fresh else None

    def _pull(self, digest: str) -> int | None:
        """The size of blob `digest`, copied from the remote unless an intact copy is here."""
        assert self.remote is not None
        size = self.verified_size(digest)
        if size is not None:
            return size
        stat = self.remote.pull(self.store, digest)
        if stat is None:
            return None
        self.store.index.record_blob(digest, stat)
        return stat.st_size

    def _write_back(self, request: Request, result: Result) -> None:
        """Share what the origin just gave or confirmed: the blob, then the URL's record."""
        from cachefix.downloads.remote import Mapping

        assert self.remote is not None
        if result.outcome == "fetched":
            self.remote.push(result.path, result.digest)
        entry = self.store.index.url(request.url)
        if result.outcome != "hit" and entry is not None and entry.digest == result.digest:
            self.remote.record(Mapping(request.url, entry.digest, entry.size, entry.etag, entry.last_modified,
                                       entry.checked))

    # -- downloads -----------------------------------------------------------------------

    def _download(self, request: Request, copy: Copy | None = None) -> Result:
        """Try the URL, then each mirror; with an intact unpinned entry, revalidate it first."""
        index = self.store.index
        entry = None if request.sha256 else index.url(request.url)
        cached_size = self.verified_size(entry.digest) if entry else None
        if cached_size is None:
            entry = None
        failures: list[Exception] = []
        pace = self._pace()
        meter = self.display.meter(Path(urlsplit(request.url).path).name or request.url)
        try:
            for source in request.sources():
                validators = (entry.etag, entry.last_modified) if entry and source == request.url else None
                try:
                    transfer = self._transfer(request, source, meter, validators,
                                              attempts=1 if entry else self.retries, pace=pace, copy=copy)
                except (TransferFailed, DigestMismatch) as exc:
                    if entry is not None and cached_size is not None:
                        log.warning("could not revalidate %s (%s); using the cached copy", request.url, exc)
                        index.record_hit(request.url, entry.digest, cached_size)
                        return Result(self.store.blob_path(entry.digest), entry.digest, cached_size, "hit")
                    failures.append(exc)
                    continue
                if transfer is None:
                    assert entry is not None and cached_size is not None
                    index.record_hit(request.url, entry.digest, cached_size, confirmed=True)
                    return Result(self.store.blob_path(entry.digest), entry.digest, cached_size,
                                  "revalidated")
                return Result(self.store.blob_path(transfer.digest), transfer.digest, transfer.size,
                              "fetched")
        finally:
            meter.finish()
        if len(failures) == 1:
            raise failures[0]
        raise TransferFailed("every source failed: " + "; ".join(str(f) for f in failures))

    def _pace(self) -> Pace:
        from cachefix.downloads.http import Pace

        deadline = None if self.max_time is None else time.monotonic() + self.max_time
        return Pace(self.speed_limit, self.speed_time, deadline, self.max_size)

    def _transfer(self, request: Request, source: str, meter: Meter,
                  validators: tuple[str | None, str | None] | None, attempts: int,
                  pace: Pace, copy: Copy | None = None) -> Transfer | None:
        """Download `source` into a temp file and publish it; None on 304 Not Modified.

        `copy` gets the same bytes unless a killed download is resumed (it lacks their start).
        """
        from cachefix.downloads.http import Partial, RetryPolicy, download

        index = self.store.index
        adopted = self._adopt(source)
        copies = (copy,) if copy is not None and adopted is None and copy.start() else ()
        part = adopted or Partial(*self.store.new_temp(_temp_prefix(source)), copies=copies)
        owner = _owner()
        published = keep = False
        _WRITING.add(str(part.path))
        try:
            while True:
                transfer = download(
                    self._http(), source, part, policy=RetryPolicy(attempts=attempts), meter=meter,
                    validators=validators, pace=pace,
                    on_resumable=lambda validator: index.add_partial(part.path, source, validator, owner))
                if transfer is None or not request.sha256 or transfer.digest == request.sha256:
                    break
                if adopted is None:
                    raise DigestMismatch(source, request.sha256, transfer.digest)
                log.warning("resumed download of %s did not verify; downloading it whole", source)
                adopted = None
                part.reset()
            if transfer is None:
                return None
            stat = self.store.publish(part.fd, Path(part.path), transfer.digest)
            published = True
            if copy is not None and copies:
                copy.holds = transfer.digest
            etag, modified = (transfer.etag, transfer.last_modified) if source == request.url else (None, None)
            index.record_download(request.url, transfer.digest, stat, etag, modified)
            return transfer
        except (TransferFailed, KeyboardInterrupt):
            keep = bool(part.offset and part.validator)  # a later run resumes it
            raise
        finally:
            part.close()
            _WRITING.discard(str(part.path))
            if not keep:
                if not published:
                    Path(part.path).unlink(missing_ok=True)
                index.drop_partial(part.path)

    def _adopt(self, url: str) -> Partial | None:
        """Take over an interrupted download of `url` whose process is dead.

        Only a partial written on this boot of this host by a process that no longer exists
        is taken: a live writer's file is never touched, and a file from before a crash may
        hold unwritten blocks. The rename is the claim: of two adopters, one gets ENOENT.
        """
        from cachefix.downloads.http import Partial

        index = self.store.index
        for path, validator, owner in index.partials(url):
            if not _abandoned(path, owner):
                continue
            mine = self.store.tmp_dir / f"{_temp_prefix(url)}{os.urandom(8).hex()}.part"
            index.drop_partial(path)
            try:
                os.rename(path, mine)
            except FileNotFoundError:
                continue
            index.add_partial(mine, url, validator, _owner())
            log.info("resuming an interrupted download of %s", url)
            return Partial(os.open(mine, os.O_RDWR | os.O_CLOEXEC), mine, validator)
        return None

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                from cachefix.downloads.http import make_client

                self._client = make_client(self.timeout, self.connect_timeout)
            return self._client


def _temp_prefix(url: str) -> str:
    return f"{url_key(url)[:16]}."


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _owner() -> str:
    """Who writes a partial: host, boot and process, so a later run can tell it is abandoned."""
    return f"{os.uname().nodename}/{_boot_id()}/{os.getpid()}"


def _abandoned(path: str, owner: str) -> bool:
    """Was this partial left by a dead process (or by this one, no longer writing it)?"""
    host_boot, _, pid = owner.rpartition("/")
    if host_boot != _owner().rpartition("/")[0] or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return path not in _WRITING
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
