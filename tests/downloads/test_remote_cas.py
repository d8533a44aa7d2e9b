"""The HTTP CAS remote tier (bazel-remote's protocol) against a real nginx with WebDAV PUT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cachefix.downloads.index import url_key
from cachefix.downloads.remote.cas import action_result, stdout_raw
from tests.downloads.conftest import cachefix, payload, sha
from tests.downloads.remote_stores import CAS_TOKEN, CasServer


def machine(tmp_path: Path, name: str, remote: str, **extra: str) -> dict[str, str]:
    return {"CACHEFIX_CACHE_DIR": str(tmp_path / name), "CACHEFIX_REMOTE": remote, **extra}


def test_second_machine_takes_no_bytes_from_the_origin(server, cache_dir: Path, cas_server: CasServer,
                                                       tmp_path: Path) -> None:
    content = payload(5_000_000)
    url = server.add("/model.bin", content)
    first = cachefix("fetch", url, env=machine(tmp_path, "a", cas_server.url()))
    assert first.returncode == 0, first.stderr
    blob = cas_server.root / "cache" / "cas" / sha(content)
    assert sha(blob.read_bytes()) == sha(content)
    record = json.loads(stdout_raw((cas_server.root / "cache" / "ac" / url_key(url)).read_bytes()) or b"")
    assert record["digest"] == sha(content) and record["etag"] == server.routes["/model.bin"].etag

    second = cachefix("fetch", "-v", url, "-o", str(tmp_path / "b.bin"), env=machine(tmp_path, "b", cas_server.url()))
    assert second.returncode == 0, second.stderr
    assert "revalidated" in second.stderr and "warning" not in second.stderr
    assert server.sent["/model.bin"] == len(content)  # the 304 carried no body
    assert (tmp_path / "b.bin").read_bytes() == content


def test_a_bearer_token_from_the_environment(server, cache_dir: Path, cas_server: CasServer, tmp_path: Path) -> None:
    content = payload(100_000)
    url = server.add("/t.bin", content)
    with_token = machine(tmp_path, "a", cas_server.token_url(), CACHEFIX_REMOTE_TOKEN=CAS_TOKEN)
    assert cachefix("fetch", url, "--sha256", sha(content), env=with_token).returncode == 0
    assert (cas_server.root / "cache" / "cas" / sha(content)).is_file()
    again = cachefix("fetch", url, "--sha256", sha(content),
                     env={**with_token, "CACHEFIX_CACHE_DIR": str(tmp_path / "b")})
    assert again.returncode == 0 and server.bodies["/t.bin"] == 1


@pytest.mark.parametrize("credentials", ["wrong-password", "no-token"])
def test_refused_credentials_degrade_to_the_origin_with_one_warning(
        server, cache_dir: Path, cas_server: CasServer, tmp_path: Path, credentials: str) -> None:
    remote = (cas_server.url().replace(":s3cret@", ":nope@") if credentials == "wrong-password"
              else cas_server.token_url())
    url = server.add("/denied.bin", payload(10_000))
    result = cachefix("fetch", url, env=machine(tmp_path, "a", remote))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning:") == 1 and "401" in result.stderr
    assert "s3cret" not in result.stderr and "nope" not in result.stderr  # credentials never printed


def test_a_corrupt_cas_object_is_reported_and_replaced(server, cache_dir: Path, cas_server: CasServer,
                                                       tmp_path: Path) -> None:
    content = payload(1_000_000)
    url = server.add("/c.bin", content)
    assert cachefix("fetch", url, env=machine(tmp_path, "a", cas_server.url())).returncode == 0
    blob = cas_server.root / "cache" / "cas" / sha(content)
    blob.write_bytes(content[:-1] + b"!")
    second = cachefix("fetch", url, env=machine(tmp_path, "b", cas_server.url()))
    assert second.returncode == 0, second.stderr
    assert "corrupt" in second.stderr and Path(second.stdout.strip()).read_bytes() == content
    assert server.bodies["/c.bin"] == 2 and sha(blob.read_bytes()) == sha(content)


def test_url_records_are_valid_action_results() -> None:
    record = b'{"digest": "ab"}' * 20  # longer than 127 bytes: a two-byte length
    message = action_result(record)
    assert message[0] == 0x2A  # field 5 (stdout_raw), length-delimited
    assert stdout_raw(message) == record
    # Fields a real ActionResult may carry around it (exit_code = 1, an output file) are skipped.
    assert stdout_raw(b"\x20\x01" + message + b"\x12\x03abc") == record
    assert stdout_raw(b"\x20\x01") is None
    assert stdout_raw(b"\x2a\x80") is None  # truncated length
    assert stdout_raw(b"\x2a\x05ab") is None  # truncated value
