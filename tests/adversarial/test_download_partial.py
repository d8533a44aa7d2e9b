"""Issue 8.21: a SIGTERM'd fetch leaves a partial download that `cache stats` shows and that
the next fetch of the same URL resumes with a Range request instead of starting over. A
partial that no server could resume (no ETag or Last-Modified) is removed on the way out."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cachefix.downloads.index import url_key
from tests.downloads import conftest
from tests.downloads.conftest import FaultServer, cachefix, payload, sha

server, cache_dir = conftest.server, conftest.cache_dir  # the download tests' fixtures, shared

BIG = payload(3_000_000, seed=7)  # sent in 64 KiB pieces 0.2 s apart: the kill lands mid-transfer


def _written(cache: Path, url: str) -> int:
    """How much of `url` a fetch has written to its partial file: what the server has sent runs
    ahead of it (socket buffers, a loaded machine)."""
    sizes = []
    for part in cache.glob(f"**/{url_key(url)[:16]}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            sizes.append(part.stat().st_size)
    return max(sizes, default=0)


def test_sigterm_leaves_a_partial_that_stats_shows_and_fetch_resumes(server: FaultServer, cache_dir: Path,
                                                                     tmp_path: Path) -> None:
    url = server.add("/big.bin", BIG, chunk_delay=0.2)
    proc = subprocess.Popen([sys.executable, "-m", "cachefix", "fetch", url, "-o", str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    useless = server.add("/no-validators.bin", BIG, chunk_delay=0.2, validators=False)
    other = subprocess.Popen([sys.executable, "-m", "cachefix", "fetch", useless],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while (_written(cache_dir, url) < 300_000 or server.sent["/no-validators.bin"] < 300_000) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    for child in (proc, other):
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(timeout=30) == 128 + signal.SIGTERM
    stats = cachefix("cache", "stats", "--downloads")
    assert stats.returncode == 0 and "1 partial downloads" in stats.stdout, stats.stdout  # not the unresumable one
    report = json.loads(cachefix("cache", "stats", "--downloads", "--json").stdout)
    assert report["caches"][0]["partial_files"] == 1 and report["caches"][0]["partial_bytes"] >= 300_000
    server.routes["/big.bin"].chunk_delay = 0
    done = cachefix("fetch", url, "-o", str(tmp_path / "out"), "--sha256", sha(BIG))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_bytes() == BIG
    assert server.headers_of("/big.bin")[-1].get("Range", "").startswith("bytes=")
    assert "partial downloads" not in cachefix("cache", "stats", "--downloads").stdout
