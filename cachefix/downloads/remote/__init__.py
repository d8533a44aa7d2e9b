"""A shared tier under the local download cache: a team's S3 bucket or a bazel-remote HTTP CAS.

`CACHEFIX_REMOTE` (or `--remote`) names it: `s3://BUCKET/PREFIX` or `http(s)://HOST/BASE`.
A tier stores two things: blobs under their SHA-256, and for each URL a small JSON record
of the digest it gave and the origin's validators (ETag, Last-Modified, when it was last
confirmed), so an unpinned URL can be served and revalidated too. The remote is never
trusted: every byte from it is re-hashed before use (see `shared.py`). The protocols sit
behind `Tier`, a handful of calls each, so the fetch path knows nothing of S3 or HTTP.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from cachefix.downloads.errors import InvalidInput
from cachefix.downloads.store import is_digest

ENV = "CACHEFIX_REMOTE"


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class Patience:
    """How long the remote may keep us: it is a shortcut, so it gets less than the origin.

    `CACHEFIX_REMOTE_CONNECT_TIMEOUT` (default 5 s) and `CACHEFIX_REMOTE_TIMEOUT` (seconds
    without a byte, default 20 s) bound a remote that is down or stuck; then the fetch goes
    to the origin.
    """

    connect: float = 5.0
    stall: float = 20.0

    @classmethod
    def from_env(cls) -> Patience:
        return cls(_env_seconds("CACHEFIX_REMOTE_CONNECT_TIMEOUT", 5.0), _env_seconds("CACHEFIX_REMOTE_TIMEOUT", 20.0))


@dataclass(frozen=True)
class Mapping:
    """What one URL gave: the blob's digest and size, and how to ask the origin if it changed."""

    url: str
    digest: str
    size: int
    etag: str | None
    last_modified: str | None
    checked: float  # when the origin last confirmed this content (seconds since the epoch)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, url: str) -> Mapping | None:
        """The record, or None when it is malformed or for another URL (then it is ignored)."""
        try:
            raw = json.loads(data)
            mapping = cls(url=raw["url"], digest=raw["digest"], size=int(raw["size"]), etag=raw.get("etag"),
                          last_modified=raw.get("last_modified"), checked=float(raw["checked"]))
        except (ValueError, TypeError, KeyError):
            return None
        ok = (mapping.url == url and isinstance(mapping.digest, str) and is_digest(mapping.digest)
              and mapping.size >= 0 and all(isinstance(v, (str, type(None))) for v in (mapping.etag,
                                                                                         mapping.last_modified)))
        return mapping if ok else None


class Tier(Protocol):
    """One remote store. Each call raises on a failure (network, auth, server error); an
    absent object is not a failure (False or None)."""

    location: str  # the remote as the user named it, without credentials

    def read_blob(self, digest: str, sink: Callable[[bytes], None]) -> bool:
        """Stream the blob into `sink`; False when the remote does not hold it."""

    def has_blob(self, digest: str) -> bool: ...

    def write_blob(self, digest: str, path: Path) -> None:
        """Upload a file, streaming (a large one in parts)."""

    def read_record(self, key: str) -> bytes | None:
        """The URL record stored under `key` (the SHA-256 of the URL), None when absent."""

    def write_record(self, key: str, data: bytes) -> None: ...

    def claim(self, key: str, data: bytes) -> bool | None:
        """Create the lease `key` only if absent: True if made, False if another holds it,
        None when the store cannot do a conditional create (no coordination then)."""

    def read_claim(self, key: str) -> bytes | None: ...

    def renew(self, key: str, data: bytes) -> None: ...

    def release(self, key: str) -> None: ...

    def summary(self) -> dict[str, object]:
        """What `cache stats` shows: reachable or not, and what the store can tell cheaply."""


def chosen(flag: str | None = None, *, disabled: bool = False) -> str | None:
    """The remote to use: `--no-remote` wins, then `--remote`, then `CACHEFIX_REMOTE` (set empty:
    none), then `remote` in the configuration that lint would use for the current folder."""
    if disabled:
        return None
    spec = flag if flag is not None else os.environ.get(ENV)
    if spec is None:
        spec = configured_in(Path.cwd())
    return (spec or "").strip() or None


@lru_cache(maxsize=16)
def configured_in(folder: Path) -> str | None:
    """`remote` from the nearest `.cachefix.toml` or `[tool.cachefix]` in pyproject.toml, walking up
    to the repository's root as lint does. A file that does not mention `remote` is not parsed, so
    a fetch does not pay for the configuration module unless it is needed; the answer is kept for
    the process (an API call in a loop would otherwise walk the folders each time)."""
    from cachefix.files import read_regular_file
    from cachefix.limits import MAX_CONFIG_BYTES

    folder = folder.absolute()
    while True:
        for name in (".cachefix.toml", "pyproject.toml"):
            try:
                data = read_regular_file(folder / name, MAX_CONFIG_BYTES)
            except OSError:
                continue
            if name == "pyproject.toml" and b"tool.cachefix" not in data:
                continue
            if b"remote" not in data:
                return None
            from cachefix.config import ConfigError, load

            try:
                config = load(folder / name, required=False)
            except ConfigError as exc:
                raise InvalidInput(str(exc)) from None
            if config is not None:
                return config.remote
        if folder.parent == folder or os.path.lexists(folder / ".git"):
            return None
        folder = folder.parent


def open_tier(spec: str, patience: Patience | None = None) -> Tier:
    """The tier `spec` names; a spec that names none is a usage error (exit 2)."""
    patience = patience or Patience.from_env()
    parts = urlsplit(spec)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise InvalidInput(f"bad remote {spec!r}: expected s3://BUCKET/PREFIX")
        from cachefix.downloads.remote.s3 import S3Tier

        return S3Tier(parts.netloc, parts.path.strip("/"), patience)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidInput(f"bad remote {spec!r}: expected http(s)://HOST/BASE")
        from cachefix.downloads.remote.cas import CasTier

        return CasTier(spec, patience)
    raise InvalidInput(f"bad remote {spec!r}: expected s3://BUCKET/PREFIX or http(s)://HOST/BASE "
                       "(a bazel-remote-protocol HTTP cache)")
