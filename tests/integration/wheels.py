"""Small pure-Python wheels with incompressible payloads, and a PEP 503 simple index for them.

Made here, not fetched: the tests need no network, and a few MB of random bytes per wheel make
"downloaded again or not" show up clearly in the byte counts.
"""

from __future__ import annotations

import base64
import hashlib
import html
import random
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024


@dataclass(frozen=True)
class Wheel:
    """One project of the local index: ``import_name`` is what an image must be able to import."""

    name: str
    version: str
    payload: int
    requires: tuple[str, ...] = ()
    console_script: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def import_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def filename(self) -> str:
        return f"{self.import_name}-{self.version}-py3-none-any.whl"


WHEELS: tuple[Wheel, ...] = (
    Wheel("cfxdemo-core", "1.0.0", 3 * MiB),
    Wheel("cfxdemo-plot", "1.0.0", 3 * MiB, requires=("cfxdemo-core>=1.0",)),
    Wheel("cfxdemo-io", "1.0.0", 2 * MiB),
    Wheel("cfxdemo-cli", "1.0.0", 1 * MiB, console_script="cfxdemo"),
)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel: Wheel, out_dir: Path) -> Path:
    """Write ``wheel`` into ``out_dir``; the payload is seeded by name so rebuilds are identical."""
    pkg = wheel.import_name
    dist_info = f"{pkg}-{wheel.version}.dist-info"
    payload = random.Random(wheel.name).randbytes(wheel.payload)
    init = (
        f'"""{wheel.name}: test package for cachefix\'s integration tests."""\n'
        f'__version__ = "{wheel.version}"\n\n'
        "def main() -> None:\n"
        f'    print("{wheel.name} " + __version__)\n'
    )
    metadata = f"Metadata-Version: 2.1\nName: {wheel.name}\nVersion: {wheel.version}\n"
    metadata += "".join(f"Requires-Dist: {req}\n" for req in wheel.requires)
    files: dict[str, bytes] = {
        f"{pkg}/__init__.py": init.encode(),
        f"{pkg}/payload.bin": payload,
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: cachefix-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if wheel.console_script:
        files[f"{dist_info}/entry_points.txt"] = (
            f"[console_scripts]\n{wheel.console_script} = {pkg}:main\n".encode()
        )
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()

    path = out_dir / wheel.filename
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".bin") else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# A real tool wheel the scenarios install with pip, as people do (`pip install uv`): fetched
# once from PyPI for the images' platform (Debian bookworm, CPython 3.11), kept in the cache folder.
UV_REQUIREMENT = "uv==0.13.9"
UV_PLATFORM = "manylinux2014_x86_64"


def downloaded_wheel(requirement: str, platform: str, cache: Path) -> Path:
    """The wheel of ``requirement`` under ``cache``, downloaded with pip when it is not there yet."""
    name, _, version = requirement.partition("==")
    pattern = f"{_normalize(name).replace('-', '_')}-{version}-*.whl"
    if not (found := sorted(cache.glob(pattern))):
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
                        "--platform", platform, "--python-version", "3.11", "--disable-pip-version-check",
                        "-d", str(cache)], check=True, capture_output=True, timeout=600)
        found = sorted(cache.glob(pattern))
    return found[0]


# The HuggingFace scenarios install the hub client (`pip install huggingface_hub`): its release and
# the 14 wheels it pulls in (7.3 MB), fetched once for the same platform into their own folder.
HF_HUB_REQUIREMENT = "huggingface_hub==2.4.0"
# The from_pretrained scenario installs transformers (no torch: configs and tokenizers load
# without it): 31 wheels, 45 MB, some of them (numpy) built for manylinux_2_28 only.
TRANSFORMERS_REQUIREMENT = "transformers==5.24.0"
IMAGE_PLATFORMS = (UV_PLATFORM, "manylinux_2_28_x86_64")  # the base image has glibc 2.36


def downloaded_wheel_set(requirement: str, platforms: tuple[str, ...], cache: Path) -> tuple[Path, ...]:
    """``requirement`` and its dependencies' wheels, downloaded with pip into ``cache`` once.

    A stamp file marks a complete download, so an interrupted one is done again."""
    folder = cache / requirement.replace("==", "-")
    stamp = folder / ".complete"
    if not stamp.exists():
        folder.mkdir(parents=True, exist_ok=True)
        chosen = [arg for platform in platforms for arg in ("--platform", platform)]
        subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--only-binary=:all:", *chosen,
                        "--python-version", "3.11", "--disable-pip-version-check", "-d", str(folder)],
                       check=True, capture_output=True, timeout=600)
        stamp.touch()
    return tuple(sorted(folder.glob("*.whl")))


def build_index(root: Path, wheels: tuple[Wheel, ...] = WHEELS, files: tuple[Path, ...] = ()) -> Path:
    """Lay out ``root/simple/<project>/index.html`` and ``root/packages/*.whl``; returns root.

    ``wheels`` are generated here; ``files`` are existing wheel files, published as they are."""
    packages = root / "packages"
    packages.mkdir(parents=True, exist_ok=True)
    simple = root / "simple"
    simple.mkdir(exist_ok=True)
    projects = []
    built = [build_wheel(wheel, packages) for wheel in wheels]
    published = [Path(shutil.copy(file, packages / file.name)) for file in files]
    for path in built + published:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        project = _normalize(path.name.split("-")[0])
        projects.append(project)
        (simple / project).mkdir(exist_ok=True)
        link = f'../../packages/{html.escape(path.name)}#sha256={digest}'
        (simple / project / "index.html").write_text(
            "<!DOCTYPE html>\n<html><body>\n"
            f'<a href="{link}">{html.escape(path.name)}</a><br/>\n'
            "</body></html>\n"
        )
    (simple / "index.html").write_text(
        "<!DOCTYPE html>\n<html><body>\n"
        + "".join(f'<a href="{p}/">{p}</a><br/>\n' for p in projects)
        + "</body></html>\n"
    )
    return root


def cache_control(path: str) -> str:
    """What PyPI sends: index pages for 10 minutes, files forever."""
    if "/packages/" in path:
        return "max-age=365000000, immutable, public"
    return "max-age=600, public"
