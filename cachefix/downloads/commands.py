"""Sub-commands of the download-cache runtime: `fetch`, `cache`, `shell-init`.

`cachefix` imports this module on every start, lint runs in pre-commit hooks included, so it
imports nothing but argparse at module level: each handler imports what it needs.
Exit status: 0 done, 1 the operation failed, 2 bad input (URL, digest, option, manifest).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `fetch`, `cache` and `shell-init` (each sets `handler`)."""
    fetch = commands.add_parser(
        "fetch", help="download a file through the cache (a hit needs no network with --sha256)",
        description="Download URL through the content-addressed cache. Without -o, print the cached "
                    "file's path, so `$(cachefix fetch URL)` works.")
    fetch.add_argument("url", nargs="?", metavar="URL")
    fetch.add_argument("-o", "--output", metavar="FILE", help="write the file here (atomically)")
    fetch.add_argument("--sha256", metavar="HEX", help="the digest the file must have")
    fetch.add_argument("--extract", metavar="DIR", help="also unpack the archive (tar.*, zip) into DIR")
    fetch.add_argument("--mirror", metavar="URL", action="append", default=[],
                       help="another URL of the same file, tried in order if URL fails "
                            "({sha256} is replaced by the digest); repeatable")
    fetch.add_argument("--manifest", metavar="FILE",
                       help="fetch every `URL [SHA256] [DEST]` line of FILE ('-' for stdin)")
    fetch.add_argument("-j", "--jobs", type=int, default=4, metavar="N",
                       help="parallel downloads with --manifest (default 4)")
    fetch.add_argument("--offline", action="store_true", help="never touch the network; fail on a miss")
    fetch.add_argument("--max-age", metavar="DURATION", default="0s",
                       help="use an unpinned entry without revalidating for this long, e.g. 1h, 7d")
    fetch.add_argument("--link", action="store_true",
                       help="hardlink FILE to the read-only cache entry instead of copying it")
    fetch.add_argument("--retries", type=int, default=5, metavar="N", help="attempts per URL (default 5)")
    fetch.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="give up on a stalled transfer after this long (default 60)")
    fetch.add_argument("--connect-timeout", type=float, default=30.0, metavar="SECONDS")
    fetch.add_argument("--max-extract-size", metavar="SIZE", default="32G",
                       help="refuse archives that expand past SIZE (default 32G)")
    fetch.add_argument("--max-members", type=int, default=200_000, metavar="N",
                       help="refuse archives with more members (default 200000)")
    _add_output_options(fetch)
    fetch.set_defaults(handler=_guarded(_fetch))

    cache = commands.add_parser("cache", help="show, clean, clear or verify the caches on this machine")
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    actions.add_parser("dir", help="print the download cache's folder").set_defaults(handler=_guarded(_dir))
    stats = actions.add_parser("stats", help="the download cache and every other cache found (pip, uv, "
                                             "HuggingFace, buildah, BuildKit)")
    stats.add_argument("--json", action="store_true", help="one JSON object on stdout")
    stats.add_argument("--downloads", action="store_true", help="only the download cache (fast)")
    stats.set_defaults(handler=_guarded(_stats))
    clean = actions.add_parser("clean", help="evict download-cache entries by last use and total size")
    clean.add_argument("--older-than", metavar="DURATION", help="evict entries unused for this long, e.g. 30d")
    clean.add_argument("--max-size", metavar="SIZE", help="then evict least recently used until under SIZE")
    clean.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    _add_output_options(clean)
    clean.set_defaults(handler=_guarded(_clean))
    clear = actions.add_parser("clear", help="delete whole caches (asks first unless --yes)")
    for name, what in (("downloads", "cachefix's download cache (the default)"), ("pip", "pip's cache"),
                       ("uv", "uv's cache"), ("hf", "the HuggingFace hub cache"),
                       ("buildah", "buildah's RUN --mount=type=cache folders"), ("all", "all of these")):
        clear.add_argument(f"--{name}", action="store_true", help=what)
    clear.add_argument("-y", "--yes", action="store_true", help="do not ask")
    clear.set_defaults(handler=_guarded(_clear))
    verify = actions.add_parser("verify", help="re-hash cached files (all, or one entry)")
    verify.add_argument("entry", nargs="?", metavar="ENTRY",
                        help="a URL, the SHA-256 of a URL (the old shell library's cache key), or a digest")
    verify.add_argument("--sha256", metavar="HEX", help="with ENTRY: the digest it must have")
    verify.add_argument("--repair", action="store_true", help="delete corrupt files and download them again")
    _add_output_options(verify)
    verify.set_defaults(handler=_guarded(_verify))

    shell = commands.add_parser("shell-init", help="shell functions that replace scripts/lib/download-cache.sh",
                                description='Use as: eval "$(cachefix shell-init bash)"')
    shell.add_argument("shell", nargs="?", choices=("bash", "zsh"), help="default: from $SHELL, else bash")
    shell.set_defaults(handler=_guarded(_shell_init))


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.add_argument("-v", "--verbose", action="store_true", help="one status line per step")
    parser.add_argument("--progress", action="store_true", default=None,
                        help="show progress bars even when stderr is not a terminal")


def _guarded(run: Handler) -> Handler:
    """Turn every failure into one line on stderr and an exit status, never a traceback."""

    def handler(args: argparse.Namespace) -> int:
        import os

        _log_to_stderr("ERROR" if getattr(args, "quiet", False)
                       else "INFO" if getattr(args, "verbose", False) else "WARNING")
        try:
            return run(args)
        except KeyboardInterrupt:
            print("cachefix: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            if os.environ.get("CACHEFIX_DEBUG"):
                raise
            from cachefix.downloads.errors import describe

            status, message = describe(exc)
            print(f"cachefix: error: {message}", file=sys.stderr)
            return status

    return handler


def _log_to_stderr(level: str) -> None:
    """The runtime's warnings (and with -v its notes) as `cachefix: warning: ...` lines."""
    import logging

    class StderrHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(f"cachefix: {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)

    logger = logging.getLogger("cachefix.downloads")
    logger.handlers = [StderrHandler()]
    logger.propagate = False
    logger.setLevel(level)


def _progress(args: argparse.Namespace) -> bool:
    from cachefix.downloads.progress import wanted

    return False if args.quiet else wanted(args.progress)


def _store() -> Any:
    from cachefix.downloads.store import Store

    return Store()


# -- fetch -----------------------------------------------------------------------------------


def _fetch(args: argparse.Namespace) -> int:
    from cachefix.downloads.api import deliver
    from cachefix.downloads.errors import InvalidInput
    from cachefix.downloads.fetch import Fetcher, Request
    from cachefix.downloads.progress import Display
    from cachefix.downloads.units import parse_duration, parse_size

    if (args.url is None) == (args.manifest is None):
        raise InvalidInput("give either a URL or --manifest FILE")
    if args.manifest and (args.output or args.extract or args.sha256 or args.mirror):
        raise InvalidInput("--manifest takes -o/--sha256 per line; --extract and --mirror need a URL")
    if args.jobs < 1 or args.retries < 1:
        raise InvalidInput("--jobs and --retries must be at least 1")
    limits = None
    if args.extract:
        from cachefix.downloads.extract import Limits

        limits = Limits(max_bytes=parse_size(args.max_extract_size), max_members=args.max_members)
    lines = None
    if args.manifest:
        from cachefix.downloads.manifest import read_manifest

        lines = read_manifest(args.manifest)
    else:
        request = Request(args.url, args.sha256 or None, tuple(args.mirror))
    fetcher = Fetcher(_store(), offline=args.offline, max_age=parse_duration(args.max_age),
                      retries=args.retries, timeout=args.timeout, connect_timeout=args.connect_timeout,
                      display=Display(_progress(args), files=len(lines or ())))
    with fetcher, fetcher.display:
        if lines is not None:
            from cachefix.downloads.manifest import fetch_all

            return fetch_all(fetcher, lines, jobs=args.jobs, quiet=args.quiet, verbose=args.verbose)
        result = deliver(fetcher, request, dest=args.output, extract_to=args.extract, link=args.link,
                         limits=limits)
    if args.verbose:
        print(result.status_line(args.url, args.output or args.extract), file=sys.stderr)
    if args.output is None:
        print(result.path)
    return 0


# -- cache -----------------------------------------------------------------------------------


def _dir(args: argparse.Namespace) -> int:
    print(_store().root)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from cachefix.downloads.inventory import print_report, survey

    report = survey(_store(), others=not args.downloads)
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def _clean(args: argparse.Namespace) -> int:
    from cachefix.downloads.errors import InvalidInput
    from cachefix.downloads.housekeeping import clean
    from cachefix.downloads.units import format_size, parse_duration, parse_size

    if args.older_than is None and args.max_size is None:
        raise InvalidInput("say what to evict: --older-than DURATION and/or --max-size SIZE")
    store = _store()
    outcome = clean(store, older_than=parse_duration(args.older_than) if args.older_than else None,
                    max_size=parse_size(args.max_size) if args.max_size else None, dry_run=args.dry_run)
    if not args.quiet:
        verb = "would remove" if args.dry_run else "removed"
        print(f"{verb} {outcome.removed} entries ({format_size(outcome.freed)}); {outcome.kept} entries "
              f"({format_size(outcome.kept_bytes)}) remain in {store.root}")
    return 0


def _clear(args: argparse.Namespace) -> int:
    from cachefix.downloads.housekeeping import clear_targets, confirm_and_clear

    names = [n for n in ("downloads", "pip", "uv", "hf", "buildah") if getattr(args, n) or args.all]
    return confirm_and_clear(clear_targets(_store(), names or ["downloads"]), assume_yes=args.yes)


def _verify(args: argparse.Namespace) -> int:
    from cachefix.downloads.housekeeping import verify

    return verify(_store(), entry=args.entry, expected=args.sha256, repair=args.repair, quiet=args.quiet)


def _shell_init(args: argparse.Namespace) -> int:
    from cachefix.downloads.shell import init_script

    sys.stdout.write(init_script(args.shell))
    return 0
