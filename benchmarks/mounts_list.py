#!/usr/bin/env python3
"""How long `cachefix mounts list --format json` takes on a whole tree, and what the cache map of a
tree fixed by cachefix looks like: how many mounts, and how few caches they share.

A CI job runs `mounts list` twice per build (the action's cache key, then export or import), so
its time is start-up plus reading every Dockerfile once. The tree is copied to a temporary folder
and fixed there first (`cachefix fix --syntax none`), so the map is the one a project has after
adopting cachefix; the source tree is not touched.

    python benchmarks/mounts_list.py [FOLDER] [--runs 7]

FOLDER defaults to ../shared/corpus (real Dockerfiles).
"""

from __future__ import annotations

import argparse
import json
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _writable_copy(folder: Path, into: Path) -> Path:
    copy = into / folder.name
    shutil.copytree(folder, copy, symlinks=True)
    for path in [copy, *copy.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return copy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"no folder {folder}", file=sys.stderr)
        return 2
    cachefix = [sys.executable, "-m", "cachefix"]
    with tempfile.TemporaryDirectory() as temp:
        tree = _writable_copy(folder, Path(temp))
        subprocess.run([*cachefix, "fix", "--syntax", "none", str(tree)], capture_output=True)
        command = [*cachefix, "mounts", "list", "--format", "json", str(tree)]
        listed = subprocess.run(command, capture_output=True, text=True)  # also the warm-up
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(command, capture_output=True)
            times.append(time.perf_counter() - start)
    document = json.loads(listed.stdout)
    print(f"{len(document['files'])} Dockerfiles, {len(document['mounts'])} cache mounts, "
          f"{len(document['caches'])} caches; errors in {len(document['errors'])} file(s)")
    for cache in sorted(document["caches"], key=lambda c: -c["mounts"])[:5]:
        print(f"  {cache['mounts']:4d} mounts share {cache['id']}")
    print(f"mounts list --format json: median {statistics.median(times):.2f} s over {args.runs} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
