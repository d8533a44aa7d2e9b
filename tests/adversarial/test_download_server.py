"""Hostile servers beyond issue 8's list: a file that never ends cannot fill the disk when
`--max-filesize` is given, and a known-too-large file is refused before its body."""

from __future__ import annotations

import os
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.adversarial.http_support import serving
from tests.downloads import conftest
from tests.downloads.conftest import FaultServer, cachefix, payload

server, cache_dir = conftest.server, conftest.cache_dir  # the download tests' fixtures, shared


class _Endless(BaseHTTPRequestHandler):
    """HTTP/1.0 without Content-Length: the body ends when the server closes, which it never does."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("ETag", '"endless"')
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\0" * 65536)
        except OSError:  # the client gave up: what the test wants
            pass


@pytest.fixture
def endless() -> Iterator[str]:
    with serving(_Endless) as base:
        yield base + "/zeros"


def test_an_endless_body_stops_at_max_filesize(endless: str, cache_dir: Path) -> None:
    done = cachefix("fetch", endless, "--max-filesize", "5M")
    assert done.returncode == 1 and "larger than --max-filesize" in done.stderr and done.stderr.count("\n") == 1
    assert os.listdir(cache_dir / "tmp") == []  # nothing kept to resume


def test_a_file_announced_too_large_is_refused_before_its_body(server: FaultServer, cache_dir: Path) -> None:
    done = cachefix("fetch", server.add("/big", payload(300_000)), "--max-filesize", "100K", "--retries", "3")
    assert done.returncode == 1 and "larger than --max-filesize" in done.stderr
    assert server.bodies["/big"] == 1  # refused for good: not retried
