"""The SQLite index: URL → digest and HTTP validators, use counts, and blob fingerprints.

The index is metadata, never the truth about content: a blob's name is its digest and every
blob was hashed before it was published. Losing the index costs re-downloads, not wrong
bytes, so a corrupt index file is moved aside and a fresh one started. Many processes share
it through WAL mode and a busy timeout; every write is one short transaction.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("cachefix.downloads")

SCHEMA_VERSION = 1
SQLITE_READONLY, SQLITE_CANTOPEN = 8, 14
SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    url TEXT PRIMARY KEY,
    url_key TEXT NOT NULL,          -- sha256(url): the shell library's cache key
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT,
    last_modified TEXT,
    checked REAL NOT NULL,          -- when the server last confirmed this content
    first_use REAL NOT NULL,
    last_use REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    bytes_served INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS urls_by_key ON urls(url_key);
CREATE INDEX IF NOT EXISTS urls_by_digest ON urls(digest);
CREATE TABLE IF NOT EXISTS blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,      -- with size, the cheap fingerprint checked on every hit
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS partials (
    path TEXT PRIMARY KEY,          -- an interrupted download that a later run may resume
    url TEXT NOT NULL,
    validator TEXT NOT NULL,        -- the ETag or Last-Modified to send as If-Range
    owner TEXT NOT NULL             -- host/boot/pid of the writer: resume only when it is dead
);
CREATE INDEX IF NOT EXISTS partials_by_url ON partials(url);
"""


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


@dataclass(frozen=True)
class UrlEntry:
    url: str
    digest: str
    size: int
    etag: str | None
    last_modified: str | None
    checked: float
    first_use: float
    last_use: float
    hits: int
    bytes_served: int


@dataclass(frozen=True)
class BlobUse:
    """A blob as eviction sees it: when any URL last used it."""

    digest: str
    size: int
    last_use: float


@dataclass(frozen=True)
class Totals:
    urls: int
    hits: int
    bytes_served: int
    oldest_use: float | None


class Index:
    """Thread-safe handle: one connection per thread, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read_only = False  # set once the cache turned out not to be writable
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise
                aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
                log.warning("index %s is unreadable (%s); moved it to %s and started a new one",
                            self.path, exc, aside.name)
                os.replace(self.path, aside)
                conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if not is_read_only(exc) or not self.path.is_file():
                raise
            conn.close()
            return self._connect_immutable()
        if version != SCHEMA_VERSION:
            _enable_wal(conn)
            with _transaction(conn):
                for statement in SCHEMA.split(";"):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _connect_immutable(self) -> sqlite3.Connection:
        """A read-only file in a folder we cannot write (a cache shared read-only into CI or a
        container, a read-only mount): SQLite cannot even create the WAL's shared-memory file
        there, so open it as immutable, which nobody can be writing to."""
        self.read_only = True
        uri = f"file:{quote(str(self.path.absolute()))}?immutable=1"
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)

    def note_use(self, write: Callable[[], None]) -> None:
        """Record a use (hit counts, fingerprints): skipped, not failed, on a read-only cache."""
        if self.read_only:
            return
        try:
            write()
        except sqlite3.OperationalError as exc:
            if not is_read_only(exc):
                raise
            self.read_only = True
            log.info("the cache index %s is read-only: hits are served but not recorded", self.path)

    # -- reads ---------------------------------------------------------------------------

    def url(self, url: str) -> UrlEntry | None:
        row = self.db.execute(
            "SELECT url, digest, size, etag, last_modified, checked, first_use, last_use, hits,"
            " bytes_served FROM urls WHERE url = ?", (url,)).fetchone()
        return UrlEntry(*row) if row else None

    def urls_by_key(self, key: str) -> list[UrlEntry]:
        rows = self.db.execute(
            "SELECT url, digest, size, etag, last_modified, checked, first_use, last_use, hits,"
            " bytes_served FROM urls WHERE url_key = ?", (key,)).fetchall()
        return [UrlEntry(*row) for row in rows]

    def urls_for(self, digest: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT url FROM urls WHERE digest = ?", (digest,))]

    def digests(self) -> set[str]:
        """Every digest the index points to, as a blob record or from a URL."""
        return {r[0] for r in self.db.execute("SELECT digest FROM blobs UNION SELECT digest FROM urls")}

    def fingerprint(self, digest: str) -> tuple[int, int] | None:
        """(size, mtime_ns) recorded when the blob was last verified."""
        return self.db.execute(
            "SELECT size, mtime_ns FROM blobs WHERE digest = ?", (digest,)).fetchone()

    def blob_uses(self) -> list[BlobUse]:
        """Every recorded blob with the last use of any URL pointing at it, oldest first."""
        rows = self.db.execute(
            "SELECT b.digest, b.size, COALESCE(MAX(u.last_use), b.created) AS used"
            " FROM blobs b LEFT JOIN urls u ON u.digest = b.digest"
            " GROUP BY b.digest ORDER BY used").fetchall()
        return [BlobUse(*row) for row in rows]

    def totals(self) -> Totals:
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(hits), 0), COALESCE(SUM(bytes_served), 0), MIN(first_use)"
            " FROM urls").fetchone()
        return Totals(*row)

    def partials(self, url: str) -> list[tuple[str, str, str]]:
        """(path, validator, owner) of interrupted downloads of `url`."""
        return self.db.execute(
            "SELECT path, validator, owner FROM partials WHERE url = ?", (url,)).fetchall()

    # -- writes --------------------------------------------------------------------------

    def record_blob(self, digest: str, stat: os.stat_result) -> None:
        self.db.execute(
            "INSERT INTO blobs (digest, size, mtime_ns, created) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(digest) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns",
            (digest, stat.st_size, stat.st_mtime_ns, time.time()))

    def record_download(self, url: str, digest: str, stat: os.stat_result,
                        etag: str | None, last_modified: str | None, checked: float | None = None) -> None:
        """A fresh download of `url` was published as blob `digest`; `checked` when the origin
        confirmed it earlier (a copy from the remote tier), else now."""
        now = time.time()
        with _transaction(self.db):
            self.record_blob(digest, stat)
            self.db.execute(
                "INSERT INTO urls (url, url_key, digest, size, etag, last_modified, checked,"
                " first_use, last_use) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(url) DO UPDATE SET digest = excluded.digest, size = excluded.size,"
                " etag = excluded.etag, last_modified = excluded.last_modified,"
                " checked = excluded.checked, last_use = excluded.last_use",
                (url, url_key(url), digest, stat.st_size, etag, last_modified,
                 now if checked is None else checked, now, now))

    def record_hit(self, url: str, digest: str, size: int, *, confirmed: bool = False) -> None:
        """`url` was served from blob `digest`; `confirmed` when the server just said 304."""
        now = time.time()
        self.db.execute(
            "INSERT INTO urls (url, url_key, digest, size, checked, first_use, last_use, hits,"
            " bytes_served) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)"
            " ON CONFLICT(url) DO UPDATE SET digest = excluded.digest, size = excluded.size,"
            " last_use = excluded.last_use, hits = hits + 1, bytes_served = bytes_served + excluded.size,"
            " checked = CASE WHEN digest = excluded.digest THEN MAX(checked, excluded.checked)"
            " ELSE excluded.checked END,"
            " etag = CASE WHEN digest = excluded.digest THEN etag END,"
            " last_modified = CASE WHEN digest = excluded.digest THEN last_modified END",
            (url, url_key(url), digest, size, now if confirmed else 0.0, now, now, size))

    def forget_blob(self, digest: str) -> None:
        """The blob was corrupt and deleted; its URLs keep their history for the re-download."""
        self.db.execute("DELETE FROM blobs WHERE digest = ?", (digest,))

    def evict(self, digest: str) -> None:
        """The blob was evicted: drop it and every URL that pointed at it."""
        with _transaction(self.db):
            self.db.execute("DELETE FROM blobs WHERE digest = ?", (digest,))
            self.db.execute("DELETE FROM urls WHERE digest = ?", (digest,))

    def add_partial(self, path: Path, url: str, validator: str, owner: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO partials (path, url, validator, owner) VALUES (?, ?, ?, ?)",
                        (str(path), url, validator, owner))

    def drop_partial(self, path: Path | str) -> None:
        self.db.execute("DELETE FROM partials WHERE path = ?", (str(path),))


def is_read_only(exc: BaseException) -> bool:
    """Did this fail because the cache cannot be written (permissions, read-only mount)?"""
    if isinstance(exc, OSError):
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (SQLITE_READONLY, SQLITE_CANTOPEN)
    return isinstance(exc, sqlite3.OperationalError) and any(
        text in str(exc) for text in ("readonly", "unable to open"))


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch a new database to WAL. The switch needs the database to itself and, unlike a
    write, fails at once ("database is locked") instead of waiting when another connection
    is creating it at the same moment, so wait here as the busy timeout would."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # answers the old mode where WAL is impossible
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE: take the write lock up front, so the busy timeout (not a deadlock) applies."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
