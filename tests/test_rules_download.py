"""CF701: curl downloads kept in a cache mount. The rewritten commands are run for real, with sh
and curl, against a server on 127.0.0.1 that sends ETag (or only Last-Modified) and answers 304."""

from __future__ import annotations

import email.utils
import hashlib
import io
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cachefix.engine import Settings, fix
from cachefix.rewriter.shell import commands
from cachefix.rules.builtin.downloads import CACHE, DownloadRule, old_curl, parse_curl
from cachefix.rules.registry import all_rules

FILES: dict[str, bytes] = {}
SENT: list[tuple[str, int]] = []  # (path, body bytes sent)


class Handler(BaseHTTPRequestHandler):
    """Serves FILES; `/plain/...` sends Last-Modified only, everything else an ETag too."""

    def do_GET(self) -> None:
        data = FILES[self.path.removeprefix("/plain")]
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        plain = self.path.startswith("/plain/")
        since = self.headers.get("If-Modified-Since")
        if plain:
            fresh = since is not None and "If-None-Match" not in self.headers
        else:
            fresh = self.headers.get("If-None-Match") == etag
        SENT.append((self.path, 0 if fresh else len(data)))
        self.send_response(304 if fresh else 200)
        if not plain:
            self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(1_700_000_000, usegmt=True))
        if not fresh:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not fresh:
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def tarball() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("tool/README")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return out.getvalue()


def fixed_run(dockerfile: str) -> str:
    """The shell script of the one RUN of the fixed file (after its mount flag)."""
    fixed = fix(dockerfile, Settings([r() for r in all_rules()])).fixed
    line = next(line for line in fixed.splitlines() if line.startswith("RUN "))
    assert f"--mount=type=cache,target={CACHE},sharing=locked " in line, fixed
    return line.split(" ", 2)[2]


def run(script: str, cwd: Path) -> None:
    subprocess.run(["sh", "-ec", script], cwd=cwd, check=True, capture_output=True, timeout=60)


needs_tools = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("sha256sum")), reason="needs curl")


@needs_tools
@pytest.mark.parametrize("shape, outputs", [
    ('curl -fsSLO --compressed "{url}/dist/tool-$V.tar.gz"', ["tool-1.2.tar.gz"]),
    ("curl -fsSL -H 'X-Token: t' --retry 2 -o out/tool.tgz {url}/dist/tool-$V.tar.gz", ["out/tool.tgz"]),
    ("curl -fsSL {url}/plain/dist/tool-$V.tar.gz > out/plain.tgz", ["out/plain.tgz"]),
    ("curl -fsSL {url}/dist/tool-$V.tar.gz | tar -xz -C out", ["out/tool/README"]),
    ("curl -fsSL {url}/install.sh | sh", ["installed"]),
])
def test_the_rewrite_downloads_once_and_writes_the_same_file(server: str, tmp_path: Path, shape: str,
                                                             outputs: list[str]) -> None:
    FILES.update({"/dist/tool-1.2.tar.gz": tarball(), "/install.sh": b"echo ok > installed\n"})
    original = shape.format(url=server)
    script = fixed_run(f"FROM debian:bookworm\nARG V=1.2\nRUN {original}\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    script = "V=1.2; " + script.replace(CACHE, str(cache))
    plain, rewritten = tmp_path / "plain", tmp_path / "rewritten"
    for where in (plain, rewritten):
        (where / "out").mkdir(parents=True)
    run("V=1.2; " + original, plain)
    SENT.clear()
    for build in (1, 2):
        shutil.rmtree(rewritten)
        (rewritten / "out").mkdir(parents=True)
        run(script, rewritten)
        for name in outputs:
            assert (rewritten / name).read_bytes() == (plain / name).read_bytes(), (build, name)
    first, second = SENT
    assert first[1] > 0 and second[1] == 0  # the second build transfers no body


@needs_tools
def test_a_changed_file_replaces_the_cached_copy(server: str, tmp_path: Path) -> None:
    FILES["/model.bin"] = b"version one"
    script = fixed_run(f"FROM debian:bookworm\nRUN curl -fsSL -o model.bin {server}/model.bin\n")
    script = script.replace(CACHE, str(tmp_path))
    run(script, tmp_path)
    FILES["/model.bin"] = b"version two, longer"
    run(script, tmp_path)
    assert (tmp_path / "model.bin").read_bytes() == b"version two, longer"


def curl(text: str):
    return parse_curl(commands(text)[0])


def test_options_whose_effect_on_the_file_is_unknown_are_refused() -> None:
    assert curl("curl -fsSLJO https://x/a.deb").refusal == "cachefix does not know what `-J` does to the file it keeps"
    assert curl("curl -o a https://x/a https://x/b").refusal == "it downloads more than one URL"
    assert curl("curl -w '%{http_code}' -o a https://x/a").refusal
    kept = curl("curl -fsSL --retry 5 -H 'A: b' -o /tmp/a https://x/a")
    assert (kept.refusal, kept.kept, kept.output) == ("", ["-fsSL", "--retry", "5", "-H", "'A: b'"], "/tmp/a")


def test_images_known_to_ship_an_old_curl() -> None:
    assert old_curl("ubuntu:20.04") and old_curl("python:3.8-buster") and old_curl("node:14-bullseye") is False
    assert not old_curl("debian:bookworm") and not old_curl("ubuntu:22.04") and not old_curl("alpine:3.20")


def test_wget_is_reported_never_rewritten() -> None:
    text = "FROM debian:bookworm\nRUN wget -O go.tgz https://go.dev/dl/go.tgz && tar -xzf go.tgz\n"
    result = fix(text, Settings([DownloadRule()]))
    assert result.fixed == text
    assert [f.code for f in result.findings] == ["CF701"] and not result.findings[0].fixable
