"""The shell drop-in, run by real bash and zsh scripts written against the old library."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.downloads.conftest import FaultServer, payload, sha

DATA = payload(100_000)

# A script as a user of scripts/lib/download-cache.sh wrote it; only the loading line changed.
SCRIPT = r"""
set -u
eval "$("$PYTHON" -m cachefix shell-init "$SHELL_NAME")"
expect() { want=$1; shift; "$@"; got=$?; [ "$got" = "$want" ] || { echo "FAIL: $* -> $got, not $want"; exit 1; }; }

expect 0 cached_download "$URL" "$WORK/a.bin" "$SHA"
cmp -s "$WORK/a.bin" "$WORK/expected.bin" || { echo "FAIL: wrong content"; exit 1; }
expect 0 cached_download "$URL" "$WORK/b.bin"
expect 1 cached_download "$URL" "$WORK/c.bin" 0000000000000000000000000000000000000000000000000000000000000000
[ ! -e "$WORK/c.bin" ] || { echo "FAIL: mismatch wrote DEST"; exit 1; }
expect 1 cached_download "$URL"
expect 1 cached_download "$BASE/missing" "$WORK/d.bin"
expect 0 cached_download_extract "$TARBALL" "$WORK/x" "" -xzf
[ "$(cat "$WORK/x/pkg/hello.txt")" = hello ] || { echo "FAIL: extract"; exit 1; }
key=$(printf %s "$URL" | sha256sum | cut -d' ' -f1)
expect 0 verify_cache_file "$key" "$SHA"
expect 1 verify_cache_file "$key" 1111111111111111111111111111111111111111111111111111111111111111
expect 1 verify_cache_file 2222222222222222222222222222222222222222222222222222222222222222 "$SHA"
expect 0 show_cache_stats
expect 0 cleanup_download_cache 30
ls "$DOWNLOAD_CACHE/sha256" >/dev/null || { echo "FAIL: DOWNLOAD_CACHE not used"; exit 1; }
echo ALL OK
"""


def tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return buffer.getvalue()


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_old_library_script_runs_unchanged(server: FaultServer, tmp_path: Path, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    (tmp_path / "expected.bin").write_bytes(DATA)
    env = {
        **os.environ, "PYTHON": sys.executable, "SHELL_NAME": shell, "WORK": str(tmp_path),
        "DOWNLOAD_CACHE": str(tmp_path / "dc"), "URL": server.add("/a.bin", DATA), "SHA": sha(DATA),
        "TARBALL": server.add("/t.tgz", tarball()), "BASE": server.url(""),
        "CACHEFIX_BACKOFF_BASE": "0.01", "CACHEFIX_BACKOFF_MAX": "0.02",
    }
    env.pop("CACHEFIX_CACHE_DIR", None)
    done = subprocess.run([shell, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip().endswith("ALL OK"), done.stdout + done.stderr
    # the first call downloaded, the second revalidated (304), the wrong digest forced one more
    assert server.bodies["/a.bin"] == 2 and "If-None-Match" in server.headers_of("/a.bin")[1]
    assert "✗ Usage: cached_download URL DEST_FILE" in done.stderr


def test_default_cache_is_the_one_cachefix_fetch_uses(tmp_path: Path) -> None:
    env = {**os.environ, "CACHEFIX_CACHE_DIR": str(tmp_path / "shared")}
    env.pop("DOWNLOAD_CACHE", None)
    script = f'eval "$({sys.executable} -m cachefix shell-init bash)"; echo "$DOWNLOAD_CACHE"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.strip() == str(tmp_path / "shared")
