"""Bodies large enough to be read from the socket itself after h11's first chunk (`http._body`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachefix import cached_download
from cachefix.downloads.errors import TransferFailed
from cachefix.downloads.http import SOCKET_READS_AFTER
from tests.downloads.conftest import FaultServer, payload, sha

BIG = payload(3 * SOCKET_READS_AFTER)


def test_large_body_arrives_whole(server: FaultServer, cache_dir: Path) -> None:
    assert cached_download(server.add("/f", BIG), sha256=sha(BIG)).read_bytes() == BIG


def test_large_body_dropped_in_the_socket_phase_resumes_with_range(server: FaultServer, cache_dir: Path) -> None:
    cut = 2 * SOCKET_READS_AFTER
    assert cached_download(server.add("/f", BIG, f"drop:{cut}"), sha256=sha(BIG)).read_bytes() == BIG
    assert server.headers_of("/f")[1]["Range"] == f"bytes={cut}-"
    assert server.sent["/f"] == len(BIG)


def test_large_body_stalled_in_the_socket_phase_times_out_and_resumes(server: FaultServer,
                                                                      cache_dir: Path) -> None:
    url = server.add("/f", BIG, "stall:2")  # stalls half-way, long after h11's first chunk
    assert cached_download(url, sha256=sha(BIG), timeout=0.3).read_bytes() == BIG
    assert "Range" in server.headers_of("/f")[1]


def test_large_body_shorter_than_announced_fails(server: FaultServer, cache_dir: Path) -> None:
    with pytest.raises(TransferFailed, match="could not download"):
        cached_download(server.add("/f", BIG, *["lie"] * 3), retries=2)
    assert not list((cache_dir / "sha256").rglob("*.*"))


def test_large_body_over_tls(tls_server: FaultServer, cache_dir: Path) -> None:
    assert cached_download(tls_server.add("/f", BIG), sha256=sha(BIG)).read_bytes() == BIG


def test_second_large_download_after_a_closed_connection(server: FaultServer, cache_dir: Path) -> None:
    other = payload(len(BIG), seed=1)
    cached_download(server.add("/a", BIG), sha256=sha(BIG))
    assert cached_download(server.add("/b", other), sha256=sha(other)).read_bytes() == other
