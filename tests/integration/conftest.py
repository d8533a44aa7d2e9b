"""Session fixtures: real engines (dockerd started here if needed), package servers, base images.

pytest-docker is not used: it drives `docker compose` to run service containers pulled from a
registry, while these tests need the daemon itself, buildah beside it, and images built
locally; see docs/integration.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from .engines import EngineUnavailable
from .harness import Lab, open_lab

DEBIAN_PACKAGES = {"dockerd": "docker.io", "buildah": "buildah", "debootstrap": "debootstrap"}


def _unavailable(reason: str) -> None:
    """Skip with the reason, except in CI as root, where the engines must run: fail there."""
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail(f"integration engines unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _install_missing() -> None:
    """Install Debian's engines when root with apt (what scripts/test does), else skip."""
    missing = [pkg for cmd, pkg in DEBIAN_PACKAGES.items() if shutil.which(cmd) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        _unavailable(f"not installed: {', '.join(missing)} (installing needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            _unavailable(f"{' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """dockerd and buildah ready, both package servers up, scenario base images tagged."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        _unavailable("the integration tests need root (dockerd, buildah with chroot isolation, debootstrap)")
    _install_missing()
    try:
        with open_lab(tmp_path_factory.mktemp("lab")) as opened:
            yield opened
    except EngineUnavailable as exc:
        _unavailable(str(exc))
