"""One exception tree for the download runtime, so callers catch `DownloadError` only.

Every message is a complete sentence fit for one line on stderr: the CLI prints it as is.
"""

from __future__ import annotations


class DownloadError(Exception):
    """A fetch, extraction or cache operation that did not give the caller a verified result."""


class InvalidInput(DownloadError):
    """The caller's input is wrong (bad URL, malformed digest, bad manifest line): exit 2."""


class TransferFailed(DownloadError):
    """The network or the server failed, after every retry and every mirror."""


class DigestMismatch(DownloadError):
    """The bytes did not have the SHA-256 the caller pinned; nothing was cached."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(f"SHA-256 mismatch for {url}: expected {expected}, got {actual}")
        self.url, self.expected, self.actual = url, expected, actual


class OfflineMiss(DownloadError):
    """`--offline` was asked and the cache does not hold the file."""


class ReadOnlyCache(DownloadError):
    """A miss in a cache that cannot be written (hits from it still work)."""


class ArchiveError(DownloadError):
    """An archive is broken, hostile (names the member) or over a limit; nothing was extracted."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI timeout, `kill`): unwinds like Ctrl-C, so a resumable partial is kept,
    a useless one removed, and locks released, instead of dying mid-write."""


def describe(exc: Exception) -> tuple[int, str]:
    """Exit status and one-line message for any failure: 2 for bad input, else 1."""
    import sqlite3

    if isinstance(exc, DownloadError):
        return (2 if isinstance(exc, InvalidInput) else 1), str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return 1, f"{where}{exc.strerror or exc}"
    if isinstance(exc, sqlite3.Error):
        return 1, f"the cache index failed: {exc}"
    return 1, f"internal error ({type(exc).__name__}: {exc}); set CACHEFIX_DEBUG=1 for a traceback"
