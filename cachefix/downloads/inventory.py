"""Every cache on this machine, for `cache stats`: ours, pip, uv, HuggingFace, buildah, BuildKit.

Each tool is asked where its cache is (`pip cache dir`, `uv cache dir`, `docker buildx du`)
rather than guessed, and falls back to its documented environment variables. Sizes are
real disk use (allocated blocks, hardlinks counted once), which is what `clear` frees.
A tool that is missing or not answering is listed as skipped, with the reason.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cachefix.downloads.store import Store
from cachefix.downloads.units import format_size

COMMAND_TIMEOUT = 20
_DECIMAL = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}


@dataclass
class Found:
    """Where one tool keeps its cache, or why we could not tell."""

    name: str
    paths: list[Path] = field(default_factory=list)
    skipped: str | None = None


def locate(name: str) -> Found:
    """The cache folders of `pip`, `uv`, `hf` or `buildah`."""
    return {"pip": _pip, "uv": _uv, "hf": _huggingface, "buildah": _buildah}[name]()


def _run(argv: list[str]) -> str:
    """stdout of a command; OSError or CalledProcessError when it is missing or fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL)
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)
    return done.stdout


def _first_line_of(argv: list[str], name: str) -> Found:
    try:
        return Found(name, [Path(_run(argv).strip().splitlines()[0])])
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        return Found(name, skipped=(stderr.strip().splitlines() or [str(exc)])[-1])


def _pip() -> Found:
    pip = shutil.which("pip") or shutil.which("pip3")
    return _first_line_of([pip, "cache", "dir"] if pip else [sys.executable, "-m", "pip", "cache", "dir"], "pip")


def _uv() -> Found:
    if uv := shutil.which("uv"):
        return _first_line_of([uv, "cache", "dir"], "uv")
    path = Path(os.environ.get("UV_CACHE_DIR") or _xdg_cache() / "uv")
    return Found("uv", [path]) if path.is_dir() else Found("uv", skipped="uv not installed, no cache found")


def _xdg_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def _huggingface() -> Found:
    home = Path(os.environ.get("HF_HOME") or _xdg_cache() / "huggingface")
    hub = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or home / "hub")
    xet = Path(os.environ.get("HF_XET_CACHE") or home / "xet")
    paths = [p for p in (hub, xet) if p.is_dir()]
    return Found("hf", paths) if paths else Found("hf", skipped=f"no HuggingFace cache at {hub}")


def _buildah() -> Found:
    """buildah's RUN --mount=type=cache folders: `buildah-cache-<uid>` under TMPDIR or /var/tmp."""
    roots = {os.environ.get("TMPDIR") or "", "/var/tmp", tempfile.gettempdir()}
    paths = sorted({Path(p) for root in roots if root for p in glob.glob(os.path.join(root, "buildah-cache*"))})
    return Found("buildah", paths) if paths else Found("buildah", skipped="no /var/tmp/buildah-cache*")


def _docker() -> str | None:
    """`CACHEFIX_DOCKER`, else the distribution's /usr/bin/docker, else docker on PATH."""
    if env := os.environ.get("CACHEFIX_DOCKER"):
        return env
    return "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")


def buildkit() -> dict[str, Any]:
    """BuildKit cache mounts (`type=exec.cachemount`), as the daemon reports them."""
    docker = _docker()
    if docker is None:
        return {"name": "buildkit", "skipped": "docker not found"}
    try:
        rows = _buildx_rows(_run([docker, "buildx", "du", "--filter", "type=exec.cachemount"]))
    except (OSError, subprocess.SubprocessError) as exc:
        try:  # no buildx plugin: the classic listing has a CACHE TYPE column
            listing = _run([docker, "system", "df", "-v"])
            rows = _buildx_rows(listing, kind="exec.cachemount")
        except (OSError, subprocess.SubprocessError):
            if isinstance(exc, OSError):
                return {"name": "buildkit", "skipped": f"cannot run {docker}: {exc.strerror}"}
            reason = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines() or ["docker failed"]
            return {"name": "buildkit", "skipped": reason[-1]}
    return {"name": "buildkit", "paths": [], "where": "inside the Docker daemon (BuildKit cache mounts)",
            "files": len(rows), "bytes": sum(rows)}


def _buildx_rows(text: str, kind: str | None = None) -> list[int]:
    """Record sizes in a `docker buildx du` table (ID, RECLAIMABLE, SIZE, ...) or, with `kind`,
    in the build-cache table of `docker system df -v` (CACHE ID, CACHE TYPE, SIZE, ...)."""
    sizes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].endswith(":") or (kind is not None and fields[1] != kind):
            continue
        if match := re.fullmatch(r"([\d.]+)([kKMGTP]?B)\*?", fields[2]):
            sizes.append(int(float(match[1]) * _DECIMAL[match[2]]))
    return sizes


def disk_usage(paths: list[Path]) -> tuple[int, int]:
    """(files, bytes on disk) under `paths`, each inode once; unreadable folders are skipped."""
    seen: set[tuple[int, int]] = set()
    files = size = 0
    stack = [str(p) for p in paths]
    while stack:
        top = stack.pop()
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for entry in entries:
            try:
                stat = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                files += 1
                size += stat.st_blocks * 512
    return files, size


def _downloads(store: Store) -> dict[str, Any]:
    """Our own cache; a folder that does not exist yet is an empty cache, not created here."""
    report: dict[str, Any] = {"name": "downloads", "paths": [str(store.root)], "files": 0, "bytes": 0,
                              "oldest": None, "hits": 0, "bytes_saved": 0, "partial_files": 0,
                              "partial_bytes": 0}
    if not store.root.is_dir():
        return report
    blobs = list(store.blobs())
    totals = store.index.totals()
    partials = [stat.st_size for _, stat in store.temp_files()]
    oldest = totals.oldest_use
    report.update(
        files=len(blobs), bytes=disk_usage([store.root])[1] if blobs or partials else 0,
        oldest=datetime.fromtimestamp(oldest, timezone.utc).isoformat(timespec="seconds") if oldest else None,
        hits=totals.hits, bytes_saved=totals.bytes_served, partial_files=len(partials),
        partial_bytes=sum(partials))
    return report


def _other(name: str) -> dict[str, Any]:
    found = locate(name)
    if found.skipped:
        return {"name": name, "skipped": found.skipped}
    files, size = disk_usage(found.paths)
    return {"name": name, "paths": [str(p) for p in found.paths], "files": files, "bytes": size}


def survey(store: Store, *, others: bool = True) -> dict[str, Any]:
    """The `cache stats` report: every cache, then the total (also what `--json` prints)."""
    caches = [_downloads(store)]
    if others:
        with ThreadPoolExecutor(max_workers=5) as pool:  # pip and docker each take ~0.3 s to answer
            jobs = [pool.submit(_other, n) for n in ("pip", "uv", "hf", "buildah")] + [pool.submit(buildkit)]
            caches += [job.result() for job in jobs]
    return {"version": 1, "caches": caches, "total_bytes": sum(c.get("bytes", 0) for c in caches)}


def print_report(report: dict[str, Any]) -> None:
    print(f"{'cache':<10} {'files':>7} {'size':>10}  where")
    for cache in report["caches"]:
        if "skipped" in cache:
            print(f"{cache['name']:<10} {'-':>7} {'-':>10}  skipped: {cache['skipped']}")
            continue
        print(f"{cache['name']:<10} {cache['files']:>7} {format_size(cache['bytes']):>10}  "
              f"{', '.join(cache['paths']) or cache.get('where', '')}")
        if cache["name"] == "downloads" and cache["files"]:
            print(f"{'':<10} {'':>7} {'':>10}  oldest {cache['oldest'] or '-'}, {cache['hits']} hits, "
                  f"{format_size(cache['bytes_saved'])} served from cache")
        if cache.get("partial_files"):
            print(f"{'':<10} {'':>7} {'':>10}  {cache['partial_files']} partial downloads "
                  f"({format_size(cache['partial_bytes'])}) left by interrupted fetches")
    print(f"{'total':<10} {'':>7} {format_size(report['total_bytes']):>10}")
