"""A static file server on 127.0.0.1 that logs every response and the body bytes it sent.

The bytes are the measurement: a cache mount works when the second build's installs get
304s (or no request at all) instead of bodies. It honours If-None-Match/If-Modified-Since
like a real mirror, because apt and pip only save bytes when the server lets them.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import mimetypes
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Hit:
    """One answered request."""

    method: str
    path: str
    status: int
    body_bytes: int


class RequestLog:
    """Thread-safe list of hits; a test takes a mark before a build and sums after it."""

    def __init__(self) -> None:
        self._hits: list[Hit] = []
        self._lock = threading.Lock()

    def add(self, hit: Hit) -> None:
        with self._lock:
            self._hits.append(hit)

    def mark(self) -> int:
        with self._lock:
            return len(self._hits)

    def since(self, mark: int) -> list[Hit]:
        with self._lock:
            return list(self._hits[mark:])


CachePolicy = Callable[[str], str]


def _etag(path: Path) -> str:
    st = path.stat()
    return '"' + hashlib.sha1(f"{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest()[:16] + '"'


def _make_handler(root: Path, log: RequestLog, cache_control: CachePolicy) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "cachefix-test/1"

        def log_message(self, format: str, *args: object) -> None:  # quiet: the log is `log`
            pass

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def _resolve(self) -> Path | None:
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            target = (root / rel).resolve()
            if not target.is_relative_to(root):
                return None
            if target.is_dir():
                target = target / "index.html"
            return target if target.is_file() else None

        def _serve(self, send_body: bool) -> None:
            target = self._resolve()
            if target is None:
                self._reply(404, b"not found\n", "text/plain", send_body)
                return
            etag = _etag(target)
            mtime = int(target.stat().st_mtime)
            headers = {
                "ETag": etag,
                "Last-Modified": email.utils.formatdate(mtime, usegmt=True),
                "Cache-Control": cache_control(self.path),
            }
            if self._not_modified(etag, mtime):  # counted before it is sent, as `reply` does
                log.add(Hit(self.command, self.path, 304, 0))
                self.send_response(304)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                return
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self._reply(200, target.read_bytes(), ctype, send_body, headers)

        def _not_modified(self, etag: str, mtime: int) -> bool:
            inm = self.headers.get("If-None-Match")
            if inm is not None:
                return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
            ims = self.headers.get("If-Modified-Since")
            if ims:
                try:
                    since = email.utils.parsedate_to_datetime(ims).timestamp()
                except (TypeError, ValueError):
                    return False
                return mtime <= since
            return False

        def _reply(self, status: int, body: bytes, ctype: str, send_body: bool,
                   headers: dict[str, str] | None = None) -> None:
            reply(self, log, status, body, {"Content-Type": ctype, **(headers or {})}, send_body)

    return Handler


def reply(handler: http.server.BaseHTTPRequestHandler, log: RequestLog, status: int, body: bytes,
          headers: dict[str, str], send_body: bool) -> None:
    """Send a response (the body unless it answers a HEAD) and count the body bytes in `log`.
    The count comes first: a client that has the whole response must find it in the log."""
    log.add(Hit(handler.command, handler.path, status, len(body) if send_body else 0))
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    if send_body:
        handler.wfile.write(body)


Started = TypeVar("Started", bound="LocalServer")


class LocalServer:
    """An HTTP server on 127.0.0.1 (HTTPS when given a cert) in a daemon thread; what it sends is
    counted in `log` by the handler `make_handler(log)` builds."""

    def __init__(self, make_handler: Callable[[RequestLog], type[http.server.BaseHTTPRequestHandler]],
                 tls: tuple[Path, Path] | None = None) -> None:
        self.log = RequestLog()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.log))
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile=str(tls[0]), keyfile=str(tls[1]))
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self: Started) -> Started:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class PackageServer(LocalServer):
    """Serves ``root`` on 127.0.0.1 (HTTPS when given a cert) in a daemon thread."""

    def __init__(self, root: Path, cache_control: CachePolicy,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.root = root.resolve()
        super().__init__(lambda log: _make_handler(self.root, log, cache_control), tls)

    @property
    def url(self) -> str:
        return f"{self.origin}/"
