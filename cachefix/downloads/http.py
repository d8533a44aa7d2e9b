"""One HTTP transfer into a file: hashed while it streams, resumed and retried as needed.

The bytes are hashed as they arrive (no second pass over the file), in a thread of their own
so that hashing runs on one core while the other receives and writes, and stored exactly as
the server sent them (`Accept-Encoding: identity`, raw iteration: no transparent gunzip).
A broken connection resumes with `Range` + `If-Range`, so a changed file on the server
restarts the transfer instead of splicing two versions; a server that ignores `Range`
(answers 200) restarts it too. Connection errors, timeouts, 408, 429 and 5xx are retried
with jittered exponential backoff that honours `Retry-After`.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import queue
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from cachefix import __version__
from cachefix.downloads.errors import InvalidInput, TransferFailed
from cachefix.downloads.progress import Meter
from cachefix.downloads.store import Writeback, hash_fd, write_all

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
METER_STEP = 1 << 20
READ_BYTES = 1 << 20  # the most one recv() of a response body asks for
SOCKET_READS_AFTER = 4 << 20  # bytes left after h11's first chunk for `_body` to read the socket itself
BATCH_BYTES = 1 << 20  # chunks gathered for one writev and one hand-over to the hashing thread
BATCH_CHUNKS = 512  # and never more chunks than writev takes (IOV_MAX is 1024 on Linux)
QUEUED_BATCHES = 8  # batches between the receiver and the hashing thread: memory constant in the file size
USER_AGENT = f"cachefix/{__version__}"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry; `CACHEFIX_BACKOFF_BASE`/`_MAX` tune the delays."""

    attempts: int = 5
    base: float = field(default_factory=lambda: _env_float("CACHEFIX_BACKOFF_BASE", 1.0))
    cap: float = field(default_factory=lambda: _env_float("CACHEFIX_BACKOFF_MAX", 60.0))

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based), never more than `cap`."""
        asked = parse_retry_after(retry_after)
        if asked is not None:
            return min(asked, self.cap)
        return min(self.cap, self.base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Pace:
    """The slowest transfer worth waiting for, and when to give up altogether.

    As curl's `--speed-limit`/`--speed-time`: a response that brings fewer than `min_rate`
    bytes per second over `window` seconds is dropped and retried (resuming what it sent),
    so a server that trickles a byte a second cannot hold a build forever, which the stall
    timeout alone allows. `deadline` (a `time.monotonic()` value, from `--max-time`) bounds
    the whole fetch: every attempt, read and backoff.
    """

    min_rate: float = 1024.0
    window: float = 30.0
    deadline: float | None = None
    max_bytes: int | None = None  # `--max-filesize`: a server that never stops cannot fill the disk

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


class _Window:
    """Bytes received in the current `Pace.window`; raises `_Retry` when they are too few."""

    def __init__(self, pace: Pace) -> None:
        self.pace, self.start, self.bytes = pace, time.monotonic(), 0

    def add(self, size: int) -> None:
        self.bytes += size
        now = time.monotonic()
        if self.pace.deadline is not None and now > self.pace.deadline:
            raise _Retry("the transfer was still running")
        elapsed = now - self.start
        if not self.pace.min_rate or elapsed < self.pace.window:
            return
        if self.bytes < self.pace.min_rate * elapsed:
            raise _Retry(f"too slow: {self.bytes / elapsed:.0f} B/s over {elapsed:.0f} s, under the"
                         f" --speed-limit of {self.pace.min_rate:.0f} B/s")
        self.start, self.bytes = now, 0


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def make_client(timeout: float = 60.0, connect_timeout: float = 30.0) -> httpx.Client:
    """A client that follows redirects; `timeout` bounds a stall, not the whole transfer."""
    _read_larger()
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        transport=_LazyTLSTransport(),
    )


def _read_larger() -> None:
    """Receive up to 1 MiB a read instead of httpcore's 64 KiB.

    Each read costs h11 and httpx some Python work, so on loopback a 1 GiB body read 64 KiB at
    a time took 0.74 s of user CPU against 0.40 s in 1 MiB reads. httpcore has no setting, only the
    class constant `READ_NUM_BYTES` (chosen in encode/httpcore#135), so this raises that
    constant for every HTTP/1.1 connection in the process. It is an upper bound: `recv` returns
    what has arrived, so small responses and slow links read as before.
    """
    import httpcore

    if getattr(httpcore.HTTP11Connection, "READ_NUM_BYTES", READ_BYTES) < READ_BYTES:
        httpcore.HTTP11Connection.READ_NUM_BYTES = READ_BYTES


class _LazyTLSTransport(httpx.BaseTransport):
    """Loads the CA bundle (50-80 ms, more than a whole loopback download of a small file)
    only when an https:// URL is really fetched. The plain pool never carries TLS: every
    https:// request, redirects included, goes to the verifying transport."""

    def __init__(self) -> None:
        self._plain = httpx.HTTPTransport(verify=False)
        self._tls: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https":
            return self._plain.handle_request(request)
        with self._lock:
            if self._tls is None:
                self._tls = httpx.HTTPTransport()
        return self._tls.handle_request(request)

    def close(self) -> None:
        self._plain.close()
        if self._tls is not None:
            self._tls.close()


class Copy(Protocol):
    """A second file written with the same bytes while they stream (the `-o` file of a fetch)."""

    def write(self, batch: list[bytes]) -> None: ...

    def reset(self) -> None: ...


class _Digester:
    """SHA-256 of the batches fed to it, and their copies written, in a thread of its own.

    hashlib releases the GIL while it hashes a chunk of more than 2 KiB, so on two cores the
    hash (about 0.8 s a GiB here) runs beside the receiving and writing instead of after each
    chunk. Batches of about 1 MiB keep the hand-overs (a thread wake-up each) few. The queue
    is bounded: a slow hash holds the receiver back, so memory stays constant whatever the
    file's size.
    """

    def __init__(self, hasher: hashlib._Hash, copies: Sequence[Copy]) -> None:
        self._hasher, self._copies = hasher, copies
        self._error: BaseException | None = None
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(QUEUED_BATCHES)
        self._thread = threading.Thread(target=self._run, name="cachefix-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._consume(batch)
                except BaseException as exc:  # raised in the receiving thread by finish()
                    self._error = exc

    def _consume(self, batch: list[bytes]) -> None:
        for chunk in batch:
            self._hasher.update(chunk)
        for copy in self._copies:
            copy.write(batch)

    def feed(self, batch: list[bytes]) -> None:
        if self._thread.is_alive():
            self._queue.put(batch)
        else:  # finished already: a write after `digest`
            self._consume(batch)

    def finish(self) -> hashlib._Hash:
        """Wait for every batch fed so far; the hash of them all."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._hasher


class Partial:
    """A download in progress: its file, the bytes it holds, their running hash, the validator.

    Chunks are gathered into batches of about 1 MiB, each written with one `writev` and hashed
    in `_Digester`'s thread; `offset` counts the bytes given, and `flush` writes what is still
    gathered. `copies` receive the same bytes from byte 0 (only a partial started empty can
    have them). Call `close` when done with it: it stops the hashing thread and closes the file.
    """

    def __init__(self, fd: int, path: os.PathLike[str], validator: str | None = None,
                 copies: Sequence[Copy] = ()) -> None:
        self.fd, self.path, self.validator, self.copies = fd, path, validator, copies
        os.lseek(fd, 0, os.SEEK_SET)
        hasher = hash_fd(fd)  # an adopted partial: re-hash its prefix once
        self.offset = os.lseek(fd, 0, os.SEEK_CUR)
        if self.offset and copies:
            raise ValueError("copies need a partial that starts empty")
        self._digester = _Digester(hasher, copies)
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._writeback = Writeback(fd, self.offset)

    def write(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batch_size += len(chunk)
        self.offset += len(chunk)
        if self._batch_size >= BATCH_BYTES or len(self._batch) >= BATCH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        """Write and hand over the chunks gathered so far."""
        batch = self._batch
        if batch:
            self._batch, self._batch_size = [], 0
            self._digester.feed(batch)
            write_all(self.fd, batch)
            self._writeback.written(self.offset)

    def digest(self) -> str:
        """The SHA-256 of the bytes written so far (waits for the hashing thread)."""
        self.flush()
        return self._digester.finish().copy().hexdigest()

    def reset(self) -> None:
        self._batch, self._batch_size = [], 0
        self._digester.finish()
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        for copy in self.copies:
            copy.reset()
        self._digester = _Digester(hashlib.sha256(), self.copies)
        self.offset, self.validator = 0, None

    def close(self) -> None:
        """Write what is gathered (a later run may resume the file), stop the thread, close."""
        try:
            self.flush()
        except OSError:
            pass  # a full disk: the file holds fewer bytes, which a resume reads from its size
        finally:
            self._digester.finish()
            os.close(self.fd)


@dataclass(frozen=True)
class Transfer:
    """What a finished transfer produced, and the validators to revalidate it with later."""

    digest: str
    size: int
    etag: str | None
    last_modified: str | None
    final_url: str


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def download(
    client: httpx.Client,
    url: str,
    part: Partial,
    *,
    policy: RetryPolicy,
    meter: Meter,
    validators: tuple[str | None, str | None] | None = None,
    on_resumable: Callable[[str], None] = lambda validator: None,
    sleep: Callable[[float], None] = time.sleep,
    pace: Pace = Pace(),
) -> Transfer | None:
    """Fetch `url` into `part`; None when `validators` (ETag, Last-Modified) got a 304.

    `on_resumable` is told the If-Range validator as soon as the response allows a later
    process to resume this file, so a killed download is not lost.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return _attempt(client, url, part, meter, validators, on_resumable, pace)
        except (httpx.TransportError, _Retry) as exc:
            delay = policy.delay(attempt, getattr(exc, "retry_after", None))
            remaining = pace.remaining()
            out_of_time = remaining is not None and remaining <= delay
            attempts = f"after {attempt} attempt{'s' * (attempt > 1)}"
            if out_of_time:
                raise TransferFailed(f"could not download {url} within --max-time ({_describe(exc)};"
                                     f" {attempts})") from None
            if _permanent(exc) or attempt >= policy.attempts:
                raise TransferFailed(f"could not download {url}: {_describe(exc)} ({attempts})") from None
            sleep(delay)
        except httpx.HTTPError as exc:
            raise TransferFailed(f"could not download {url}: {_describe(exc)}") from None
        except httpx.InvalidURL as exc:  # e.g. a host name that is not valid IDNA
            raise InvalidInput(f"bad URL {url!r}: {exc}") from None


def _attempt(
    client: httpx.Client,
    url: str,
    part: Partial,
    meter: Meter,
    validators: tuple[str | None, str | None] | None,
    on_resumable: Callable[[str], None],
    pace: Pace,
) -> Transfer | None:
    part.flush()  # what the last attempt received is on disk before asking for the rest
    headers = {}
    if part.offset and part.validator:
        headers = {"Range": f"bytes={part.offset}-", "If-Range": part.validator}
    elif part.offset:
        part.reset()
    if validators and not part.offset:
        etag, last_modified = validators
        headers.update({"If-None-Match": etag} if etag else {})
        headers.update({"If-Modified-Since": last_modified} if last_modified else {})
    with client.stream("GET", url, headers=headers, timeout=_timeout(client, pace)) as response:
        status = response.status_code
        if status == 304 and validators:
            return None
        if status in RETRY_STATUS or status >= 500:
            raise _Retry(f"HTTP {status} {response.reason_phrase}", response.headers.get("Retry-After"))
        if status == 416 and part.offset:
            part.reset()  # our partial is not a prefix of what the server has now
            raise _Retry("HTTP 416 for a resumed range; starting over")
        if status not in (200, 206):
            raise TransferFailed(f"could not download {url}: HTTP {status} {response.reason_phrase}")
        total = _expected_total(response, part)
        if status == 200:
            part.validator = _if_range_validator(response)
            if part.validator:
                on_resumable(part.validator)
        _check_size(url, total, pace, part)
        meter.start(total, part.offset)
        pending = 0
        window = _Window(pace)
        for chunk in _body(response, _timeout(client, pace).read):
            part.write(chunk)
            _check_size(url, part.offset, pace, part)
            window.add(len(chunk))
            pending += len(chunk)
            if pending >= METER_STEP:
                meter.advance(pending)
                pending = 0
        meter.advance(pending)
        if total is not None and part.offset != total:
            raise _Retry(f"server sent {part.offset} of {total} bytes")
        return Transfer(part.digest(), part.offset, response.headers.get("ETag"),
                        response.headers.get("Last-Modified"), str(response.url))


def _body(response: httpx.Response, read_timeout: float | None) -> Iterator[bytes]:
    """The response's body as it arrives: httpx's chunks, then the socket's own for a large body.

    h11 copies every block it receives three times (into its buffer, out of it, into `bytes`):
    0.75 s of a 1 GiB download's CPU on loopback. Once h11 has handed over the bytes it held
    (its first `Data` event takes all of them), the rest of a plain-HTTP body of known length
    is read from the connection's socket, which httpcore exposes as the `network_stream`
    extension: one copy. h11 does not see the end, so the connection is closed instead of
    reused; bodies under `SOCKET_READS_AFTER` keep the connection. A lost byte cannot pass:
    the length and digest checks that follow see it.
    """
    chunks = response.iter_raw()
    first = next(chunks, None)
    if first is None:
        return
    yield first
    length = response.headers.get("Content-Length", "")
    stream = response.extensions.get("network_stream")
    left = int(length) - len(first) if length.isdigit() else 0
    sock = None
    if stream is not None and "Transfer-Encoding" not in response.headers and left >= SOCKET_READS_AFTER:
        sock = stream.get_extra_info("socket") if stream.get_extra_info("ssl_object") is None else None
    if sock is None:
        yield from chunks
        return
    sock.settimeout(read_timeout)
    while left > 0:
        try:
            data = sock.recv(min(READ_BYTES, left))
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        if not data:
            return  # the server closed early: the caller's length check says so
        left -= len(data)
        yield data


def _check_size(url: str, size: int | None, pace: Pace, part: Partial) -> None:
    """Fail (for good: a retry would get the same file) once a file is known to be too large."""
    if size is not None and pace.max_bytes is not None and size > pace.max_bytes:
        part.reset()  # nothing worth resuming
        raise TransferFailed(f"could not download {url}: it is larger than --max-filesize"
                             f" ({pace.max_bytes} bytes)")


def _timeout(client: httpx.Client, pace: Pace) -> httpx.Timeout:
    """The client's timeouts, cut short so that no wait outlasts the deadline."""
    remaining = pace.remaining()
    if remaining is None:
        return client.timeout
    if remaining <= 0:
        raise _Retry("no time was left for another attempt")
    cut = client.timeout
    return httpx.Timeout(connect=_min(cut.connect, remaining), read=_min(cut.read, remaining),
                         write=_min(cut.write, remaining), pool=_min(cut.pool, remaining))


def _min(limit: float | None, remaining: float) -> float:
    return remaining if limit is None else min(limit, remaining)


def _expected_total(response: httpx.Response, part: Partial) -> int | None:
    """The full file size the server promised; restarts `part` when it ignored our Range."""
    if response.status_code == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not match or int(match[1]) != part.offset:
            part.reset()
            raise _Retry("server answered a different range than asked")
        return None if match[3] == "*" else int(match[3])
    if part.offset:
        part.reset()  # 200 to a Range request: the whole file again, from byte 0
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _if_range_validator(response: httpx.Response) -> str | None:
    """A strong ETag, else Last-Modified: what RFC 9110 allows in If-Range."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")


def _permanent(exc: BaseException) -> bool:
    """Failures that a retry cannot fix: an unsupported scheme, a certificate we do not trust."""
    while exc is not None:
        if isinstance(exc, (httpx.UnsupportedProtocol, ssl.SSLCertVerificationError)):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _describe(exc: Exception) -> str:
    """One line for the user: httpx's message, or the exception's name when it has none."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"timed out ({text})" if isinstance(exc, httpx.TimeoutException) else text
