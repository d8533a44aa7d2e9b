"""The remote as the fetch path sees it: never trusted, and never the reason a fetch fails.

Every blob read from the remote is hashed as it streams into a temp file and published only
when the digest matches; a corrupt object is reported and the origin's copy replaces it.
Any failure of the remote (refused, timed out, denied, a server error, the client library
missing) turns it off for the rest of the process with one warning, and the fetch carries on
from the origin: a remote can cost a few seconds of timeout, never a failed build.

Machines coordinate through a lease per URL (`Tier.claim`, a conditional create): the first
to miss downloads from the origin while the others poll the remote for its result. A lease
is renewed while its download runs and taken over once it is older than `LEASE_TTL`, so a
crashed machine delays the others by at most that. Like the local lock, it only saves
bandwidth: without it (the CAS protocol) each machine downloads and publishes the same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from cachefix.downloads.index import url_key
from cachefix.downloads.remote import Mapping, Tier, chosen, open_tier
from cachefix.downloads.store import Store

log = logging.getLogger("cachefix.downloads")
T = TypeVar("T")

LEASE_TTL = 60.0  # seconds a lease holds without renewal
LEASE_POLL = 0.5  # seconds between looks at the remote while another machine downloads
_warned = threading.Event()  # one warning per process, however many fetchers and threads


def configured(flag: str | None = None, *, disabled: bool = False) -> Remote | None:
    """The remote that `--remote`/`--no-remote` or `CACHEFIX_REMOTE` names, if any."""
    spec = chosen(flag, disabled=disabled)
    return None if spec is None else Remote.open(spec)


class Remote:
    """A tier behind a guard: each call answers a default instead of raising once it failed."""

    def __init__(self, tier: Tier) -> None:
        self.tier = tier
        self.down: str | None = None  # why the remote was given up, for this process
        self.corrupt: set[str] = set()  # digests whose remote copy failed verification

    @classmethod
    def open(cls, spec: str) -> Remote:
        """Open `spec`; a bad spec is a usage error, a missing S3 client a clear one."""
        try:
            return cls(open_tier(spec))
        except ImportError as exc:
            from cachefix.downloads.errors import InvalidInput

            raise InvalidInput(f"remote {spec} needs the obstore package, a dependency of cachefix"
                               f" ({exc}): pip install obstore") from None

    def call(self, what: str, action: Callable[[], T], default: T, *, warn: bool = True) -> T:
        """`action()`, or `default` when the remote is down or fails now (it is then given up,
        with a warning unless the caller reports the failure itself)."""
        if self.down is not None:
            return default
        try:
            return action()
        except Exception as exc:  # any failure of a remote store must degrade, never fail the fetch
            self.down = f"{what}: {_one_line(exc)}"
            if _warned.is_set() or not warn:
                log.info("remote %s failed (%s)", self.tier.location, self.down)
            else:
                _warned.set()
                log.warning("remote %s failed (%s); downloading from the origin without it for the rest"
                            " of this run", self.tier.location, self.down)
            return default

    # -- URL records ---------------------------------------------------------------------

    def lookup(self, url: str) -> Mapping | None:
        data = self.call(f"reading the record of {url}", lambda: self.tier.read_record(url_key(url)), None)
        return None if data is None else Mapping.from_json(data, url)

    def record(self, mapping: Mapping) -> None:
        self.call(f"writing the record of {mapping.url}",
                  lambda: self.tier.write_record(url_key(mapping.url), mapping.to_json()), None)

    # -- blobs ---------------------------------------------------------------------------

    def pull(self, store: Store, digest: str) -> os.stat_result | None:
        """Copy blob `digest` into `store`, verified; None when absent, corrupt or failing."""
        from cachefix.downloads.http import Partial

        fd, temp = store.new_temp("remote.")
        part = Partial(fd, temp)
        published = False
        try:
            if not self.call(f"downloading {digest}", lambda: self.tier.read_blob(digest, part.write), False):
                return None
            actual = part.digest()
            if actual != digest:
                self.corrupt.add(digest)
                log.warning("the remote %s holds a corrupt copy of %s (its content hashes to %s); "
                            "downloading it from the origin, whose copy replaces it",
                            self.tier.location, digest, actual)
                return None
            stat = store.publish(fd, temp, digest)
            published = True
            return stat
        finally:
            part.close()
            if not published:
                Path(temp).unlink(missing_ok=True)

    def push(self, path: Path, digest: str) -> bool | None:
        """Upload a verified local blob: True when sent, False when the remote had it, None on failure.

        A copy this process found corrupt is always replaced.
        """
        if digest not in self.corrupt:
            there = self.call(f"looking for {digest}", lambda: self.tier.has_blob(digest), None)
            if there is None or there:
                return None if there is None else False
        sent = self.call(f"uploading {digest}", lambda: self.tier.write_blob(digest, path) or True, None)
        if sent:
            self.corrupt.discard(digest)
        return sent

    # -- leases --------------------------------------------------------------------------

    @contextmanager
    def turn(self, url: str, arrived: Callable[[], T | None]) -> Iterator[T | None]:
        """Wait while another machine downloads `url`, yielding what it published (`arrived()`);
        or yield None holding the lease, for the caller to download it."""
        key = url_key(url)
        said = False
        while True:
            claimed = self.call(f"taking the lease on {url}", lambda: self.tier.claim(key, _lease()), None)
            if claimed is None or claimed:
                break
            if not said:
                log.info("waiting for another machine that is downloading %s", url)
                said = True
            time.sleep(LEASE_POLL)
            found = arrived()
            if found is not None:
                yield found
                return
            if self._expired(key):
                log.info("the lease on %s expired; taking it over", url)
                self.call(f"releasing the lease on {url}", lambda: self.tier.release(key), None)
        if not claimed:
            yield None
            return
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._renew, args=(key, stop), daemon=True)
        heartbeat.start()
        try:
            yield None
        finally:
            stop.set()
            heartbeat.join()
            self.call(f"releasing the lease on {url}", lambda: self.tier.release(key), None)

    def _expired(self, key: str) -> bool:
        data = self.call("reading a lease", lambda: self.tier.read_claim(key), None)
        if data is None:
            return False  # gone (released): the next claim will tell
        try:
            return float(json.loads(data)["expires"]) < time.time()
        except (ValueError, TypeError, KeyError):
            return True  # unreadable: nobody can be renewing it in our format

    def _renew(self, key: str, stop: threading.Event) -> None:
        while not stop.wait(LEASE_TTL / 3):
            self.call("renewing a lease", lambda: self.tier.renew(key, _lease()), None)


def _lease() -> bytes:
    return json.dumps({"owner": f"{os.uname().nodename}/{os.getpid()}", "expires": time.time() + LEASE_TTL}).encode()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
