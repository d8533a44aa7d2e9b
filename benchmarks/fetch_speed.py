"""How fast is `cachefix fetch`, cold and on a hit, next to what people use instead?

Serves a generated file on 127.0.0.1 (a separate process using sendfile, so the server is
not the bottleneck) and times, best of --runs:
  cold:  `curl -o` alone, `curl -o` then `sha256sum` (what the shell library does), `cachefix fetch --sha256`
         (into the cache; and with `-o FILE`, which adds a copy), `pooch.retrieve`
  hit:   `cachefix fetch --sha256` (CLI, a new process each time), `cached_download` (API, in
         process), the shell library's hit (`sha256sum` + `cp`), `pooch.retrieve`
Every cold run starts from an empty cache; the served file stays in the page cache for all.

    python benchmarks/fetch_speed.py --size 1G
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def best(runs: int, action: Callable[[], object], reset: Callable[[], object] = lambda: None) -> float:
    """Fastest wall time of `runs` runs; `reset` (not timed) runs before each."""
    times = []
    for _ in range(runs):
        reset()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def sh(*argv: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G", help="file size (default 1G)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement, best kept (default 3)")
    parser.add_argument("--hit-runs", type=int, default=20, help="runs per CLI hit measurement (default 20)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)

    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="cachefix-bench-"))
    try:
        run_all(work, size, args.runs, args.hit_runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return None


def run_all(work: Path, size: int, runs: int, hit_runs: int) -> None:
    source = work / "served.bin"
    with open(source, "wb") as out:
        for offset in range(0, size, 64 << 20):
            out.write(os.urandom(min(64 << 20, size - offset)))
    digest = hashlib.file_digest(open(source, "rb"), "sha256").hexdigest()  # noqa: SIM115
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(source)], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/served.bin"  # type: ignore[union-attr]
        rows = measure(work, url, digest, runs, hit_runs)
    finally:
        server.terminate()
        server.wait()
    print(f"\n{format_size(size)} over loopback, best of {runs} (hits: best of {hit_runs}), "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print("| case | tool | time | throughput |\n|---|---|---|---|")
    for case, tool, seconds in rows:
        rate = f"{size / seconds / (1 << 20):,.0f} MiB/s" if case == "cold" else ""
        shown = f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds:.3f} s"
        print(f"| {case} | {tool} | {shown} | {rate} |")


def measure(work: Path, url: str, digest: str, runs: int, hit_runs: int) -> list[tuple[str, str, float]]:
    cache = work / "cache"
    out = work / "out.bin"
    env = {**os.environ, "CACHEFIX_CACHE_DIR": str(cache)}
    cli = [sys.executable, "-m", "cachefix", "fetch", url, "--sha256", digest, "--quiet"]

    def empty_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        out.unlink(missing_ok=True)

    def curl_then_sha256sum() -> None:
        sh("curl", "-fsS", "-o", str(out), url)
        sh("sha256sum", str(out))

    rows = [
        ("cold", "curl -o alone (no digest, for reference)", best(runs, lambda: sh("curl", "-fsS", "-o", str(out), url),
                                                                   empty_cache)),
        ("cold", "curl -o, then sha256sum", best(runs, curl_then_sha256sum, empty_cache)),
        ("cold", "cachefix fetch --sha256 (into the cache)", best(runs, lambda: sh(*cli, env=env), empty_cache)),
        ("cold", "cachefix fetch --sha256 -o FILE", best(runs, lambda: sh(*cli, "-o", str(out), env=env),
                                                         empty_cache)),
    ]
    try:
        import pooch
    except ImportError:
        pooch = None
        print("pooch is not installed: skipped (pip install pooch to compare)", file=sys.stderr)
    if pooch is not None:
        pooch.get_logger().setLevel("WARNING")
        fetch_pooch = lambda: pooch.retrieve(url, f"sha256:{digest}", path=cache / "pooch", progressbar=False)  # noqa: E731
        rows.append(("cold", "pooch.retrieve", best(runs, fetch_pooch, empty_cache)))

    sh(*cli, env=env)  # warm the cache for the hits
    from cachefix import cached_download

    os.environ["CACHEFIX_CACHE_DIR"] = str(cache)
    cached_download(url, sha256=digest)
    rows += [
        ("hit", "cachefix fetch --sha256 (CLI, prints the path)", best(hit_runs, lambda: sh(*cli, env=env))),
        ("hit", "cachefix fetch --sha256 -o FILE (CLI, copies)", best(runs, lambda: sh(*cli, "-o", str(out), env=env))),
        ("hit", "cached_download(url, sha256=...) (API)",
         statistics.median(_api_hits(lambda: cached_download(url, sha256=digest)))),
        ("hit", "shell library: sha256sum + cp", best(runs, lambda: (sh("sha256sum", str(out)),
                                                                      sh("cp", str(out), str(work / "copy")))))]
    if pooch is not None:
        fetch_pooch()
        rows.append(("hit", "pooch.retrieve (re-hashes the file)", best(runs, fetch_pooch)))
    return rows


def _api_hits(call: Callable[[], object], count: int = 200) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


if __name__ == "__main__":
    main()
