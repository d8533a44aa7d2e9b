"""The last line of defence: every failure of the download commands is one line and a status.

Known failures (bad input, the network, the disk, the index) have their own messages; only a
real bug reaches "internal error", which says how to get the traceback.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from cachefix.cli import main
from cachefix.downloads.errors import DigestMismatch, InvalidInput, TransferFailed, describe


@pytest.mark.parametrize(("exc", "expected"), [
    (InvalidInput("bad URL 'x'"), (2, "bad URL 'x'")),
    (TransferFailed("could not download u"), (1, "could not download u")),
    (DigestMismatch("u", "a" * 64, "b" * 64), (1, f"SHA-256 mismatch for u: expected {'a' * 64}, got {'b' * 64}")),
    (OSError(errno.ENOSPC, "No space left on device", "/c/tmp/x.part"), (1, "/c/tmp/x.part: No space left on device")),
    (sqlite3.OperationalError("database is locked"), (1, "the cache index failed: database is locked")),
])
def test_known_failures_have_their_own_message(exc: Exception, expected: tuple[int, str]) -> None:
    assert describe(exc) == expected


def test_a_bug_is_an_internal_error_with_a_way_to_the_traceback(cache_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("cachefix.downloads.inventory.survey", bug)
    assert main(["cache", "stats"]) == 1
    assert capsys.readouterr().err == ("cachefix: error: internal error (ZeroDivisionError: division by zero);"
                                       " set CACHEFIX_DEBUG=1 for a traceback\n")
    monkeypatch.setenv("CACHEFIX_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["cache", "stats"])
