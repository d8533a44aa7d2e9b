"""The harness's own parts, without any engine: what the package servers send and count.

These run everywhere (no root): if the byte counts or the 304s were wrong, the bandwidth
tests would prove nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import ssl
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import debs, fileserver, hfhub, wheels
from .hfhub import HubServer
from .pkgserver import PackageServer
from .tlscert import make_cert


def _get(url: str, headers: dict[str, str] | None = None,
         ctx: ssl.SSLContext | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PackageServer, ssl.SSLContext]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    work = tmp_path_factory.mktemp("index")
    cert, key = make_cert(work)
    server = PackageServer(wheels.build_index(work / "pypi"), wheels.cache_control, tls=(cert, key)).start()
    yield server, ssl.create_default_context(cafile=str(cert))
    server.stop()


def test_index_serves_https_with_pypi_cache_headers(index: tuple[PackageServer, ssl.SSLContext]) -> None:
    server, ctx = index
    status, body, headers = _get(server.url + "simple/cfxdemo-plot/", ctx=ctx)
    assert status == 200
    assert headers["Cache-Control"] == "max-age=600, public"
    href = body.decode().split('href="')[1].split('"')[0]
    wheel_url = urllib.request.urljoin(server.url + "simple/cfxdemo-plot/", href)
    mark = server.log.mark()
    status, data, headers = _get(wheel_url, ctx=ctx)
    assert status == 200
    assert "immutable" in headers["Cache-Control"]
    assert hashlib.sha256(data).hexdigest() == href.split("#sha256=")[1]
    assert [h.body_bytes for h in server.log.since(mark)] == [len(data)]


def test_index_answers_conditional_requests_with_304(index: tuple[PackageServer, ssl.SSLContext]) -> None:
    server, ctx = index
    url = server.url + "simple/cfxdemo-core/"
    _, _, headers = _get(url, ctx=ctx)
    mark = server.log.mark()
    assert _get(url, {"If-None-Match": headers["ETag"]}, ctx)[0] == 304
    assert _get(url, {"If-Modified-Since": headers["Last-Modified"]}, ctx)[0] == 304
    assert _get(url, {"If-None-Match": '"other"'}, ctx)[0] == 200
    hits = server.log.since(mark)
    assert [h.status for h in hits] == [304, 304, 200]
    assert hits[0].body_bytes == hits[1].body_bytes == 0


def test_wheels_are_valid_and_mostly_incompressible(tmp_path: Path) -> None:
    wheel = wheels.WHEELS[1]
    path = wheels.build_wheel(wheel, tmp_path)
    assert path.stat().st_size > wheel.payload
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        metadata = zf.read(f"{wheel.import_name}-{wheel.version}.dist-info/METADATA").decode()
        record = zf.read(f"{wheel.import_name}-{wheel.version}.dist-info/RECORD").decode()
    assert "Requires-Dist: cfxdemo-core>=1.0" in metadata
    assert f"{wheel.import_name}/payload.bin" in record
    again = tmp_path / "again"
    again.mkdir()
    assert wheels.build_wheel(wheel, again).read_bytes() == path.read_bytes()  # seeded: same bytes


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
def test_apt_repository_indexes_match_the_packages(tmp_path: Path) -> None:
    root = debs.build_repo(tmp_path / "apt")
    packages = (root / "Packages").read_bytes()
    assert gzip.decompress((root / "Packages.gz").read_bytes()) == packages
    release = (root / "Release").read_text()
    assert f"{hashlib.sha256(packages).hexdigest()} {len(packages)} Packages" in release
    stanzas = packages.decode().strip().split("\n\n")
    assert len(stanzas) == len(debs.DEBS)
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines())
        data = (root / fields["Filename"]).read_bytes()
        assert int(fields["Size"]) == len(data) > 2 * debs.MiB
        assert fields["SHA256"] == hashlib.sha256(data).hexdigest()


def test_hub_serves_a_snapshot_the_way_huggingface_hub_asks_and_counts_its_bytes() -> None:
    hub = HubServer().start()
    try:
        base = f"{hub.url}/api/models/{hfhub.MODEL_REPO}"
        status, body, _ = _get(f"{base}/revision/main")
        sha = json.loads(body)["sha"]
        assert status == 200
        status, body, _ = _get(f"{base}/tree/{sha}?recursive=true&expand=false")
        sizes = {e["path"]: e["size"] for e in json.loads(body) if e["type"] == "file"}
        assert sizes["model.safetensors"] == hfhub.WEIGHTS_SIZE
        mark = hub.log.mark()
        status, data, headers = _get(f"{hub.url}/{hfhub.MODEL_REPO}/resolve/{sha}/model.safetensors")
        assert (status, headers["X-Repo-Commit"]) == (200, sha)
        assert headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'  # LFS files: the sha256, as the Hub
        assert _get(f"{hub.url}/{hfhub.MODEL_REPO}/resolve/main/missing.bin")[0] == 404
        hits = hub.log.since(mark)
        assert [h.status for h in hits] == [200, 404]
        assert hits[0].body_bytes == hfhub.WEIGHTS_SIZE
    finally:
        hub.stop()


def test_file_server_answers_curl_and_wget_revalidation_with_304(tmp_path: Path) -> None:
    files = PackageServer(fileserver.build_files(tmp_path / "files"), fileserver.cache_control).start()
    try:
        status, data, headers = _get(files.url + fileserver.MODEL_FILE)
        assert (status, hashlib.sha256(data).hexdigest()) == (200, fileserver.MODEL_SHA256)
        assert _get(files.url + fileserver.MODEL_FILE, {"If-None-Match": headers["ETag"]})[0] == 304
        assert _get(files.url + fileserver.MODEL_FILE, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
        with tarfile.open(fileobj=io.BytesIO(_get(files.url + fileserver.TOOL_TARBALL)[1])) as tar:
            assert tar.getmember("cfx-tool/bin/cfx-tool").mode == 0o755
    finally:
        files.stop()
