"""A real HTTP server on 127.0.0.1 with scripted faults, and an isolated cache per test.

Each route serves bytes with an ETag and Last-Modified, honours Range/If-Range and
If-None-Match, and pops one scripted fault per request:
  "status:500", "status:429:2" (Retry-After: 2), "drop:N" (close after N body bytes),
  "wrong" (flip the first byte), "ignore-range" (answer 200 to a Range request),
  "lie" (promise 1000 bytes more than sent, then close), "stall:S" (sleep S mid-body),
  "change" (the file changes to the route's `next_content` before this request).
The server counts what it sent, so tests can assert "downloaded exactly once".
"""

from __future__ import annotations

import hashlib
import os
import random
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.downloads.remote_stores import cas_server, seaweed  # noqa: F401 (fixtures for test_remote_*)


@dataclass
class Route:
    content: bytes = b""
    faults: deque[str] = field(default_factory=deque)
    redirect: str | None = None
    chunk_delay: float = 0.0  # seconds between 64 KiB pieces: a slow server
    validators: bool = True
    next_content: bytes | None = None

    @property
    def etag(self) -> str:
        return f'"{hashlib.sha256(self.content).hexdigest()[:16]}"'


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bodies: Counter[str] = Counter()  # GETs that started sending a body
        self.sent: Counter[str] = Counter()  # body bytes written
        self.last_modified = formatdate(time.time() - 3600, usegmt=True)
        self.scheme = "http"
        self.cert: Path | None = None

    def add(self, path: str, content: bytes, *faults: str, **options: object) -> str:
        self.routes[path] = Route(content, deque(faults), **options)  # type: ignore[arg-type]
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}{path}"

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        self.server.requests.append((self.path, dict(self.headers)))
        if route is None:
            return self._plain(404, b"not found")
        if route.redirect:
            self.send_response(302)
            self.send_header("Location", route.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        fault = route.faults.popleft() if route.faults else ""
        if fault == "change" and route.next_content is not None:
            route.content = route.next_content
        if fault.startswith("status:"):
            _, code, *retry_after = fault.split(":")
            return self._plain(int(code), b"try later", {"Retry-After": retry_after[0]} if retry_after else {})
        if route.validators and self.headers.get("If-None-Match") == route.etag:
            self.send_response(304)
            self.end_headers()
            return None
        body, start = route.content, 0
        wanted = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        honour = fault != "ignore-range" and route.validators and if_range in (None, route.etag)
        if wanted.startswith("bytes=") and honour:
            start = int(wanted[6:].split("-")[0])
            if start >= len(body):
                return self._plain(416, b"")
        if fault == "wrong":
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        part = body[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(part) + (1000 if fault == "lie" else 0)))
        if route.validators:
            self.send_header("ETag", route.etag)
            self.send_header("Last-Modified", self.server.last_modified)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.server.bodies[self.path] += 1
        limit = int(fault[5:]) if fault.startswith("drop:") else len(part)
        stall = float(fault[6:]) if fault.startswith("stall:") else 0.0
        try:
            for offset in range(0, limit, 65536):
                piece = part[offset:min(offset + 65536, limit)]
                self.wfile.write(piece)
                self.wfile.flush()
                self.server.sent[self.path] += len(piece)
                if stall and offset + 65536 >= limit // 2:
                    time.sleep(stall)
                    stall = 0.0
                time.sleep(route.chunk_delay)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if limit < len(part) or fault == "lie":
            self.close_connection = True
        return None

    def _plain(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serving(httpd: FaultServer):
    """Run the server in a thread for the test, then stop it."""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server():
    yield from _serving(FaultServer())


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The same server behind TLS, with a self-signed certificate the client trusts
    through SSL_CERT_FILE (which `tls_server.cert` names)."""
    from tests.integration.tlscert import make_cert

    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    httpd = FaultServer()
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.scheme = "https"
    httpd.cert = cert
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    yield from _serving(httpd)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache for this test; retries back off in milliseconds, not seconds."""
    root = tmp_path / "cache"
    monkeypatch.setenv("CACHEFIX_CACHE_DIR", str(root))
    monkeypatch.setenv("CACHEFIX_BACKOFF_BASE", "0.01")
    monkeypatch.setenv("CACHEFIX_BACKOFF_MAX", "0.05")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CACHEFIX_REMOTE", raising=False)  # a developer's team remote stays out of the tests
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    """Random bytes, reproducible, never repeating (a resume at a wrong offset shows)."""
    return random.Random(seed).randbytes(size)


def cachefix(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run the real `cachefix` command in a child process (environment inherited from the test)."""
    kwargs.setdefault("text", True)  # text=False for binary stdout
    return subprocess.run([sys.executable, "-m", "cachefix", *args], capture_output=True,
                          env={**os.environ, **(env or {})}, timeout=60, **kwargs)  # type: ignore[call-overload]
