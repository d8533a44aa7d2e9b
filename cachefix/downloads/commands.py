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
                    "file's path, so `$(cachefix fetch URL)` works. Exit status: 0 done, 1 the fetch "
                    "failed, 2 bad input.")
    fetch.add_argument("url", nargs="?", metavar="URL", help="the http:// or https:// URL to fetch")
    fetch.add_argument("-o", "--output", metavar="FILE",
                       help="write the file here, atomically; '-' for stdout; a folder (or a name "
                            "ending in /) gets the URL's file name; a symlink is written through; "
                            "a device or FIFO is written to, never replaced")
    fetch.add_argument("--sha256", metavar="HEX", help="the digest the file must have")
    fetch.add_argument("--extract", metavar="DIR", help="also unpack the archive (tar.*, zip) into DIR")
    fetch.add_argument("--mirror", metavar="URL", action="append", default=[],
                       help="another URL of the same file, tried in order if URL fails "
                            "({sha256} is replaced by the digest); repeatable")
    fetch.add_argument("--manifest", metavar="FILE",
                       help="fetch every `URL [SHA256] [DEST]` line of FILE ('-' for stdin)")
    fetch.add_argument("-j", "--jobs", type=_count, default=4, metavar="N",
                       help="parallel downloads with --manifest (default 4)")
    fetch.add_argument("--offline", action="store_true",
                       help="never ask the origin (this cache and the remote tier only); fail on a miss")
    fetch.add_argument("--max-age", metavar="DURATION", default="0s",
                       help="use an unpinned entry without revalidating for this long, e.g. 1h, 7d "
                            "(default 0s: ask the server every time)")
    fetch.add_argument("--link", action="store_true",
                       help="hardlink FILE to the read-only cache entry instead of copying it")
    fetch.add_argument("--retries", type=_count, default=5, metavar="N", help="attempts per URL (default 5)")
    fetch.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS",
                       help="give up on a transfer that receives nothing for this long (default 60)")
    fetch.add_argument("--connect-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                       help="give up on a connection not made within this long (default 30)")
    fetch.add_argument("--speed-limit", metavar="SIZE", default="1K",
                       help="a transfer slower than SIZE bytes a second over --speed-time is dropped "
                            "and retried, resuming (default 1K; 0 turns it off)")
    fetch.add_argument("--speed-time", type=_seconds, default=30.0, metavar="SECONDS",
                       help="the window --speed-limit is measured over (default 30)")
    fetch.add_argument("--max-time", type=_seconds, metavar="SECONDS",
                       help="give up on the whole fetch, retries and mirrors included, after this "
                            "long (default: no limit)")
    fetch.add_argument("--max-filesize", metavar="SIZE",
                       help="refuse a file larger than SIZE, before or while it downloads "
                            "(default: no limit)")
    fetch.add_argument("--max-extract-size", metavar="SIZE", default="32G",
                       help="refuse archives that expand past SIZE (default 32G)")
    fetch.add_argument("--max-members", type=_count, default=200_000, metavar="N",
                       help="refuse archives with more members (default 200000)")
    _add_remote_options(fetch)
    _add_output_options(fetch)
    fetch.set_defaults(handler=_guarded(_fetch))

    cache = commands.add_parser("cache", help="show, clean, clear or verify the caches on this machine; "
                                             "push the download cache to the team's remote")
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    actions.add_parser("dir", help="print the download cache's folder").set_defaults(handler=_guarded(_dir))
    stats = actions.add_parser("stats", help="the download cache and every other cache found (pip, uv, "
                                             "HuggingFace, buildah, BuildKit)")
    stats.add_argument("--json", action="store_true", help="one JSON object on stdout")
    stats.add_argument("--downloads", action="store_true", help="only the download cache (fast)")
    _add_remote_options(stats)
    stats.set_defaults(handler=_guarded(_stats))
    clean = actions.add_parser("clean", help="evict download-cache entries by last use and total size")
    clean.add_argument("--older-than", metavar="DURATION",
                       help="evict entries unused for this long: a number and a unit (s, m, h, d, w), "
                            "e.g. 30d; a bare number is refused")
    clean.add_argument("--max-size", metavar="SIZE",
                       help="then evict least recently used until under SIZE, e.g. 10G")
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

    push = actions.add_parser(
        "push", help="upload the download cache to the team's remote (skips what it holds)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Upload every file of the download cache, re-checked first, and the record of each URL "
                    "to the remote tier (--remote or CACHEFIX_REMOTE), so that other machines fetch them "
                    "from there. Files the remote already holds are skipped.",
        epilog="examples:\n"
               "  CACHEFIX_REMOTE=s3://team-cache/downloads cachefix cache push\n"
               "  cachefix cache push --remote https://user:password@cache.example/dl\n\n"
               "exit status: 0 pushed, 1 the remote failed, 2 bad input (no remote, a bad URL)")
    push.add_argument("--remote", metavar="URL", help="s3://BUCKET/PREFIX or http(s)://HOST/BASE "
                                                      "(default: $CACHEFIX_REMOTE)")
    _add_output_options(push)
    push.set_defaults(handler=_guarded(_push))

    shell = commands.add_parser("shell-init", help="shell functions that replace scripts/lib/download-cache.sh",
                                description='Use as: eval "$(cachefix shell-init bash)"')
    shell.add_argument("shell", nargs="?", choices=("bash", "zsh"), help="default: from $SHELL, else bash")
    shell.set_defaults(handler=_guarded(_shell_init))


def _add_remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", metavar="URL",
                        help="the team's shared tier: s3://BUCKET/PREFIX (AWS_* variables) or http(s)://HOST/BASE "
                             "(bazel-remote's /cas/ protocol); default: $CACHEFIX_REMOTE")
    parser.add_argument("--no-remote", action="store_true",
                        help="ignore CACHEFIX_REMOTE: this cache and the origin only")


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.add_argument("-v", "--verbose", action="store_true", help="one status line per step")
    parser.add_argument("--progress", action="store_true", default=None,
                        help="show progress bars even when stderr is not a terminal")


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (NaN, infinity, zero and negatives are usage errors)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:  # also false for NaN
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _count(text: str) -> int:
    """A whole number from 1 to a billion."""
    if not (text.strip().isdigit() and 1 <= int(text) <= 10**9):
        raise argparse.ArgumentTypeError(f"expected a whole number from 1, got {text!r}")
    return int(text)


def _guarded(run: Handler) -> Handler:
    """Turn every failure into one line on stderr and an exit status, never a traceback."""

    def handler(args: argparse.Namespace) -> int:
        import os
        import signal

        from cachefix.downloads.errors import Terminated

        def terminate(signum: int, frame: object) -> None:
            raise Terminated

        signal.signal(signal.SIGTERM, terminate)
        _log_to_stderr("ERROR" if getattr(args, "quiet", False)
                       else "INFO" if getattr(args, "verbose", False) else "WARNING")
        try:
            return run(args)
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            print(f"cachefix: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
            return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
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
    from cachefix.downloads.remote.shared import configured
    from cachefix.downloads.units import parse_duration, parse_size

    if (args.url is None) == (args.manifest is None):
        raise InvalidInput("give either a URL or --manifest FILE")
    if args.manifest and (args.output is not None or args.extract is not None or args.sha256 or args.mirror):
        raise InvalidInput("--manifest takes -o/--sha256 per line; --extract and --mirror need a URL")
    limits = None
    if args.extract is not None:
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
                      speed_limit=parse_size(args.speed_limit), speed_time=args.speed_time,
                      max_time=args.max_time,
                      max_size=None if args.max_filesize is None else parse_size(args.max_filesize),
                      display=Display(_progress(args), files=len(lines or ())),
                      remote=configured(args.remote, disabled=args.no_remote))
    with fetcher, fetcher.display:
        if lines is not None:
            from cachefix.downloads.manifest import fetch_all

            return fetch_all(fetcher, lines, jobs=args.jobs, quiet=args.quiet, verbose=args.verbose)
        result, placed = deliver(fetcher, request, dest=args.output, extract_to=args.extract,
                                 link=args.link, limits=limits)
    if args.verbose:
        print(result.status_line(args.url, placed or args.output or args.extract), file=sys.stderr)
    if args.output is None:
        print(result.path)
    return 0


# -- cache -----------------------------------------------------------------------------------


def _dir(args: argparse.Namespace) -> int:
    print(_store().root)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from cachefix.downloads.inventory import print_report, survey
    from cachefix.downloads.remote.shared import configured

    report = survey(_store(), others=not args.downloads)
    remote = configured(args.remote, disabled=args.no_remote)
    if remote is not None:
        from cachefix.downloads.remote.push import summary

        report["remote"] = summary(remote)
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    else:
        print_report(report)
        if "remote" in report:
            from cachefix.downloads.remote.push import summary_line

            print(summary_line(report["remote"]))
    return 0


def _clean(args: argparse.Namespace) -> int:
    from cachefix.downloads.errors import InvalidInput
    from cachefix.downloads.housekeeping import clean
    from cachefix.downloads.units import format_size, parse_duration, parse_size

    if args.older_than is None and args.max_size is None:
        raise InvalidInput("say what to evict: --older-than DURATION and/or --max-size SIZE")
    older_than = None if args.older_than is None else parse_duration(args.older_than)
    max_size = None if args.max_size is None else parse_size(args.max_size)
    store = _store()
    outcome = clean(store, older_than=older_than, max_size=max_size, dry_run=args.dry_run)
    if not args.quiet:
        verb = "would remove" if args.dry_run else "removed"
        print(f"{verb} {outcome.removed} entries ({format_size(outcome.freed)}); {outcome.kept} entries "
              f"({format_size(outcome.kept_bytes)}) remain in {store.root}")
    return 0


def _clear(args: argparse.Namespace) -> int:
    from cachefix.downloads.housekeeping import clear_targets, confirm_and_clear

    names = [n for n in ("downloads", "pip", "uv", "hf", "buildah") if getattr(args, n) or args.all]
    return confirm_and_clear(clear_targets(_store(), names or ["downloads"]), assume_yes=args.yes)


def _push(args: argparse.Namespace) -> int:
    from cachefix.downloads.errors import InvalidInput
    from cachefix.downloads.remote.push import push
    from cachefix.downloads.remote.shared import configured
    from cachefix.downloads.units import format_size

    remote = configured(args.remote)
    if remote is None:
        raise InvalidInput("no remote to push to: set CACHEFIX_REMOTE or pass --remote URL")
    pushed = push(_store(), remote)
    if not args.quiet:
        print(f"{pushed.uploaded} uploaded ({format_size(pushed.uploaded_bytes)}), {pushed.present} already "
              f"there, {pushed.records} URL records shared with {remote.tier.location}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from cachefix.downloads.housekeeping import verify

    return verify(_store(), entry=args.entry, expected=args.sha256, repair=args.repair, quiet=args.quiet)


def _shell_init(args: argparse.Namespace) -> int:
    from cachefix.downloads.shell import init_script

    sys.stdout.write(init_script(args.shell))
    return 0
