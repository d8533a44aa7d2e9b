"""`cachefix fetch --manifest FILE`: many files, bounded parallelism, one display, a summary.

A manifest has one `URL [SHA256] [DEST]` per line; `#` starts a comment (at the start of a
line or after a space, so URL fragments survive); `-` stands for "no digest". A relative
DEST is relative to the current directory, as `-o` is.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from cachefix.downloads.api import deliver
from cachefix.downloads.errors import InvalidInput, describe
from cachefix.downloads.fetch import Fetcher, Request
from cachefix.downloads.store import is_digest

MAX_MANIFEST = 16 << 20  # about 100,000 lines


@dataclass(frozen=True)
class Line:
    request: Request
    dest: str | None  # as written: a trailing slash means a folder
    where: str  # FILE:LINE, for messages


def read_manifest(name: str) -> list[Line]:
    """Parse every line first, so a typo on line 90 fails before line 1 downloads anything."""
    try:
        if name == "-":
            raw = sys.stdin.buffer.read(MAX_MANIFEST + 1)
        else:
            with open(name, "rb") as stream:  # read at most the limit: /dev/zero has no size
                raw = stream.read(MAX_MANIFEST + 1)
        if len(raw) > MAX_MANIFEST:
            raise InvalidInput(f"manifest {name} is larger than {MAX_MANIFEST >> 20} MiB")
        text = raw.decode()
    except OSError as exc:
        raise InvalidInput(f"cannot read manifest {name}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise InvalidInput(f"{name}:{line}: the manifest is not UTF-8 text") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{name}:{number}"
        fields = re.sub(r"(^|\s)#.*", "", raw).split()
        if not fields:
            continue
        url, rest = fields[0], fields[1:]
        digest = None
        if len(rest) == 2 or (rest and (rest[0] == "-" or is_digest(rest[0].lower().removeprefix("sha256:")))):
            digest = rest.pop(0)
        if len(rest) > 1:
            raise InvalidInput(f"{where}: expected `URL [SHA256] [DEST]`, got {len(fields)} fields")
        try:
            request = Request(url, None if digest == "-" else digest)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None
        lines.append(Line(request, rest[0] if rest else None, where))
    return lines


def fetch_all(fetcher: Fetcher, lines: list[Line], *, jobs: int, quiet: bool, verbose: bool) -> int:
    """Fetch every line with at most `jobs` transfers at once; 1 if any line failed."""
    counts: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(deliver, fetcher, line.request, dest=line.dest): line for line in lines}
        for future in as_completed(futures):
            line = futures[future]
            fetcher.display.file_done()
            try:
                result, _ = future.result()
            except Exception as exc:
                counts["failed"] += 1
                print(f"cachefix: error: {line.where}: {describe(exc)[1]}", file=sys.stderr)
                continue
            counts["fetched" if result.outcome == "fetched" else "hit"] += 1
            if verbose:
                print(result.status_line(line.request.url, line.dest), file=sys.stderr)
    if not quiet:
        print(f"{len(lines)} files: {counts['hit']} hit, {counts['fetched']} fetched, {counts['failed']} failed",
              file=sys.stderr)
    return 1 if counts["failed"] else 0
