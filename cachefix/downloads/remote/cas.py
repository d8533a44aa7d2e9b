"""The HTTP tier in bazel-remote's protocol: `GET/PUT/HEAD {base}/cas/{sha256}` and `{base}/ac/{key}`.

Any server that speaks it serves: bazel-remote, a WebDAV-enabled nginx, a CI's cache proxy.
Basic auth comes from the URL (`https://USER:PASSWORD@host/base`, as Bazel's `--remote_cache`
takes it, and as curl does), a bearer token from `CACHEFIX_REMOTE_TOKEN`.

URL records live in the action cache (`ac/<sha256 of URL>`). bazel-remote checks that an AC
entry is an `ActionResult` protobuf (unless `--disable_http_ac_validation`), so the JSON
record travels as the `stdout_raw` field (number 5, bytes) of an otherwise empty
ActionResult: a valid message that refers to no CAS blob, hand-encoded in a few bytes rather
than pulling in protobuf. This protocol has no conditional create, so there are no leases:
two machines that miss at the same moment both download from the origin.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from cachefix.downloads.remote import Patience

STDOUT_RAW = 5  # ActionResult.stdout_raw in build/bazel/remote/execution/v2/remote_execution.proto
_EMPTY = hashlib.sha256(b"").hexdigest()


class CasTier:
    def __init__(self, spec: str, patience: Patience) -> None:
        from cachefix.downloads.http import USER_AGENT

        parts = urlsplit(spec)
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        if parts.port:
            netloc += f":{parts.port}"
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.location = base
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if token := os.environ.get("CACHEFIX_REMOTE_TOKEN"):
            headers["Authorization"] = f"Bearer {token}"
        auth = httpx.BasicAuth(parts.username or "", parts.password or "") if parts.username else None
        self._client = httpx.Client(base_url=base + "/", headers=headers, auth=auth,
                                    timeout=httpx.Timeout(patience.stall, connect=patience.connect))

    def read_blob(self, digest: str, sink: Callable[[bytes], None]) -> bool:
        with self._client.stream("GET", f"cas/{digest}") as response:
            if response.status_code == 404:
                return False
            response.raise_for_status()
            for chunk in response.iter_raw():
                sink(chunk)
        return True

    def has_blob(self, digest: str) -> bool:
        response = self._client.head(f"cas/{digest}")
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    def write_blob(self, digest: str, path: Path) -> None:
        size = path.stat().st_size
        self._client.put(f"cas/{digest}", content=_chunks(path),
                         headers={"Content-Length": str(size)}).raise_for_status()

    def read_record(self, key: str) -> bytes | None:
        response = self._client.get(f"ac/{key}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return stdout_raw(response.content)

    def write_record(self, key: str, data: bytes) -> None:
        self._client.put(f"ac/{key}", content=action_result(data)).raise_for_status()

    def claim(self, key: str, data: bytes) -> bool | None:
        return None

    def read_claim(self, key: str) -> bytes | None:
        return None

    def renew(self, key: str, data: bytes) -> None:
        return None

    def release(self, key: str) -> None:
        return None

    def summary(self) -> dict[str, object]:
        """The protocol cannot list: only whether the server answers (and accepts our credentials)."""
        self.has_blob(_EMPTY)
        return {}


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            yield chunk


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def action_result(payload: bytes) -> bytes:
    """An ActionResult protobuf holding `payload` as stdout_raw and nothing else."""
    return _varint(STDOUT_RAW << 3 | 2) + _varint(len(payload)) + payload


def stdout_raw(message: bytes) -> bytes | None:
    """The stdout_raw field of an ActionResult; None for anything that is not one."""
    pos, found = 0, None

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            if pos >= len(message) or shift > 63:
                raise ValueError("truncated varint")
            byte = message[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    try:
        while pos < len(message):
            key = varint()
            kind = key & 7
            if kind == 0:
                varint()
                continue
            size = {1: 8, 5: 4}.get(kind) if kind != 2 else varint()
            if size is None or pos + size > len(message):
                return None
            if key >> 3 == STDOUT_RAW and kind == 2:
                found = message[pos:pos + size]
            pos += size
    except ValueError:
        return None
    return found
