"""The Python API against a faulty server: what a caller of `cached_download` relies on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cachefix import cached_download
from cachefix.downloads.errors import DigestMismatch, InvalidInput, OfflineMiss, TransferFailed
from cachefix.downloads.http import RetryPolicy
from tests.downloads.conftest import FaultServer, payload, sha

DATA = payload(300_000)


def blobs(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "sha256").rglob("*") if p.is_file())


def test_download_is_stored_by_digest_and_returned(server: FaultServer, cache_dir: Path) -> None:
    path = cached_download(server.add("/f.bin", DATA), sha256=sha(DATA))
    assert path == cache_dir / "sha256" / sha(DATA)[:2] / sha(DATA)
    assert path.read_bytes() == DATA
    assert not os.access(path, os.W_OK) or os.geteuid() == 0
    assert path.stat().st_mode & 0o777 == 0o444


def test_pinned_hit_needs_no_network(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    url = server.add("/f.bin", DATA)
    cached_download(url, sha256=sha(DATA))
    server.shutdown()  # the server is gone: a pinned hit must not notice
    out = cached_download(url, tmp_path / "out.bin", sha256=sha(DATA))
    assert out.read_bytes() == DATA


def test_same_content_under_two_urls_is_stored_once(server: FaultServer, cache_dir: Path) -> None:
    first = cached_download(server.add("/a", DATA))
    second = cached_download(server.add("/b", DATA))
    assert first == second and len(blobs(cache_dir)) == 1


def test_dest_is_a_private_copy(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "out.bin"
    assert cached_download(server.add("/f", DATA), dest) == dest
    dest.write_bytes(b"edited")  # editing DEST must not edit the cache
    assert cached_download(server.add("/f", DATA), sha256=sha(DATA)).read_bytes() == DATA
    assert not list(dest.parent.glob(".*cachefix"))  # no temp file left beside DEST


def test_link_option_hardlinks_the_read_only_entry(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    dest = cached_download(server.add("/f", DATA), tmp_path / "out.bin", link=True)
    assert dest.stat().st_nlink == 2 and dest.stat().st_mode & 0o777 == 0o444


def test_connection_dropped_mid_body_resumes_with_range(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, "drop:100000")
    assert cached_download(url, sha256=sha(DATA)).read_bytes() == DATA
    second = server.headers_of("/f")[1]
    assert second["Range"] == "bytes=100000-" and second["If-Range"] == server.routes["/f"].etag
    assert server.sent["/f"] == len(DATA)  # not one byte sent twice


def test_server_ignoring_range_restarts_cleanly(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, "drop:100000", "ignore-range")
    assert cached_download(url, sha256=sha(DATA)).read_bytes() == DATA


def test_file_changed_on_server_between_attempts_is_not_spliced(server: FaultServer, cache_dir: Path) -> None:
    new = payload(len(DATA), seed=1)
    url = server.add("/f", DATA, "drop:100000", "change", next_content=new)
    assert cached_download(url).read_bytes() == new  # If-Range did not match: the whole new file


def test_500_then_200_is_retried(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, "status:500", "status:503")
    assert cached_download(url).read_bytes() == DATA
    assert len(server.headers_of("/f")) == 3


def test_429_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(base=1.0, cap=60.0)
    assert policy.delay(1, "7") == 7.0
    assert policy.delay(1, "3600") == 60.0
    assert 4.0 <= policy.delay(4) <= 8.0  # jittered exponential backoff: base * 2**3 * [0.5, 1]


def test_429_is_retried(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, "status:429:1")
    assert cached_download(url).read_bytes() == DATA


def test_404_fails_at_once_with_a_clear_message(server: FaultServer, cache_dir: Path) -> None:
    with pytest.raises(TransferFailed, match=r"HTTP 404 Not Found"):
        cached_download(server.url("/missing"))
    assert len(server.requests) == 1


def test_persistent_500_gives_up_after_the_retries(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, *["status:500"] * 10)
    with pytest.raises(TransferFailed, match=r"HTTP 500 .*after 3 attempts"):
        cached_download(url, retries=3)


def test_redirect_chain_is_followed(server: FaultServer, cache_dir: Path) -> None:
    target = server.add("/real", DATA)
    server.add("/hop2", b"", redirect=target)
    url = server.add("/hop1", b"", redirect=server.url("/hop2"))
    assert cached_download(url, sha256=sha(DATA)).read_bytes() == DATA


def test_wrong_bytes_cache_nothing_and_leave_dest_alone(server: FaultServer, cache_dir: Path,
                                                        tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"previous")
    url = server.add("/f", DATA, "wrong")
    with pytest.raises(DigestMismatch) as caught:
        cached_download(url, dest, sha256=sha(DATA))
    assert sha(DATA) in str(caught.value)
    assert sha(bytes([DATA[0] ^ 0xFF]) + DATA[1:]) in str(caught.value)
    assert dest.read_bytes() == b"previous"
    assert blobs(cache_dir) == [] and list((cache_dir / "tmp").iterdir()) == []


def test_server_lying_about_length_fails(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, *["lie"] * 5)
    with pytest.raises(TransferFailed, match="could not download"):
        cached_download(url, retries=2)
    assert blobs(cache_dir) == []


def test_stalled_server_times_out_and_resumes(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, "stall:2")
    assert cached_download(url, sha256=sha(DATA), timeout=0.3).read_bytes() == DATA
    assert "Range" in server.headers_of("/f")[1]


def test_slow_server_still_completes(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, chunk_delay=0.02)
    assert cached_download(url, sha256=sha(DATA)).read_bytes() == DATA


def test_mirrors_are_tried_in_order(server: FaultServer, cache_dir: Path) -> None:
    mirror = server.add("/mirror/f", DATA)
    url = server.add("/f", DATA, *["status:500"] * 5)
    path = cached_download(url, sha256=sha(DATA), mirrors=[server.url("/dead"), mirror], retries=1)
    assert path.read_bytes() == DATA
    assert [p for p, _ in server.requests] == ["/f", "/dead", "/mirror/f"]


def test_content_addressed_mirror(server: FaultServer, cache_dir: Path) -> None:
    server.add(f"/cas/{sha(DATA)}", DATA)
    path = cached_download(server.url("/gone"), sha256=sha(DATA), mirrors=[server.url("/cas/{sha256}")])
    assert path.read_bytes() == DATA


def test_wrong_mirror_content_is_reported_with_both_digests(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, "wrong")
    mirror = server.add("/m", DATA, "wrong")
    with pytest.raises(TransferFailed, match=f"every source failed.*expected {sha(DATA)}.*got"):
        cached_download(url, sha256=sha(DATA), mirrors=[mirror])


def test_unpinned_hit_revalidates_with_etag(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    cached_download(url)
    assert cached_download(url).read_bytes() == DATA
    revalidation = server.headers_of("/f")[1]
    assert revalidation["If-None-Match"] == server.routes["/f"].etag
    assert server.bodies["/f"] == 1  # the 304 sent no body


def test_etag_change_fetches_the_new_content(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    cached_download(url)
    server.routes["/f"].content = new = payload(1000, seed=2)
    assert cached_download(url).read_bytes() == new


def test_max_age_skips_revalidation(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    cached_download(url)
    cached_download(url, max_age=3600)
    assert len(server.requests) == 1


def test_unreachable_server_falls_back_to_the_cached_copy(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    cached_download(url)
    server.routes["/f"].faults.extend(["status:500"] * 5)
    assert cached_download(url).read_bytes() == DATA


def test_offline_hit_and_miss(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    cached_download(url)
    assert cached_download(url, offline=True).read_bytes() == DATA
    with pytest.raises(OfflineMiss, match="--offline"):
        cached_download(server.add("/other", DATA + b"x"), offline=True)
    assert len(server.requests) == 1


def test_corrupted_blob_is_detected_and_fetched_again(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    path = cached_download(url, sha256=sha(DATA))
    os.chmod(path, 0o644)
    with open(path, "r+b") as blob:
        blob.write(b"\0" * 10)
    assert cached_download(url, sha256=sha(DATA)).read_bytes() == DATA
    assert server.bodies["/f"] == 2


def test_bad_inputs_are_rejected_before_any_request(server: FaultServer, cache_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="bad URL"):
        cached_download("ftp://example.invalid/x")
    with pytest.raises(InvalidInput, match="bad SHA-256"):
        cached_download(server.url("/f"), sha256="abc")
    assert server.requests == []


def test_uppercase_and_prefixed_digests_are_accepted(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    assert cached_download(url, sha256="sha256:" + sha(DATA).upper()).read_bytes() == DATA


def test_failed_download_resumes_on_the_next_call(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA, "drop:100000")
    with pytest.raises(TransferFailed, match="after 1 attempt"):
        cached_download(url, retries=1)
    assert cached_download(url, sha256=sha(DATA)).read_bytes() == DATA
    assert server.headers_of("/f")[1]["Range"] == "bytes=100000-"
    assert server.sent["/f"] == len(DATA)


def test_unreadable_index_is_moved_aside_and_blobs_still_serve(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/f", DATA)
    cached_download(url, sha256=sha(DATA))
    for name in ("index.sqlite-wal", "index.sqlite-shm"):
        (cache_dir / name).unlink(missing_ok=True)
    (cache_dir / "index.sqlite").write_bytes(b"this is not a database" * 100)
    code = "import sys; from cachefix import cached_download; print(cached_download(sys.argv[1], sha256=sys.argv[2]))"
    done = subprocess.run([sys.executable, "-c", code, url, sha(DATA)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).read_bytes() == DATA
    assert list(cache_dir.glob("index.sqlite.corrupt-*"))
    assert server.bodies["/f"] == 1  # the blob was re-hashed and served, not downloaded again


def test_https_with_a_trusted_certificate(tls_server: FaultServer, cache_dir: Path) -> None:
    url = tls_server.add("/f", DATA)
    assert url.startswith("https://")
    assert cached_download(url, sha256=sha(DATA)).read_bytes() == DATA


def test_plain_http_redirect_to_https_is_verified(server: FaultServer, tls_server: FaultServer,
                                                  cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.add("/f", b"", redirect=tls_server.add("/f", DATA))
    assert cached_download(url).read_bytes() == DATA
    monkeypatch.delenv("SSL_CERT_FILE")  # now the certificate is untrusted: no retries, a clear error
    with pytest.raises(TransferFailed, match=r"CERTIFICATE_VERIFY_FAILED.*after 1 attempt\)"):
        cached_download(server.add("/g", b"", redirect=tls_server.add("/g", DATA)))
