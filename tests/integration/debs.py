"""Small .deb packages with incompressible payloads, and a flat APT repository for them.

Built with ``dpkg-deb`` (part of dpkg, on every Debian); the index files are written here so
the tests need neither dpkg-dev nor apt-utils.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024


@dataclass(frozen=True)
class Deb:
    """One package; ``command`` (if any) is a program in /usr/bin that prints ``name version``."""

    name: str
    version: str
    payload: int
    depends: tuple[str, ...] = ()
    command: str | None = None


DEBS: tuple[Deb, ...] = (
    Deb("libcfx-data", "1.0-1", 3 * MiB),
    Deb("cfx-fetch", "1.0-1", 2 * MiB, depends=("libcfx-data (>= 1.0)",), command="cfx-fetch"),
    Deb("cfx-imgtool", "1.0-1", 2 * MiB, command="cfx-imgtool"),
)


def build_deb(deb: Deb, work: Path, out_dir: Path) -> Path:
    """Build ``deb`` with dpkg-deb; the payload is seeded by name so rebuilds are identical."""
    tree = work / f"{deb.name}_{deb.version}"
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    data_dir = tree / "usr" / "share" / deb.name
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "payload.bin").write_bytes(random.Random(deb.name).randbytes(deb.payload))
    if deb.command:
        bindir = tree / "usr" / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        script = bindir / deb.command
        script.write_text(f"#!/bin/sh\necho '{deb.name} {deb.version}'\n")
        script.chmod(0o755)
    control = (
        f"Package: {deb.name}\nVersion: {deb.version}\nArchitecture: all\n"
        "Maintainer: cachefix tests <tests@cachefix.invalid>\n"
        f"Installed-Size: {deb.payload // 1024 + 4}\n"
        + (f"Depends: {', '.join(deb.depends)}\n" if deb.depends else "")
        + "Section: misc\nPriority: optional\n"
        f"Description: {deb.name}, a test package for cachefix\n"
    )
    (tree / "DEBIAN" / "control").write_text(control)
    out = out_dir / f"{deb.name}_{deb.version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(tree), str(out)],
        check=True, capture_output=True,
    )
    return out


def _stanza(path: Path, root: Path) -> str:
    control = subprocess.run(["dpkg-deb", "-f", str(path)], check=True, capture_output=True,
                             text=True).stdout.rstrip("\n")
    data = path.read_bytes()
    return (
        f"{control}\nFilename: {path.relative_to(root)}\nSize: {len(data)}\n"
        f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
    )


def build_repo(root: Path, debs: tuple[Deb, ...] = DEBS) -> Path:
    """Lay out a flat repository (``deb [trusted=yes] URL ./``) in ``root``; returns root."""
    pool = root / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    work = root.parent / f"{root.name}-src"
    paths = [build_deb(deb, work, pool) for deb in debs]
    shutil.rmtree(work)
    packages = "\n".join(_stanza(p, root) for p in paths).encode()
    (root / "Packages").write_bytes(packages)
    (root / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    lines = {"MD5Sum": [], "SHA256": []}
    for name in ("Packages", "Packages.gz"):
        data = (root / name).read_bytes()
        lines["MD5Sum"].append(f" {hashlib.md5(data).hexdigest()} {len(data)} {name}")
        lines["SHA256"].append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    release = (
        "Origin: cachefix-test\nLabel: cachefix-test\nSuite: stable\nCodename: stable\n"
        f"Date: {email.utils.formatdate(time.time() - 3600, usegmt=True)}\n"
        "Architectures: all amd64 arm64\n"
        + "".join(f"{key}:\n" + "\n".join(vals) + "\n" for key, vals in lines.items())
    )
    (root / "Release").write_text(release)
    return root


def cache_control(path: str) -> str:
    """Like deb.debian.org: indexes revalidate, packages are immutable by name."""
    if path.endswith(".deb"):
        return "max-age=86400"
    return "max-age=120"
