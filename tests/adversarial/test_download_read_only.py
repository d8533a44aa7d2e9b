"""Issue 8.20: a cache shared read-only (into CI jobs or containers) serves its hits, and a
miss says that the cache is read-only.

Two real read-only conditions, neither simulated: the immutable attribute (`chattr +i`), which
root cannot write through either (EPERM), and plain `chmod -R a-w` for a process that is not
root (EACCES: when the tests run as root, which ignores modes, the child process imports its
code as root, since the interpreter lives under /root, then drops to `nobody` to run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.downloads import conftest
from tests.downloads.conftest import FaultServer, payload, sha

server = conftest.server  # the download tests' fixture, shared

PINNED, UNPINNED = payload(30_000, seed=5), payload(20_000, seed=6)
AS_NOBODY = """
import os, runpy, sys
import cachefix.cli, cachefix.downloads.api, cachefix.downloads.commands, cachefix.downloads.http
import cachefix.downloads.inventory, filelock, platformdirs
os.setgroups([]); os.setgid(65534); os.setuid(65534)
sys.argv[0] = "cachefix"
runpy.run_module("cachefix", run_name="__main__")
"""


@pytest.fixture
def shared_cache(server: FaultServer) -> Iterator[Path]:
    """A filled cache in a folder any user can traverse, removed afterwards whatever the test did."""
    root = Path(tempfile.mkdtemp(prefix="cachefix-ro-", dir="/tmp"))
    root.chmod(0o755)
    cache = root / "cache"
    env = {"CACHEFIX_CACHE_DIR": str(cache)}
    assert _run(["fetch", server.add("/pinned", PINNED), "--sha256", sha(PINNED)], env).returncode == 0
    assert _run(["fetch", server.add("/unpinned", UNPINNED)], env).returncode == 0
    server.add("/new", b"never cached")
    yield cache
    subprocess.run(["chattr", "-R", "-i", str(root)], capture_output=True, check=False)
    for folder, _, _ in os.walk(root):
        os.chmod(folder, 0o755)
    shutil.rmtree(root)


def _run(args: list[str], env: dict[str, str], nobody: bool = False) -> subprocess.CompletedProcess[str]:
    command = ["-c", AS_NOBODY] if nobody else ["-m", "cachefix"]
    return subprocess.run([sys.executable, *command, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CACHEFIX_BACKOFF_BASE": "0.01", **env})


def _check_hits_and_a_miss(server: FaultServer, cache: Path, out: Path, nobody: bool = False) -> None:
    env = {"CACHEFIX_CACHE_DIR": str(cache)}
    done = _run(["fetch", server.url("/pinned"), "--sha256", sha(PINNED), "-o", str(out / "a")], env, nobody)
    assert done.returncode == 0, done.stderr
    assert (out / "a").read_bytes() == PINNED
    done = _run(["fetch", server.url("/unpinned"), "--max-age", "1h", "-o", str(out / "b")], env, nobody)
    assert done.returncode == 0, done.stderr
    assert (out / "b").read_bytes() == UNPINNED
    assert _run(["fetch", server.url("/unpinned"), "--offline", "-o", str(out / "c")], env, nobody).returncode == 0
    done = _run(["fetch", server.url("/new")], env, nobody)
    assert done.returncode == 1 and "read-only" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert _run(["cache", "stats", "--downloads"], env, nobody).returncode == 0


def test_immutable_cache_serves_hits_even_to_root(server: FaultServer, shared_cache: Path) -> None:
    frozen = subprocess.run(["chattr", "-R", "+i", str(shared_cache)], capture_output=True, text=True)
    if frozen.returncode:
        pytest.skip(f"chattr +i is not available here: {frozen.stderr.strip()}")
    with pytest.raises(PermissionError):
        (shared_cache / "probe").write_text("")  # really read-only, for root too
    out = shared_cache.parent / "out"
    out.mkdir()
    _check_hits_and_a_miss(server, shared_cache, out)


def test_unwritable_cache_serves_hits_to_a_normal_user(server: FaultServer, shared_cache: Path) -> None:
    subprocess.run(["chmod", "-R", "a+rX,a-w", str(shared_cache)], check=True)  # shared: readable by all
    out = shared_cache.parent / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    _check_hits_and_a_miss(server, shared_cache, out, nobody=os.getuid() == 0)
