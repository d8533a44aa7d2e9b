"""Issue 8.18: a blob the index points to that was deleted is corrupt, not "0 corrupt"."""

from __future__ import annotations

from pathlib import Path

from tests.downloads import conftest
from tests.downloads.conftest import FaultServer, cachefix, payload, sha

server, cache_dir = conftest.server, conftest.cache_dir  # the download tests' fixtures, shared

KEPT, LOST = payload(10_000, seed=1), payload(12_000, seed=2)


def blob(cache_dir: Path, data: bytes) -> Path:
    return cache_dir / "sha256" / sha(data)[:2] / sha(data)


def test_a_missing_blob_fails_verify_and_repair_fetches_it_again(server: FaultServer, cache_dir: Path) -> None:
    for path, data in (("/kept", KEPT), ("/lost", LOST)):
        assert cachefix("fetch", server.add(path, data)).returncode == 0
    blob(cache_dir, LOST).unlink()
    done = cachefix("cache", "verify")
    assert done.returncode == 1 and "missing" in done.stdout and "1 missing" in done.stdout
    assert server.url("/lost") in done.stdout
    done = cachefix("cache", "verify", "--repair")
    assert done.returncode == 0 and "1 fetched again" in done.stdout
    assert blob(cache_dir, LOST).read_bytes() == LOST
    assert cachefix("cache", "verify").returncode == 0


def test_repair_drops_a_missing_blob_it_cannot_fetch(server: FaultServer, cache_dir: Path) -> None:
    url = server.add("/lost", LOST)
    assert cachefix("fetch", url, "--sha256", sha(LOST)).returncode == 0
    blob(cache_dir, LOST).unlink()
    del server.routes["/lost"]
    done = cachefix("cache", "verify", "--repair")
    assert done.returncode == 0 and "1 dropped" in done.stdout and "HTTP 404" in done.stderr
    assert cachefix("cache", "verify").returncode == 0
    offline = cachefix("fetch", url, "--offline")
    assert offline.returncode == 1 and "not in the cache" in offline.stderr
