"""CF201 keeps the image as it was: it never deletes `docker-clean`, and the option it gives
apt keeps the packages out of that file's hook. Checked with the real apt-get of this machine
on a private apt tree (APT_CONFIG; dpkg replaced by `true`, so nothing is installed), with the
hook of the Debian and Ubuntu images moved into that tree.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write
from tests.oracle import parse as oracle_parse

APT_CACHE = "/var/cache/apt"
# debuerreotype's docker-clean, as in the debian and ubuntu images (paths under {cache}).
CLEAN = "rm -f {cache}/archives/*.deb {cache}/archives/partial/*.deb {cache}/*.bin || true"
DOCKER_CLEAN = (f'DPkg::Post-Invoke {{{{ "{CLEAN}"; }}}};\nAPT::Update::Post-Invoke {{{{ "{CLEAN}"; }}}};\n'
                'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n')


def fixed(tmp_path: Path, text: str) -> str:
    dockerfile = write(tmp_path / "Dockerfile", text)
    done = subprocess.run([sys.executable, "-m", "cachefix", "fix", str(dockerfile)], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    return dockerfile.read_text()


def test_the_fix_touches_no_file_of_the_image(tmp_path: Path) -> None:
    after = fixed(tmp_path, "FROM debian:bookworm\nRUN apt-get update && apt install -y curl\n")
    script = oracle_parse(after)[-1].value[0]
    assert "docker-clean" not in script and "apt.conf.d" not in script and ">" not in script
    assert "apt -o Dir::Cache::Archives=/var/cache/apt/debs/ -o APT::Keep-Downloaded-Packages=true install" in script


@pytest.fixture
def apt_tree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A private apt tree with a one-package repository and the docker-clean hook: (cache folder, env)."""
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        pytest.skip("needs apt-get and dpkg-deb")
    root = tmp_path / "apt"
    package = write(root / "pkg" / "DEBIAN" / "control",
                    "Package: cfxdemo\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.com>\n"
                    "Description: demo\n").parent.parent
    deb = root / "repo" / "cfxdemo_1.0_all.deb"
    deb.parent.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--build", str(package), str(deb)], check=True, capture_output=True)
    data = deb.read_bytes()
    write(root / "repo" / "Packages", f"Package: cfxdemo\nVersion: 1.0\nArchitecture: all\nMaintainer: t\n"
          f"Filename: ./{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
          "Description: demo\n\n")
    cache = root / "cache"
    cache.mkdir()  # the mount point: apt makes the folders it needs below it
    write(root / "conf.d" / "docker-clean", DOCKER_CLEAN.format(cache=cache))
    write(root / "sources.list", f"deb [trusted=yes] copy:{root / 'repo'} ./\n")
    write(root / "status", "")
    (root / "state" / "lists" / "partial").mkdir(parents=True)
    settings = {"Dir::Etc::parts": root / "conf.d", "Dir::Etc::main": "/dev/null",
                "Dir::Etc::sourcelist": root / "sources.list", "Dir::Etc::sourceparts": "/dev/null",
                "Dir::Etc::preferencesparts": "/dev/null", "Dir::State": root / "state",
                "Dir::State::status": root / "status", "Dir::Cache": cache, "Dir::Bin::dpkg": "/bin/true",
                "Debug::NoLocking": "1", "APT::Sandbox::User": os.environ.get("USER", "root")}
    config = write(root / "apt.conf", "".join(f'{k} "{v}";\n' for k, v in settings.items()))
    return cache, {**os.environ, "APT_CONFIG": str(config)}


def apt_get(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(["apt-get", "-q", "-y", *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_packages_survive_the_docker_clean_hook(tmp_path: Path, apt_tree: tuple[Path, dict[str, str]]) -> None:
    cache, env = apt_tree
    script = oracle_parse(fixed(tmp_path, "FROM debian:bookworm\nRUN apt-get install -y cfxdemo\n"))[-1].value[0]
    option = next(w for w in script.split() if w.startswith("Dir::Cache::Archives="))
    kept = Path(option.partition("=")[2].replace(APT_CACHE, str(cache), 1))
    apt_get(env, "update")
    apt_get(env, "install", "cfxdemo")  # without the option: the hook deletes the package
    assert list((cache / "archives").glob("*.deb")) == []
    apt_get(env, "-o", f"Dir::Cache::Archives={kept}/", "install", "--reinstall", "cfxdemo")
    apt_get(env, "update")  # the hook runs again after an update
    assert [p.name for p in kept.glob("*.deb")] == ["cfxdemo_1.0_all.deb"]
