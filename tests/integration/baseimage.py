"""The base images the scenarios build FROM, made here because no registry is reachable.

A debootstrap'd Debian bookworm (python3, pip, ca-certificates) shaped like the official
images (their apt.conf.d/docker-* files, no EXTERNALLY-MANAGED marker, no apt lists), saved as
a tarball in a cache folder so warm runs skip debootstrap. Each session then adds a thin layer
that points apt and pip at that session's local servers, tagged as the scenarios' base images.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .engines import Buildah, Dockerd, EngineUnavailable

RECIPE = "bookworm-v2"  # change when the rootfs recipe changes: old tarballs and images are ignored
ROOTFS_TAG = f"cachefix-test/rootfs:{RECIPE}"
PYTHON_TAG = "cachefix-test/python:3.11-bookworm"
DEBIAN_TAG = "cachefix-test/debian:bookworm"
SCENARIO_BASE_TAGS = (PYTHON_TAG, DEBIAN_TAG)
CA_PATH = "/usr/local/share/ca-certificates/cachefix-test-index.crt"

# What debuerreotype puts into the official debian images (and so into python:*-slim).
DOCKER_APT_CONF = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb'
        ' /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
        ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)


def cache_dir() -> Path:
    """Where the rootfs tarball is kept between runs: $CACHEFIX_TEST_CACHE or ~/.cache/cachefix-tests."""
    env = os.environ.get("CACHEFIX_TEST_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "cachefix-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def debian_mirror() -> str:
    """The Debian mirror apt already uses here (debootstrap must not guess another host)."""
    if env := os.environ.get("CACHEFIX_TEST_MIRROR"):
        return env
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for stanza in deb822.read_text().split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:(.*)$", stanza, re.MULTILINE)
            if uris and suites and "bookworm" in suites.group(1).split():
                return uris.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if m:
                return m.group(1)
    raise EngineUnavailable("no Debian bookworm mirror in /etc/apt sources; set CACHEFIX_TEST_MIRROR")


def _shrink(root: Path) -> None:
    """Make the rootfs look like an official image and keep it small."""
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                    "usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*",
                    "var/log/*.log", "usr/lib/python3*/EXTERNALLY-MANAGED"):
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    (root / "etc/apt/sources.list").write_text("")
    for name, text in DOCKER_APT_CONF.items():
        (root / "etc/apt/apt.conf.d" / name).write_text(text)


def rootfs_tarball() -> Path:
    """The cached rootfs tarball, made with debootstrap (about a minute) when missing."""
    tarball = cache_dir() / f"rootfs-{RECIPE}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise EngineUnavailable("debootstrap is not installed (needed once to make the base image)")
    with tempfile.TemporaryDirectory(prefix="cachefix-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-pip,ca-certificates,curl,wget",
             "bookworm", str(root), debian_mirror()],
            capture_output=True, text=True, timeout=900,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        _shrink(root)
        partial = tarball.with_suffix(".tar.partial")
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)
    return tarball


def ensure_rootfs(dockerd: Dockerd, buildah: Buildah | None) -> None:
    """Import the rootfs into dockerd (and copy it to buildah) unless already there."""
    if not dockerd.has_image(ROOTFS_TAG):
        dockerd.import_tarball(rootfs_tarball(), ROOTFS_TAG, IMAGE_CHANGES)
    if buildah is not None and not buildah.has_image(ROOTFS_TAG):
        buildah.pull_from_docker(ROOTFS_TAG)


@dataclass(frozen=True)
class Urls:
    """Where this session's servers listen, as the session layer points the tools at them."""

    apt: str
    pip: str
    hub: str  # HF_ENDPOINT: no trailing slash
    files: str  # $CACHEFIX_FILES, the file server's base: no trailing slash


def session_layer(work: Path, urls: Urls, ca_cert: Path) -> tuple[Path, Path]:
    """Write the context of the per-session layer; returns (context, Dockerfile)."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca_cert, work / "ca.crt")
    (work / "cachefix-local.list").write_text(f"deb [trusted=yes] {urls.apt} ./\n")
    (work / "pip.conf").write_text(
        f"[global]\nindex-url = {urls.pip}simple/\ncert = {CA_PATH}\ndisable-pip-version-check = true\n"
    )
    (work / "wgetrc").write_text(f"ca_certificate = {CA_PATH}\n")
    dockerfile = work / "Dockerfile"
    dockerfile.write_text(
        f"FROM {ROOTFS_TAG}\n"
        f"COPY ca.crt {CA_PATH}\n"
        "COPY cachefix-local.list /etc/apt/sources.list.d/cachefix-local.list\n"
        "COPY pip.conf /etc/pip.conf\n"
        # wget (GnuTLS) reads only the system bundle or its rc file; curl reads SSL_CERT_FILE.
        "COPY wgetrc /etc/wgetrc\n"
        # uv has no system config for a CA; it reads these two variables (uv's environment reference).
        f"ENV UV_DEFAULT_INDEX={urls.pip}simple/ SSL_CERT_FILE={CA_PATH}\n"
        # The Hub client's endpoint, without its calls home (pypi.org update check, telemetry).
        f"ENV HF_ENDPOINT={urls.hub} HF_HUB_DISABLE_UPDATE_CHECK=1 HF_HUB_DISABLE_TELEMETRY=1\n"
        f"ENV CACHEFIX_FILES={urls.files}\n"
    )
    return work, dockerfile
