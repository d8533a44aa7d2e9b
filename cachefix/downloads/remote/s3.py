"""The S3 tier, through obstore (Rust's object_store): any S3-compatible store, streaming both ways.

Layout under `s3://BUCKET/PREFIX`: `sha256/<digest>` (blobs), `urls/<sha256 of URL>` (JSON
records), `leases/<sha256 of URL>` (who is downloading a URL now). Credentials, region and
endpoint come from the standard variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), which obstore reads itself. Requests are path-style
(obstore's default for a custom endpoint); plain http:// is allowed only when the endpoint
named in `AWS_ENDPOINT_URL` says http:// (a store on the LAN or loopback): the remote is not
trusted for content anyway, and SigV4 never sends the secret key.
Leases use a conditional create (`If-None-Match: *`), which AWS S3 and SeaweedFS honour.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from cachefix.downloads.remote import Patience

READ_CHUNK = 8 << 20
PART_SIZE = 16 << 20  # multipart chunks for large uploads


class S3Tier:
    def __init__(self, bucket: str, prefix: str, patience: Patience) -> None:
        from obstore.store import S3Store

        self.location = f"s3://{bucket}/{prefix}".rstrip("/")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        self._store = S3Store(
            bucket, prefix=prefix or None,
            client_options={
                "allow_http": endpoint.startswith("http://"),
                "connect_timeout": timedelta(seconds=patience.connect),
                "read_timeout": timedelta(seconds=patience.stall),
                "timeout": timedelta(days=1),  # obstore's default bounds a whole transfer by 30 s
            },
            retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=patience.stall),
                          "backoff": {"init_backoff": timedelta(milliseconds=100),
                                      "max_backoff": timedelta(seconds=1)}},
        )

    def read_blob(self, digest: str, sink: Callable[[bytes], None]) -> bool:
        import obstore

        try:
            result = obstore.get(self._store, f"sha256/{digest}")
        except FileNotFoundError:
            return False
        for chunk in result.stream(min_chunk_size=READ_CHUNK):
            sink(memoryview(chunk))  # obstore.Bytes: no copy
        return True

    def has_blob(self, digest: str) -> bool:
        import obstore

        try:
            obstore.head(self._store, f"sha256/{digest}")
        except FileNotFoundError:
            return False
        return True

    def write_blob(self, digest: str, path: Path) -> None:
        import obstore

        obstore.put(self._store, f"sha256/{digest}", path, chunk_size=PART_SIZE, max_concurrency=4)

    def read_record(self, key: str) -> bytes | None:
        return self._read_small(f"urls/{key}")

    def write_record(self, key: str, data: bytes) -> None:
        import obstore

        obstore.put(self._store, f"urls/{key}", data)

    def claim(self, key: str, data: bytes) -> bool | None:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            obstore.put(self._store, f"leases/{key}", data, mode="create")
        except (AlreadyExistsError, PreconditionError):
            return False
        return True

    def read_claim(self, key: str) -> bytes | None:
        return self._read_small(f"leases/{key}")

    def renew(self, key: str, data: bytes) -> None:
        import obstore

        obstore.put(self._store, f"leases/{key}", data)

    def release(self, key: str) -> None:
        import obstore

        obstore.delete(self._store, f"leases/{key}")

    def summary(self) -> dict[str, object]:
        """Blob count and bytes, from a listing of `sha256/` (stopped after 100,000 objects)."""
        import obstore

        count = size = 0
        complete = True
        for batch in obstore.list(self._store, "sha256/", chunk_size=1000):
            count += len(batch)
            size += sum(meta["size"] for meta in batch)
            if count >= 100_000:
                complete = False
                break
        return {"blobs": count, "bytes": size, "complete": complete}

    def _read_small(self, path: str) -> bytes | None:
        import obstore

        try:
            return bytes(obstore.get(self._store, path).bytes())
        except FileNotFoundError:
            return None
