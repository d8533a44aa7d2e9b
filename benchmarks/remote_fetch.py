"""How fast is a fetch from the team's remote tier, next to the same fetch from the origin?

Everything runs on 127.0.0.1: the origin is fetch_speed.py's sendfile server, the remotes are
a real SeaweedFS (S3, through obstore) and nginx with WebDAV (bazel-remote's HTTP protocol),
started as the tests start them. Each run is `cachefix fetch URL --sha256 HEX` into an empty
local cache (best of --runs): from the origin (`--no-remote`), then from each remote holding
the file, the origin still up but not asked. Both paths hash every byte while it streams.

    python benchmarks/remote_fetch.py --size 1G
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cachefix.downloads.units import format_size, parse_size  # noqa: E402
from tests.downloads.remote_stores import CasServer, Seaweed  # noqa: E402


def fetch_seconds(url: str, digest: str, cache: Path, env: dict[str, str], *extra: str) -> float:
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cachefix", "fetch", url, "--sha256", digest, "-q", *extra], check=True,
                   stdout=subprocess.DEVNULL, env={**env, "CACHEFIX_CACHE_DIR": str(cache)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G", help="file size (default 1G)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement, best kept (default 3)")
    args = parser.parse_args()
    size = parse_size(args.size)

    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        work = Path(tmp)
        served = work / "file.bin"
        hasher = hashlib.sha256()
        with open(served, "wb") as out:
            for offset in range(0, size, 1 << 24):
                chunk = os.urandom(min(1 << 24, size - offset))
                hasher.update(chunk)
                out.write(chunk)
        digest = hasher.hexdigest()
        origin = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "fetch_speed.py"), "--serve", str(served)],
                                  stdout=subprocess.PIPE, text=True)
        assert origin.stdout is not None
        url = f"http://127.0.0.1:{origin.stdout.readline().strip()}/file.bin"
        seaweed = Seaweed.start(work / "weed")
        cas = CasServer.start(work / "cas")
        try:
            base = {k: v for k, v in os.environ.items() if k != "CACHEFIX_REMOTE"}
            s3 = {**base, **seaweed.env(), "CACHEFIX_REMOTE": f"s3://{seaweed.new_bucket()}/bench"}
            http = {**base, "CACHEFIX_REMOTE": cas.url()}
            cache = work / "cache"
            rows = {"origin (--no-remote)": min(fetch_seconds(url, digest, cache, base, "--no-remote")
                                                for _ in range(args.runs))}
            for name, env in (("S3 remote (SeaweedFS)", s3), ("HTTP CAS remote (nginx)", http)):
                fetch_seconds(url, digest, cache, env)  # fills the remote (write-back)
                rows[name] = min(fetch_seconds(url, digest, cache, env) for _ in range(args.runs))
        finally:
            seaweed.stop()
            cas.stop()
            origin.terminate()
    print(f"cachefix fetch of {format_size(size)} into an empty cache, loopback, best of {args.runs}:")
    reference = rows["origin (--no-remote)"]
    for name, seconds in rows.items():
        print(f"  {name:<26} {seconds:6.2f} s  {size / seconds / 2**20:7.0f} MiB/s  {seconds / reference:5.2f}x origin")


if __name__ == "__main__":
    main()
