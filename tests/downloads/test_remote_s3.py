"""The S3 remote tier against a real SeaweedFS: two machines are two cache folders sharing a bucket.

The origin is the counting test server (conftest.py): "0 bytes from the origin" is what it
sent, not what cachefix says it did.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.downloads.conftest import cachefix, payload, sha
from tests.downloads.remote_stores import Seaweed

BIG = 100 * 1024 * 1024


@pytest.fixture
def team(seaweed: Seaweed, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket as the team's remote, set in the environment as a user would."""
    bucket = seaweed.new_bucket()
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    remote = f"s3://{bucket}/cachefix"
    monkeypatch.setenv("CACHEFIX_REMOTE", remote)
    return remote


def machine(tmp_path: Path, name: str) -> dict[str, str]:
    return {"CACHEFIX_CACHE_DIR": str(tmp_path / name)}


def s3_object(remote: str, key: str) -> bytes:
    import obstore
    from obstore.store import S3Store

    bucket, prefix = remote.removeprefix("s3://").split("/", 1)
    store = S3Store(bucket, prefix=prefix, client_options={"allow_http": True})
    return bytes(obstore.get(store, key).bytes())


def put_s3_object(remote: str, key: str, data: bytes) -> None:
    import obstore
    from obstore.store import S3Store

    bucket, prefix = remote.removeprefix("s3://").split("/", 1)
    obstore.put(S3Store(bucket, prefix=prefix, client_options={"allow_http": True}), key, data)


def test_second_machine_takes_no_bytes_from_the_origin(server, team: str, tmp_path: Path) -> None:
    content = payload(BIG)
    url = server.add("/model.bin", content)
    first = cachefix("fetch", "-v", url, "-o", str(tmp_path / "a.bin"), env=machine(tmp_path, "a"))
    assert first.returncode == 0, first.stderr
    assert server.sent["/model.bin"] == BIG

    second = cachefix("fetch", "-v", url, "-o", str(tmp_path / "b.bin"), env=machine(tmp_path, "b"))
    assert second.returncode == 0, second.stderr
    assert server.sent["/model.bin"] == BIG  # B asked the origin (a 304) but took no byte from it
    assert "revalidated" in second.stderr
    assert sha((tmp_path / "b.bin").read_bytes()) == sha(content)

    pinned = cachefix("fetch", url, "--sha256", sha(content), env=machine(tmp_path, "c"))
    assert pinned.returncode == 0, pinned.stderr
    assert len(server.headers_of("/model.bin")) == 2  # a pinned digest does not even ask the origin
    assert sha(Path(pinned.stdout.strip()).read_bytes()) == sha(content)


def test_an_unpinned_url_within_max_age_or_offline_is_served_by_the_remote_alone(
        server, team: str, tmp_path: Path) -> None:
    url = server.add("/tool.tar.gz", payload(300_000))
    assert cachefix("fetch", url, env=machine(tmp_path, "a")).returncode == 0
    fresh = cachefix("fetch", "-v", "--max-age", "1h", url, env=machine(tmp_path, "b"))
    offline = cachefix("fetch", "-v", "--offline", url, env=machine(tmp_path, "c"))
    assert fresh.returncode == 0 and offline.returncode == 0, fresh.stderr + offline.stderr
    assert "remote:" in fresh.stderr and "remote:" in offline.stderr
    assert len(server.headers_of("/tool.tar.gz")) == 1


def test_a_changed_origin_file_replaces_the_shared_record(server, team: str, tmp_path: Path) -> None:
    old, new = payload(50_000, seed=1), payload(60_000, seed=2)
    url = server.add("/latest.tar.gz", old, next_content=new)
    assert cachefix("fetch", url, env=machine(tmp_path, "a")).returncode == 0
    server.routes["/latest.tar.gz"].faults.append("change")
    changed = cachefix("fetch", url, env=machine(tmp_path, "b"))
    assert changed.returncode == 0, changed.stderr
    assert Path(changed.stdout.strip()).read_bytes() == new
    third = cachefix("fetch", "--max-age", "1h", url, env=machine(tmp_path, "c"))
    assert Path(third.stdout.strip()).read_bytes() == new  # the record now names the new content


def test_a_corrupt_remote_object_is_reported_and_replaced_from_the_origin(
        server, team: str, tmp_path: Path) -> None:
    content = payload(2_000_000)
    url = server.add("/data.bin", content)
    assert cachefix("fetch", url, "--sha256", sha(content), env=machine(tmp_path, "a")).returncode == 0
    broken = bytearray(content)
    broken[1000] ^= 0xFF
    put_s3_object(team, f"sha256/{sha(content)}", bytes(broken))

    second = cachefix("fetch", url, "--sha256", sha(content), env=machine(tmp_path, "b"))
    assert second.returncode == 0, second.stderr
    assert "corrupt" in second.stderr and sha(content) in second.stderr
    assert sha(Path(second.stdout.strip()).read_bytes()) == sha(content)
    assert server.bodies["/data.bin"] == 2  # B took it from the origin
    assert sha(s3_object(team, f"sha256/{sha(content)}")) == sha(content)  # and put the good copy back

    third = cachefix("fetch", url, "--sha256", sha(content), env=machine(tmp_path, "c"))
    assert third.returncode == 0 and server.bodies["/data.bin"] == 2


def test_a_stopped_remote_degrades_to_the_origin_with_one_warning(
        server, cache_dir: Path, tmp_path: Path) -> None:
    own = Seaweed.start(tmp_path / "weed")
    try:
        bucket = own.new_bucket()
        env = {**own.env(), "CACHEFIX_REMOTE": f"s3://{bucket}/p"}
        urls = [server.add(f"/f{i}", payload(10_000, seed=i)) for i in range(3)]
        assert cachefix("fetch", urls[0], env={**env, **machine(tmp_path, "a")}).returncode == 0
    finally:
        own.stop()
    manifest = tmp_path / "deps.txt"
    manifest.write_text("".join(f"{url}\n" for url in urls))
    down = cachefix("fetch", "--manifest", str(manifest), "-j", "2", env={**env, **machine(tmp_path, "b")})
    assert down.returncode == 0, down.stderr
    assert down.stderr.count("warning:") == 1 and "remote s3://" in down.stderr
    assert all(server.bodies[f"/f{i}"] >= 1 for i in range(3))


def test_a_remote_that_never_answers_costs_a_timeout_not_the_fetch(server, cache_dir: Path, tmp_path: Path,
                                                                   seaweed: Seaweed) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel; nothing ever answers
    try:
        env = {**seaweed.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
               "CACHEFIX_REMOTE": "s3://team/p", "CACHEFIX_REMOTE_TIMEOUT": "1"}
        url = server.add("/slow-remote.bin", payload(10_000))
        result = cachefix("fetch", url, env={**env, **machine(tmp_path, "a")})
    finally:
        silent.close()
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning:") == 1
    assert server.bodies["/slow-remote.bin"] == 1


def test_eight_processes_on_each_of_two_machines_download_once(server, team: str, tmp_path: Path) -> None:
    content = payload(8 * 1024 * 1024)
    url = server.add("/shared.bin", content, chunk_delay=0.01)  # about 1.3 s: every process overlaps it
    env = {**os.environ}
    runs = []
    for index in range(16):
        folder = tmp_path / ("a" if index % 2 else "b")
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "cachefix", "fetch", url, "-o", str(tmp_path / f"out{index}")],
            env={**env, "CACHEFIX_CACHE_DIR": str(folder)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
    assert server.bodies["/shared.bin"] == 1
    expected = hashlib.sha256(content).hexdigest()
    assert all(sha((tmp_path / f"out{index}").read_bytes()) == expected for index in range(16))


def test_the_shell_drop_in_on_the_second_machine_uses_the_remote(server, team: str, tmp_path: Path) -> None:
    content = payload(1_000_000)
    url = server.add("/release.tar", content)
    assert cachefix("fetch", url, env=machine(tmp_path, "a")).returncode == 0
    init = cachefix("shell-init", "bash").stdout
    script = f'{init}\ncached_download "{url}" "{tmp_path}/dest.tar" "{sha(content)}"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOWNLOAD_CACHE": str(tmp_path / "b")})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dest.tar").read_bytes() == content
    assert server.bodies["/release.tar"] == 1 and len(server.headers_of("/release.tar")) == 1


def test_the_python_api_uses_the_remote(server, team: str, tmp_path: Path) -> None:
    from cachefix import cached_download

    content = payload(200_000)
    url = server.add("/api.bin", content)
    cached_download(url, sha256=sha(content), cache_dir=tmp_path / "a")
    path = cached_download(url, sha256=sha(content), cache_dir=tmp_path / "b")
    assert path.read_bytes() == content and server.bodies["/api.bin"] == 1


def test_push_uploads_the_local_cache_and_skips_what_is_there(server, team: str, tmp_path: Path) -> None:
    contents = [payload(100_000, seed=i) for i in range(3)]
    urls = [server.add(f"/p{i}", c) for i, c in enumerate(contents)]
    for url in urls:
        assert cachefix("fetch", "--no-remote", url, env=machine(tmp_path, "a")).returncode == 0
    pushed = cachefix("cache", "push", env=machine(tmp_path, "a"))
    assert pushed.returncode == 0, pushed.stderr
    assert "3 uploaded" in pushed.stdout and "0 already" in pushed.stdout
    again = cachefix("cache", "push", env=machine(tmp_path, "a"))
    assert "0 uploaded" in again.stdout and "3 already" in again.stdout
    late = cachefix("fetch", "--offline", urls[1], env=machine(tmp_path, "b"))
    assert late.returncode == 0 and Path(late.stdout.strip()).read_bytes() == contents[1]
    stats = cachefix("cache", "stats", "--downloads", env=machine(tmp_path, "a"))
    assert team in stats.stdout and "3 files" in stats.stdout


def test_a_bad_remote_is_a_usage_error(server, cache_dir: Path) -> None:
    url = server.add("/x", b"x")
    result = cachefix("fetch", url, "--remote", "ftp://host/x")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "ftp://host/x" in result.stderr



def test_stats_names_an_unreachable_remote_without_failing(cache_dir: Path, seaweed: Seaweed) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    env = {**seaweed.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "CACHEFIX_REMOTE": "s3://team/p"}
    stats = cachefix("cache", "stats", "--downloads", env=env)
    assert stats.returncode == 0, stats.stderr
    assert "remote s3://team/p: unreachable" in stats.stdout and "warning" not in stats.stderr


def test_a_lease_left_by_a_dead_machine_is_taken_over(server, team: str, tmp_path: Path) -> None:
    import json
    import time

    from cachefix.downloads.index import url_key

    url = server.add("/orphan.bin", payload(50_000))
    put_s3_object(team, f"leases/{url_key(url)}", json.dumps({"owner": "gone/1", "expires": time.time() - 1}).encode())
    result = cachefix("fetch", url, env=machine(tmp_path, "a"))
    assert result.returncode == 0, result.stderr
    assert server.bodies["/orphan.bin"] == 1
    with pytest.raises(FileNotFoundError):
        s3_object(team, f"leases/{url_key(url)}")  # released after the download
