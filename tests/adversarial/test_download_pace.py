"""Issue 8.7: a server that trickles bytes cannot hold `cachefix fetch` forever.

The stall timeout never fires while a byte arrives every second; the speed rule (as curl's
`--speed-limit/--speed-time`) and the optional `--max-time` deadline do. The server here
sends one byte every 50 ms for as long as the client listens; the child process's own
timeout bounds each test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.adversarial.http_support import serving
from tests.downloads import conftest
from tests.downloads.conftest import cachefix

cache_dir = conftest.cache_dir  # the download tests' fixture, shared


class _Trickle(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100_000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client gave up: what the test wants
            pass


@pytest.fixture
def trickle() -> Iterator[str]:
    with serving(_Trickle) as base:
        yield base + "/slow.bin"


def test_a_trickle_under_the_speed_limit_fails(trickle: str, cache_dir: Path) -> None:
    done = cachefix("fetch", trickle, "--speed-limit", "1K", "--speed-time", "1", "--retries", "2")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "too slow" in done.stderr and "--speed-limit" in done.stderr and "after 2 attempts" in done.stderr


def test_max_time_bounds_the_whole_fetch(trickle: str, cache_dir: Path) -> None:
    done = cachefix("fetch", trickle, "--speed-limit", "0", "--max-time", "1.5", "--retries", "50")
    assert done.returncode == 1 and "within --max-time" in done.stderr and done.stderr.count("\n") == 1


def test_the_speed_rule_is_on_by_default(trickle: str, cache_dir: Path) -> None:
    done = cachefix("fetch", trickle, "--speed-time", "1", "--retries", "1")  # the default limit, 1K
    assert done.returncode == 1 and "too slow" in done.stderr and "of 1024 B/s" in done.stderr
