"""`-o DEST` on a download: DEST appears only once the bytes verify, whole after retries and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachefix import cached_download
from cachefix.downloads.errors import DigestMismatch, TransferFailed
from tests.downloads.conftest import FaultServer, payload, sha

DATA = payload(3_000_000)  # many chunks: several batches for the hashing thread


def blobs(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "sha256").rglob("*") if p.is_file())


def temps_beside(dest: Path) -> list[Path]:
    return list(dest.parent.glob(f".{dest.name}.*"))


def test_cold_fetch_writes_dest_and_the_cache_as_two_files(server: FaultServer, cache_dir: Path,
                                                           tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    assert cached_download(server.add("/f", DATA), dest, sha256=sha(DATA)) == dest
    assert dest.read_bytes() == DATA and temps_beside(dest) == []
    blob, = blobs(cache_dir)
    assert blob.read_bytes() == DATA and dest.stat().st_ino != blob.stat().st_ino
    dest.write_bytes(b"edited")  # DEST is the user's: editing it leaves the cache intact
    assert blob.read_bytes() == DATA


def test_mismatch_leaves_no_dest_no_temp_and_nothing_cached(server: FaultServer, cache_dir: Path,
                                                            tmp_path: Path) -> None:
    dest = tmp_path / "new.bin"
    with pytest.raises(DigestMismatch):
        cached_download(server.add("/f", DATA, "wrong"), dest, sha256=sha(DATA))
    assert not dest.exists() and temps_beside(dest) == []
    assert blobs(cache_dir) == [] and list((cache_dir / "tmp").iterdir()) == []


def test_failed_transfer_keeps_the_old_dest_and_leaves_no_temp(server: FaultServer, cache_dir: Path,
                                                               tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(TransferFailed):
        cached_download(server.add("/f", DATA, "drop:1000000"), dest, sha256=sha(DATA), retries=1)
    assert dest.read_bytes() == b"previous" and temps_beside(dest) == []


@pytest.mark.parametrize("faults", [("drop:1000000",), ("drop:1000000", "ignore-range"), ("stall:2",)],
                         ids=["resumed-with-range", "restarted-from-zero", "stalled-then-resumed"])
def test_dest_is_whole_after_a_retried_transfer(server: FaultServer, cache_dir: Path, tmp_path: Path,
                                                faults: tuple[str, ...]) -> None:
    dest = tmp_path / "out.bin"
    cached_download(server.add("/f", DATA, *faults), dest, sha256=sha(DATA), timeout=0.5)
    assert dest.read_bytes() == DATA and temps_beside(dest) == []


def test_dest_is_the_mirrors_bytes_after_a_wrong_first_source(server: FaultServer, cache_dir: Path,
                                                              tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    url = server.add("/f", DATA, "wrong")
    cached_download(url, dest, sha256=sha(DATA), mirrors=[server.add("/m", DATA)])
    assert dest.read_bytes() == DATA and temps_beside(dest) == []


def test_download_resumed_from_an_earlier_call_still_writes_dest(server: FaultServer, cache_dir: Path,
                                                                  tmp_path: Path) -> None:
    url = server.add("/f", DATA, "drop:1000000")
    with pytest.raises(TransferFailed):
        cached_download(url, retries=1)
    dest = tmp_path / "out.bin"
    cached_download(url, dest, sha256=sha(DATA))
    assert server.headers_of("/f")[1]["Range"] == "bytes=1000000-"
    assert dest.read_bytes() == DATA and temps_beside(dest) == []
