"""What the plain HTTPS file server serves: a release tarball and a model file, for curl and wget.

Served by ``PackageServer`` (ETag, Last-Modified, 304 on If-None-Match/If-Modified-Since), as a
release host or a bucket would. Payloads are seeded random bytes: gzip cannot shrink them, and
every session serves the same model file, so an image check can compare its digest.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
from pathlib import Path

MiB = 1024 * 1024
TOOL_TARBALL = "tool.tgz"  # unpacks to cfx-tool/{bin/cfx-tool,share/cfx-tool/data.bin}
TOOL_VERSION = "cfx-tool 2.0.0"
TOOL_PAYLOAD = 3 * MiB
MODEL_FILE = "m.bin"
MODEL_SIZE = 3 * MiB


def model_bytes() -> bytes:
    return random.Random(MODEL_FILE).randbytes(MODEL_SIZE)


MODEL_SHA256 = hashlib.sha256(model_bytes()).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def _tool_tarball() -> bytes:
    """A prebuilt tool as projects ship them: a program and its data under one top folder."""
    script = f'#!/bin/sh\ntest -s "$(dirname "$0")/../share/cfx-tool/data.bin" && echo "{TOOL_VERSION}"\n'
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        _add(tar, "cfx-tool/bin/cfx-tool", script.encode(), 0o755)
        _add(tar, "cfx-tool/share/cfx-tool/data.bin", random.Random(TOOL_TARBALL).randbytes(TOOL_PAYLOAD), 0o644)
    return buf.getvalue()


def build_files(root: Path) -> Path:
    """Write the served files under ``root``; returns root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / TOOL_TARBALL).write_bytes(_tool_tarball())
    (root / MODEL_FILE).write_bytes(model_bytes())
    return root


def cache_control(path: str) -> str:
    """Revalidate every time, as object stores send for mutable objects: only a 304 saves bytes."""
    return "no-cache"
