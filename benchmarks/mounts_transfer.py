"""Export and import time and size of one realistic cache, through `cachefix mounts export/import`.

The cache is synthetic but shaped like a pip or Go cache: a few large incompressible files
(wheels) and many small text files (HTTP metadata, Go sources). It is put into the builder,
exported, removed (buildah) or replaced by a fresh id (dockerd: a single BuildKit cache cannot be
dropped without pruning every other one), and imported again; each step is timed as a whole
command. No assertions: it prints numbers.

    python3 benchmarks/mounts_transfer.py [--engine buildah|docker] [--large-mb 300] [--small-files 20000]

buildah needs no build (its caches are folders; a temp TMPDIR keeps them apart from real ones);
docker needs an image with tar (`--image`, default: the integration tests' Debian rootfs) and a
daemon: when none answers, one is started as the integration tests start it (root) and stopped
after. Set CACHEFIX_DOCKER for another client binary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filelock import FileLock

from cachefix.mounts import manifest
from cachefix.mounts.archive import remove_tree
from cachefix.mounts.builders import Buildah, Docker
from cachefix.mounts.identity import CacheIdentity
from tests.integration.baseimage import ROOTFS_TAG, cache_dir
from tests.integration.engines import Dockerd

LARGE_FILE = 10 * 1024 * 1024


def make_cache(root: Path, large_mb: int, small_files: int) -> tuple[int, int]:
    """Fill `root`; returns (bytes, files)."""
    rng = random.Random(12)
    total = files = 0
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    for index in range(max(1, large_mb * 1024 * 1024 // LARGE_FILE)):
        data = rng.randbytes(LARGE_FILE)
        (wheels / f"pkg{index}-1.0-py3-none-any.whl").write_bytes(data)
        total, files = total + len(data), files + 1
    words = [f"word{n}" for n in range(500)]
    for index in range(small_files):
        folder = root / "http" / f"{index % 97:02x}" / f"{index % 13:x}"
        folder.mkdir(parents=True, exist_ok=True)
        text = " ".join(rng.choice(words) for _ in range(rng.randint(100, 1500))).encode()
        (folder / f"entry{index}").write_bytes(text)
        total, files = total + len(text), files + 1
    return total, files


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return elapsed


def _cachefix(verb: str, out: Path, project: Path, engine: str, env: dict[str, str]) -> float:
    return _timed([sys.executable, "-m", "cachefix", "mounts", verb, "--engine", engine, str(out), "."], env, project)


def _fill_docker(docker: Docker, source: Path, cache_id: str, image: str) -> None:
    """Copy `source` into a BuildKit cache through a build (the bind mount reads the context).
    A new build argument, not --no-cache: that would hand the RUN an empty cache."""
    dockerfile = source.parent / "fill.Dockerfile"
    dockerfile.write_text(f"FROM {image} AS fill\nARG N\nRUN --mount=type=bind,target=/src "
                          f"--mount=type=cache,id={cache_id},target=/c cp -a /src/. /c/ && touch /done\n"
                          "FROM scratch\nCOPY --from=fill /done /\n")
    subprocess.run([docker.binary, "build", "--network=none", "--build-arg", f"N={uuid.uuid4().hex}", "-q",
                    "-f", str(dockerfile), "-o", "-", str(source)], env={**os.environ, "DOCKER_BUILDKIT": "1"},
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(engine: str, large_mb: int, small_files: int, repeat: int, image: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="cachefix-bench-mounts-"))
    with contextlib.ExitStack() as stack:
        if engine == "docker":  # one lab at a time on a machine: the tests may stop the daemon they started
            stack.enter_context(FileLock(cache_dir() / "lab.lock"))
            if not Docker().answers():
                daemon = Dockerd(work).ensure()
                stack.callback(daemon.stop)
        stack.callback(remove_tree, work)
        _measure(work, engine, large_mb, small_files, repeat, image)


def _measure(work: Path, engine: str, large_mb: int, small_files: int, repeat: int, image: str) -> None:
    project, out = work / "project", work / "out"
    project.mkdir()
    cache_id = f"cachefix-bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TMPDIR": str(work / "tmp"), "CI": "1"}  # CI: no progress bar
    (work / "tmp").mkdir()
    source = work / "source"
    size, files = make_cache(source, large_mb, small_files)
    exports, imports = [], []
    for _ in range(repeat):
        identity = CacheIdentity(cache_id)
        if engine == "buildah":
            folder = Buildah(temp_dir=str(work / "tmp")).folder(identity)
            folder.parent.mkdir(parents=True, exist_ok=True)
            if not folder.exists():
                shutil.copytree(source, folder, symlinks=True)
        else:
            _fill_docker(Docker(), source, cache_id, image)
        (project / "Dockerfile").write_text(
            f"FROM {image}\nRUN --mount=type=cache,id={cache_id},target=/c true\n")
        exports.append(_cachefix("export", out, project, engine, env))
        if engine == "buildah":
            remove_tree(folder)
        else:  # a fresh id: the import goes into an empty cache
            cache_id = f"cachefix-bench-{uuid.uuid4().hex[:8]}"
            (project / "Dockerfile").write_text(
                f"FROM {image}\nRUN --mount=type=cache,id={cache_id},target=/c true\n")
            _rename_entry(out, cache_id)
        imports.append(_cachefix("import", out, project, engine, env))
    archive = sum(p.stat().st_size for p in out.glob("*.tar.gz"))
    print(f"engine {engine}: cache {size / 1e6:.1f} MB in {files} files "
          f"({large_mb} MB of {LARGE_FILE // 2**20} MB files, {small_files} small ones), "
          f"archive {archive / 1e6:.1f} MB")
    for verb, times in (("export", exports), ("import", imports)):
        print(f"  {verb}: median {statistics.median(times):.2f} s, min {min(times):.2f} s over {repeat} run(s), "
              f"{size / 1e6 / statistics.median(times):.0f} MB/s of cache")


def _rename_entry(out: Path, new_id: str) -> None:
    """Point the manifest's one entry at another id (docker: import into an empty cache)."""
    (entry,) = manifest.read(out) or []
    moved = manifest.Entry(CacheIdentity(new_id), entry.targets, manifest.archive_name(CacheIdentity(new_id)),
                           entry.sha256, entry.archive_bytes, entry.content_bytes, entry.files)
    os.replace(out / entry.archive, out / moved.archive)
    manifest.write(out, "docker", [moved])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("buildah", "docker"), default="buildah")
    parser.add_argument("--large-mb", type=int, default=300, help="MB of large random files (default 300)")
    parser.add_argument("--small-files", type=int, default=20000, help="small text files (default 20000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image", default=ROOTFS_TAG, help="docker: an image with tar")
    args = parser.parse_args()
    run(args.engine, args.large_mb, args.small_files, args.repeat, args.image)


if __name__ == "__main__":
    main()
