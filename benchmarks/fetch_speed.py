"""How fast is `cachefix fetch`, cold and on a hit, next to what people use instead?

Serves a generated file on 127.0.0.1 (a separate process using sendfile, so the server is
not the bottleneck) and times each tool against its peer, in turns (peer, tool, peer, tool...),
printing the median wall time and the median of the per-pair ratios, so that a machine whose
speed drifts during the run still gives a fair ratio:
  cold: `cachefix fetch --sha256` (into the cache; and with `-o FILE`) against `curl -o` alone
        and against `curl -o` then `sha256sum` (what the shell library does); `pooch.retrieve`
  hit:  `cachefix fetch --sha256 -o FILE` against `cp` of the same file (same file system), the
        shell library's hit (`sha256sum` + `cp`), the CLI hit that prints the path, the API hit
The peak RSS of each cachefix process is printed too: run with --size 4G next to 1G to see that
it does not grow with the file. Every cold run starts from an empty cache; the served file stays
in the page cache. --dir puts the cache and the output files on another file system (an XFS or
btrfs mount shows the reflinked hit).

    python benchmarks/fetch_speed.py --size 1G
    python benchmarks/fetch_speed.py --size 4G --runs 1 --hit-runs 1
    python benchmarks/fetch_speed.py --size 1G --dir /mnt/xfs
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cachefix.downloads.units import format_size, parse_size


class _SendfileHandler(BaseHTTPRequestHandler):
    """GET of one file with Content-Length and an ETag, body by sendfile(2)."""

    protocol_version = "HTTP/1.1"
    path_served: Path

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        size = self.path_served.stat().st_size
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("ETag", '"bench"')
        self.end_headers()
        with open(self.path_served, "rb") as body:
            self.connection.sendfile(body)


def serve(path: str) -> None:
    """Child-process mode: serve `path` and print the port."""
    _SendfileHandler.path_served = Path(path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SendfileHandler)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


@dataclass
class Run:
    """One process: its wall seconds and peak resident memory (KiB, from wait4)."""

    wall: float
    peak_kib: int


def run(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Start `argv`, wait for it with wait4 (its own rusage), fail loudly on a non-zero exit."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(argv)} failed with exit status {child.returncode}")
    return Run(wall, usage.ru_maxrss)


def run_all(*steps: list[str], env: dict[str, str] | None = None) -> Run:
    """Several processes one after the other, as one figure (curl then sha256sum)."""
    runs = [run(step, env) for step in steps]
    return Run(sum(r.wall for r in runs), max(r.peak_kib for r in runs))


@dataclass
class Row:
    case: str
    tool: str
    wall: float
    peer: str = ""
    ratio: float | None = None
    peak_kib: int | None = None


def paired(runs: int, tool: Callable[[], Run], peer: Callable[[], Run],
           reset: Callable[[], object] = lambda: None) -> tuple[list[Run], list[Run]]:
    """`runs` turns of peer then tool, `reset` (not timed) before each."""
    tools, peers = [], []
    for _ in range(runs):
        reset()
        peers.append(peer())
        reset()
        tools.append(tool())
    return tools, peers


def row(case: str, name: str, tools: list[Run], peer_name: str = "", peers: list[Run] | None = None,
        memory: bool = True) -> Row:
    ratio = statistics.median(t.wall / p.wall for t, p in zip(tools, peers, strict=True)) if peers else None
    return Row(case, name, statistics.median(t.wall for t in tools), peer_name, ratio,
               max(t.peak_kib for t in tools) if memory else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G", help="file size (default 1G)")
    parser.add_argument("--runs", type=int, default=5, help="paired runs per cold figure, median kept (default 5)")
    parser.add_argument("--hit-runs", type=int, default=11, help="paired runs per hit figure (default 11)")
    parser.add_argument("--dir", type=Path, help="where the cache and output files go (default: a temp folder)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)

    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="cachefix-bench-", dir=args.dir))
    try:
        rows = measure_all(work, size, args.runs, args.hit_runs)
        print(f"\n{format_size(size)} over loopback; {machine(work)}; Python {sys.version.split()[0]}; "
              f"medians of {args.runs} paired runs (hits: {args.hit_runs}); a peak RSS cannot read below "
              f"{run(['true']).peak_kib / 1024:.0f} MiB here (a child starts as a copy of this process)\n")
        print(table(rows, size))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return None


def machine(work: Path) -> str:
    """CPU model, cores and the file system the cache and outputs were on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(work)], capture_output=True, text=True).stdout.strip()
    return f"{model}, {os.cpu_count()} cores, {fs or 'unknown'} file system"


def table(rows: list[Row], size: int) -> str:
    lines = ["| case | tool | median wall | throughput | peer | ratio to peer | peak RSS |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        shown = f"{r.wall * 1000:.2f} ms" if r.wall < 0.1 else f"{r.wall:.3f} s"
        rate = f"{size / r.wall / (1 << 20):,.0f} MiB/s" if r.case == "cold" else ""
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        peak = f"{r.peak_kib / 1024:.0f} MiB" if r.peak_kib else ""
        lines.append(f"| {r.case} | {r.tool} | {shown} | {rate} | {r.peer} | {ratio} | {peak} |")
    return "\n".join(lines)


def measure_all(work: Path, size: int, runs: int, hit_runs: int) -> list[Row]:
    source = work / "served.bin"
    with open(source, "wb") as out:
        for offset in range(0, size, 1 << 20):  # small pieces: a child's peak RSS counts this process's
            out.write(os.urandom(min(1 << 20, size - offset)))
    with open(source, "rb") as served:
        digest = hashlib.file_digest(served, "sha256").hexdigest()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(source)], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/served.bin"  # type: ignore[union-attr]
        return measure(work, url, digest, runs, hit_runs)
    finally:
        server.terminate()
        server.wait()


def measure(work: Path, url: str, digest: str, runs: int, hit_runs: int) -> list[Row]:
    cache, out, copy = work / "cache", work / "out.bin", work / "copy.bin"
    env = {**os.environ, "CACHEFIX_CACHE_DIR": str(cache)}
    cli = [sys.executable, "-m", "cachefix", "fetch", url, "--sha256", digest, "--quiet"]

    def empty() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        for path in (out, copy):
            path.unlink(missing_ok=True)

    curl = lambda: run(["curl", "-fsS", "-o", str(out), url])  # noqa: E731
    curl_sha = lambda: run_all(["curl", "-fsS", "-o", str(out), url], ["sha256sum", str(out)])  # noqa: E731
    into_cache = lambda: run(cli, env)  # noqa: E731
    with_output = lambda: run([*cli, "-o", str(out)], env)  # noqa: E731
    rows = []
    for name, tool in (("cachefix fetch --sha256 (into the cache)", into_cache),
                       ("cachefix fetch --sha256 -o FILE", with_output)):
        tools, peers = paired(runs, tool, curl, empty)
        rows.append(row("cold", name, tools, "curl -o", peers))
        tools, peers = paired(runs, tool, curl_sha, empty)
        rows.append(row("cold", name, tools, "curl -o + sha256sum", peers))
    tools, _ = paired(runs, curl, curl, empty)
    rows.insert(0, row("cold", "curl -o alone (no digest)", tools, memory=False))
    rows += pooch_rows(work, url, digest, runs, empty)

    empty()
    into_cache()  # the hits below find it
    blob = cache_blob(cache, digest)
    cp = lambda: run(["cp", str(blob), str(copy)])  # noqa: E731
    shell_hit = lambda: run_all(["sha256sum", str(blob)], ["cp", str(blob), str(copy)])  # noqa: E731
    clear_copies = lambda: [p.unlink(missing_ok=True) for p in (out, copy)]  # noqa: E731
    tools, peers = paired(hit_runs, with_output, cp, clear_copies)
    rows.append(row("hit", "cachefix fetch --sha256 -o FILE", tools, "cp", peers))
    tools, peers = paired(runs, with_output, shell_hit, clear_copies)
    rows.append(row("hit", "cachefix fetch --sha256 -o FILE", tools, "sha256sum + cp", peers))
    tools, peers = paired(hit_runs, into_cache, cp, clear_copies)
    rows.append(row("hit", "cachefix fetch --sha256 (prints the path)", tools, "cp", peers))
    rows.append(api_hit_row(cache, url, digest))
    return rows


def cache_blob(cache: Path, digest: str) -> Path:
    return cache / "sha256" / digest[:2] / digest


def pooch_rows(work: Path, url: str, digest: str, runs: int, empty: Callable[[], None]) -> list[Row]:
    """pooch.retrieve, cold, in a child process like the others (skipped when pooch is missing)."""
    try:
        import pooch  # noqa: F401
    except ImportError:
        print("pooch is not installed: skipped (pip install pooch to compare)", file=sys.stderr)
        return []
    script = ("import pooch, sys; pooch.get_logger().setLevel('WARNING'); "
              "pooch.retrieve(sys.argv[1], 'sha256:' + sys.argv[2], path=sys.argv[3], progressbar=False)")
    fetch = lambda: run([sys.executable, "-c", script, url, digest, str(work / "pooch")])  # noqa: E731
    clear = lambda: (empty(), shutil.rmtree(work / "pooch", ignore_errors=True))  # noqa: E731
    tools, peers = paired(runs, fetch, lambda: run(["curl", "-fsS", "-o", str(work / "out.bin"), url]), clear)
    return [row("cold", "pooch.retrieve", tools, "curl -o", peers)]


def api_hit_row(cache: Path, url: str, digest: str, count: int = 200) -> Row:
    """`cached_download` in this process: a hit costs a stat and two SQLite statements."""
    os.environ["CACHEFIX_CACHE_DIR"] = str(cache)
    from cachefix import cached_download

    cached_download(url, sha256=digest)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        cached_download(url, sha256=digest)
        times.append(time.perf_counter() - start)
    return Row("hit", "cached_download(url, sha256=...) (API, in process)", statistics.median(times))


if __name__ == "__main__":
    main()
