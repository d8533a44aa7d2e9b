"""CF701: curl and wget downloads kept in a cache mount. The rewritten commands are run for real, with sh,
curl and GNU wget, against a server on 127.0.0.1 that sends ETag (or only Last-Modified) and answers 304."""

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
from cachefix.rules.builtin.downloads import CACHE, old_curl, parse_curl, parse_wget
from cachefix.rules.registry import all_rules

FILES: dict[str, bytes] = {}
MODIFIED: dict[str, int] = {}  # a path's Last-Modified time, when not the default
SENT: list[tuple[str, int]] = []  # (path, body bytes sent)


class Handler(BaseHTTPRequestHandler):
    """Serves FILES; `/plain/...` sends Last-Modified only, everything else an ETag too."""

    def do_GET(self) -> None:
        path = self.path.removeprefix("/plain")
        if path not in FILES:
            self.send_error(404)
            return
        data, modified = FILES[path], MODIFIED.get(path, 1_700_000_000)
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        plain = self.path.startswith("/plain/")
        since = self.headers.get("If-Modified-Since")
        if "If-None-Match" in self.headers:
            fresh = not plain and self.headers["If-None-Match"] == etag
        else:
            fresh = since is not None and email.utils.parsedate_to_datetime(since).timestamp() >= modified
        SENT.append((self.path, 0 if fresh else len(data)))
        self.send_response(304 if fresh else 200)
        if not plain:
            self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(modified, usegmt=True))
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


def run(script: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-ec", script], cwd=cwd, check=check, capture_output=True, timeout=60)


needs_tools = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("sha256sum")), reason="needs curl")
needs_wget = pytest.mark.skipif(b"GNU Wget" not in subprocess.run(["wget", "--version"], capture_output=True).stdout
                                if shutil.which("wget") else True, reason="needs GNU wget")
SHAPES = [
    ('curl -fsSLO --compressed "{url}/dist/tool-$V.tar.gz"', ["tool-1.2.tar.gz"]),
    ("curl -fsSL -H 'X-Token: t' --retry 2 -o out/tool.tgz {url}/dist/tool-$V.tar.gz", ["out/tool.tgz"]),
    ("curl -fsSL {url}/plain/dist/tool-$V.tar.gz > out/plain.tgz", ["out/plain.tgz"]),
    ("curl -fsSL {url}/dist/tool-$V.tar.gz | tar -xz -C out", ["out/tool/README"]),
    ("curl -fsSL {url}/install.sh | sh", ["installed"]),
]
WGET_SHAPES = [
    ("wget -q -O out/m.bin {url}/dist/tool-$V.tar.gz", ["out/m.bin"]),
    ('wget -nv --header "X-Token: t" --tries=2 --timeout 5 --no-check-certificate -O out/m.bin "{url}/dist/m.bin"',
     ["out/m.bin"]),
    ("wget --quiet {url}/plain/dist/tool-$V.tar.gz", ["tool-1.2.tar.gz"]),
    ("wget -qO- {url}/dist/tool-$V.tar.gz | tar -xz -C out", ["out/tool/README"]),
    ("wget --output-document=- -q {url}/install.sh | sh", ["installed"]),
]


@needs_tools
@pytest.mark.parametrize("shape, outputs", SHAPES + [pytest.param(*shape, marks=needs_wget) for shape in WGET_SHAPES])
def test_the_rewrite_downloads_once_and_writes_the_same_file(server: str, tmp_path: Path, shape: str,
                                                             outputs: list[str]) -> None:
    FILES.update({"/dist/tool-1.2.tar.gz": tarball(), "/install.sh": b"echo ok > installed\n",
                  "/dist/m.bin": b"m" * 9000})
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


def wget_script(dockerfile_run: str, cache: Path) -> str:
    return fixed_run(f"FROM debian:bookworm\nRUN {dockerfile_run}\n").replace(CACHE, str(cache))


@needs_wget
@pytest.mark.parametrize("option", ["-O t.bin", ""])
def test_wget_output_has_the_server_time_as_wget_gives_it(server: str, tmp_path: Path, option: str) -> None:
    FILES["/w/t.bin"] = b"model"
    line = f"wget -q {option} {server}/w/t.bin"
    (tmp_path / "plain").mkdir()
    run(line, tmp_path / "plain")
    run(wget_script(line, tmp_path / "cache"), tmp_path)
    assert (tmp_path / "t.bin").stat().st_mtime == (tmp_path / "plain/t.bin").stat().st_mtime == 1_700_000_000


@needs_wget
def test_wget_changed_file_replaces_the_cached_copy(server: str, tmp_path: Path) -> None:
    FILES["/w/model.bin"] = b"version one"
    script = wget_script(f"wget -q -O model.bin {server}/w/model.bin", tmp_path / "cache")
    run(script, tmp_path)
    FILES["/w/model.bin"], MODIFIED["/w/model.bin"] = b"version two, longer", 1_800_000_000
    run(script, tmp_path)
    assert (tmp_path / "model.bin").read_bytes() == b"version two, longer"


@needs_wget
def test_wget_interrupted_copy_is_downloaded_again(server: str, tmp_path: Path) -> None:
    """A copy wget was writing when the build was killed has no marker: not trusted, though the server says 304."""
    FILES["/w/big.bin"] = b"complete model"
    script = wget_script(f"wget -q -O big.bin {server}/w/big.bin", tmp_path / "cache")
    run(script, tmp_path)
    (copy,) = (tmp_path / "cache").glob("wget-*/big.bin")
    copy.write_bytes(b"compl")  # as a killed transfer leaves it, with its marker not yet made
    next((tmp_path / "cache").glob("wget-*.ok")).unlink()
    run(script, tmp_path)
    assert (tmp_path / "big.bin").read_bytes() == b"complete model"


@needs_wget
def test_wget_failed_download_fails_the_run(server: str, tmp_path: Path) -> None:
    script = wget_script(f"wget -q -O gone.bin {server}/w/gone.bin", tmp_path / "cache")
    assert run(script, tmp_path, check=False).returncode != 0


@needs_wget
def test_wget_without_o_writes_a_numbered_copy_beside_an_existing_file(server: str, tmp_path: Path) -> None:
    """As wget does: it never overwrites a file of the URL's name, it writes NAME.1."""
    FILES["/w/n.bin"] = b"new"
    (tmp_path / "n.bin").write_bytes(b"old")
    run(wget_script(f"wget -q {server}/w/n.bin", tmp_path / "cache"), tmp_path)
    assert ((tmp_path / "n.bin").read_bytes(), (tmp_path / "n.bin.1").read_bytes()) == (b"old", b"new")


def wget(text: str):
    return parse_wget(commands(text)[0])


def test_wget_options_whose_effect_on_the_file_is_unknown_are_refused() -> None:
    for line in ("wget -c -O a https://x/a", "wget -N https://x/a", "wget -r https://x/", "wget -i urls.txt",
                 "wget -m https://x/", "wget -p https://x/", "wget -nc https://x/a", "wget --content-disposition https://x/a"):
        assert wget(line).refusal, line
    kept = wget("wget -nv --header='A: b' -t 3 --user u --password p -qO /tmp/a https://x/a --progress=dot:giga")
    assert (kept.refusal, kept.output) == ("", "/tmp/a")
    assert kept.kept == ["-nv", "--header='A: b'", "-t", "3", "--user", "u", "--password", "p", "-q",
                         "--progress=dot:giga"]


@pytest.mark.parametrize("dockerfile", [
    "FROM alpine:3.20\nRUN wget -O go.tgz https://go.dev/dl/go.tgz\n",
    "FROM golang:1.23-alpine\nRUN wget -O go.tgz https://go.dev/dl/go.tgz\n",
    "FROM example/base:1\nRUN apk add --no-cache ca-certificates\nRUN wget -O go.tgz https://go.dev/dl/go.tgz\n",
])
def test_busybox_wget_is_reported_never_rewritten(dockerfile: str) -> None:
    result = fix(dockerfile, Settings([r() for r in all_rules()]))
    assert "cachefix-downloads" not in result.fixed
    (finding,) = [f for f in result.findings if f.code == "CF701"]
    assert not finding.fixable and "BusyBox" in finding.message
