"""`cachefix mounts list|export|import`: arguments and dispatch.

Imported on every start of `cachefix` (the parser is built whole), so it imports nothing but
argparse at module level; each handler imports what it needs. `export` and `import` are handled
by `cachefix.mounts.transfer`.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

MOUNTS_DESCRIPTION = """\
The cache map of a project, and carrying its caches between CI runs. A hosted CI runner starts
with an empty builder, so the cache mounts in Dockerfiles save nothing there: `export` copies each
cache the map names out of the builder into a folder that CI keeps (actions/cache, GitLab's
`cache:`), and `import` puts them back before the next build.

PATHS are Dockerfiles, folders (every Dockerfile under them, as `cachefix check` finds them) or
compose files (compose.yaml, docker-compose.yml, or any YAML file with a top-level `services:`:
the Dockerfile of every service with a `build:`, with its build args). Default: `.`."""

MOUNTS_EPILOG = """\
examples:
  cachefix mounts list                         the cache mounts of every Dockerfile under this folder
  cachefix mounts list compose.yaml            ... of every service the compose file builds
  cachefix mounts list --format json . | sha256sum     a CI cache key that changes with the map
  cachefix mounts export /tmp/mounts compose.yaml      after the build: caches out of the builder
  cachefix mounts import /tmp/mounts compose.yaml      before the build: caches back in"""

LIST_DESCRIPTION = """\
Every `RUN --mount=type=cache` of the Dockerfiles found, as BuildKit keys it: id (the target when
the mount names none), uid, gid and mode (`-` when the mount writes none of them: BuildKit's 0, 0
and 0755, but another cache than one that writes them), sharing (shared by default), the stage,
and file:line. Build arguments are resolved (`--build-arg`, a compose service's `args`,
ARG defaults; TARGETARCH and the other automatic platform ARGs are this machine's). Mounts with the
same id, uid, gid and mode (written or not alike) share one cache in BuildKit, even in different
Dockerfiles: the rows are grouped by cache and `shared by` counts the mounts of each. `--format json` prints one object:
{"version": 1, "files": [...], "caches": [{id, uid, gid, mode, explicit, mounts, targets, services}],
"mounts": [{id, target, uid, gid, mode, explicit, sharing, stage, file, line, services}],
"errors": [...]} (explicit: the mount writes uid, gid or mode)."""

LIST_EPILOG = """\
exit status:
  0  the map is complete (also when there are no cache mounts)
  2  an error: a PATH that does not exist, a compose file that cannot be read, a Dockerfile that
     cannot be read or parsed, or a mount BuildKit would refuse (the other files are still listed)

examples:
  cachefix mounts list
  cachefix mounts list --build-arg UID=1001 docker/
  cachefix mounts list --format json compose.yaml"""

TRANSFER_EPILOG = """\
exit status:
  0  every cache was {done}
  1  a cache could not be {done_one} (the message names it)
  2  an error: a bad argument or PATH, {bad}

examples:
  cachefix mounts {verb} /tmp/mounts compose.yaml
  cachefix mounts {verb} --engine buildah /tmp/mounts .
  cachefix mounts {verb} --max-size 5G --exclude '*huggingface*' /tmp/mounts ."""


def _add_map_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="a Dockerfile, a folder or a compose file (default: the current folder)")
    parser.add_argument("--build-arg", metavar="NAME=VALUE", action="append", default=[],
                        help="a build argument, as `docker build --build-arg` takes it (a bare NAME takes "
                             "the value from the environment); over a compose service's `args`; repeatable")
    parser.add_argument("--target", metavar="STAGE",
                        help="only the stages that `docker build --target STAGE` builds (a compose service's "
                             "own `target` comes first; default: every stage)")


def _add_transfer_command(actions: argparse._SubParsersAction, verb: str, help_line: str, description: str,
                          epilog: str) -> None:
    from cachefix.arguments import HelpFormatter

    parser = actions.add_parser(verb, help=help_line, description=description, epilog=epilog,
                                formatter_class=HelpFormatter, usage=f"cachefix mounts {verb} [options] DIR [PATH...]")
    parser.add_argument("dir", metavar="DIR", help="the folder that holds the archives and their manifest")
    _add_map_options(parser)
    parser.add_argument("--engine", choices=("docker", "buildah", "auto"), default="auto",
                        help="the builder whose caches to use: docker (BuildKit in dockerd), buildah, or auto "
                             "(default: the one that is available)")
    parser.add_argument("--max-size", metavar="SIZE",
                        help="the most the archives may hold in all, e.g. 5G (GitHub keeps 10 GB per repository)")
    parser.add_argument("--include", metavar="GLOB", action="append", default=[],
                        help="only the caches whose id or a target matches GLOB; repeatable")
    parser.add_argument("--exclude", metavar="GLOB", action="append", default=[],
                        help="not the caches whose id or a target matches GLOB; repeatable")
    parser.add_argument("--helper-image", metavar="IMAGE",
                        help="docker: the image the throwaway copy build runs tar in (any image with sh and tar; "
                             "default: the first FROM image of the stages that mount the cache that the daemon has)")
    parser.set_defaults(handler=_transfer)


def add_mounts_command(commands: argparse._SubParsersAction) -> None:
    """Register `mounts` with its subcommands (each sets `handler`)."""
    from cachefix.arguments import HelpFormatter

    mounts = commands.add_parser("mounts", help="the cache map of Dockerfiles and compose files; "
                                                "export/import its caches for CI",
                                 description=MOUNTS_DESCRIPTION, epilog=MOUNTS_EPILOG, formatter_class=HelpFormatter)
    actions = mounts.add_subparsers(dest="mounts_command", metavar="SUBCOMMAND", title="subcommands", required=True)
    listing = actions.add_parser("list", help="every cache mount: id, target, uid, gid, mode, sharing, stage, "
                                              "file:line", description=LIST_DESCRIPTION, epilog=LIST_EPILOG,
                                 formatter_class=HelpFormatter, usage="cachefix mounts list [options] [PATH...]")
    _add_map_options(listing)
    listing.add_argument("--format", choices=("text", "json"), default="text",
                         help="text (default: a table) or json (stable, for CI cache keys and scripts)")
    listing.add_argument("--no-color", action="store_true", help="never colour the table")
    listing.set_defaults(handler=_list)
    _add_transfer_command(
        actions, "export", "copy each cache of the map out of the builder into DIR",
        "Copy each distinct cache of the map (by id, uid, gid and mode) out of the builder into DIR: "
        "one archive per cache and a manifest.",
        TRANSFER_EPILOG.format(verb="export", done="exported", done_one="exported", bad="DIR not writable"))
    _add_transfer_command(
        actions, "import", "put the caches exported into DIR back into the builder",
        "Put each cache of the map that DIR holds back into the builder, before the build. Every archive "
        "is checked against the manifest before the builder is touched.",
        TRANSFER_EPILOG.format(verb="import", done="imported", done_one="imported",
                               bad="a damaged archive or manifest (the builder is left as it was)"))


def _list(args: argparse.Namespace) -> int:
    from cachefix.mounts.listing import as_json, write_errors, write_text
    from cachefix.mounts.project import ProjectError, cache_map, parse_build_args

    try:
        found = cache_map(args.paths or ["."], parse_build_args(args.build_arg), args.target)
    except ProjectError as exc:
        print(f"cachefix: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        print(as_json(found))
    else:
        write_text(found, sys.stdout, color=not args.no_color)
    write_errors(found)
    return EXIT_USAGE if found.errors else EXIT_OK


def _transfer(args: argparse.Namespace) -> int:
    import importlib

    try:  # written separately (issue 12): until it is there, only export and import fail
        transfer = importlib.import_module("cachefix.mounts.transfer")
    except ModuleNotFoundError as exc:
        if exc.name != "cachefix.mounts.transfer" or os.environ.get("CACHEFIX_DEBUG"):
            raise
        print(f"cachefix: error: `cachefix mounts {args.mounts_command}` is not available in this version",
              file=sys.stderr)
        return EXIT_USAGE
    return transfer.export_caches(args) if args.mounts_command == "export" else transfer.import_caches(args)
