"""`cachefix mounts export` and `import`: the caches of the cache map, out of the builder into a
folder and back, one checked archive per cache (`archive.py`) listed in `manifest.json`.

Export writes each archive beside its final name and renames it into place; the manifest goes
last. Only archives an earlier manifest listed are ever replaced or removed. Import reads every
archive it will use in full (digest, then each member) before it touches the builder.

`--max-size` keeps the largest caches that fit, largest first, and leaves out the rest with a
message: a large cache is the one whose download costs most. `--include`/`--exclude` match a
cache's id or any target that mounts it.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cachefix.downloads.errors import InvalidInput
from cachefix.downloads.progress import Display, wanted
from cachefix.downloads.units import format_size, parse_size
from cachefix.mounts import manifest
from cachefix.mounts.archive import ArchiveDamaged, ArchiveWriter, verify
from cachefix.mounts.builders import Builder, BuilderError, CacheJob, NoBuilder, choose
from cachefix.mounts.identity import CacheIdentity
from cachefix.mounts.manifest import Entry, ManifestError, describe
from cachefix.mounts.project import ProjectError, cache_map, parse_build_args

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
T = TypeVar("T")


class TransferError(Exception):
    """Nothing can be done (bad arguments, a map with errors, a folder not ours): exit 2, one line."""


@dataclass(frozen=True)
class Job:
    """A cache of the map: the builder's handle on it, and the targets that mount it."""

    cache: CacheJob
    targets: tuple[str, ...]

    @property
    def identity(self) -> CacheIdentity:
        return self.cache.identity


def _say(text: str) -> None:
    print(text, flush=True)


def _error(text: str) -> None:
    print(f"cachefix: error: {text}", file=sys.stderr, flush=True)


def _size(bytes_: int) -> str:
    return format_size(bytes_)


def matches(identity: CacheIdentity, targets: Iterable[str], include: Sequence[str], exclude: Sequence[str]) -> bool:
    """--include (any given must match) and --exclude (none may match), over the id and every target."""
    names = [identity.id, *targets]

    def hit(globs: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(name, glob) for name in names for glob in globs)
    return (not include or hit(include)) and not hit(exclude)


def fit(items: Sequence[T], size: Callable[[T], int], limit: int | None) -> tuple[list[T], list[T]]:
    """(kept, left out): the largest items first, each kept if it still fits under `limit`."""
    if limit is None:
        return list(items), []
    kept: list[T] = []
    left: list[T] = []
    total = 0
    for item in sorted(items, key=size, reverse=True):
        if total + size(item) <= limit:
            kept.append(item)
            total += size(item)
        else:
            left.append(item)
    return kept, left


def _max_size(args: argparse.Namespace) -> int | None:
    if not args.max_size:
        return None
    try:
        return parse_size(args.max_size)
    except InvalidInput as exc:
        raise TransferError(f"--max-size: {exc}") from None


def _jobs(args: argparse.Namespace) -> list[Job]:
    """The caches of the map PATHS give, filtered by --include/--exclude."""
    try:
        found = cache_map(args.paths or ["."], parse_build_args(args.build_arg), getattr(args, "target", None))
    except ProjectError as exc:
        raise TransferError(str(exc)) from None
    if found.errors:
        raise TransferError("the cache map is incomplete, so nothing was copied:\n  " + "\n  ".join(found.errors))
    jobs = []
    for identity in found.caches():
        users = [entry.mount for entry in found.users(identity)]
        targets = tuple(sorted({mount.target for mount in users}))
        if matches(identity, targets, args.include, args.exclude):
            froms = tuple(dict.fromkeys(m.image for m in users if m.image))
            jobs.append(Job(CacheJob(identity, describe(identity), froms), targets))
    return jobs


def _builder(args: argparse.Namespace) -> Builder:
    try:
        builder, why = choose(args.engine, getattr(args, "helper_image", None))
    except NoBuilder as exc:
        raise TransferError(str(exc)) from None
    _say(f"engine: {why}")
    return builder


def _display() -> Display:
    """A progress bar per cache on a terminal (rich), nothing in CI or on a pipe."""
    return Display(wanted(None))


def _guarded(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The command's exit status; exit 2 with one line for what stops it before or between caches."""
    try:
        return command(args)
    except (TransferError, ManifestError) as exc:
        _error(str(exc))
        return EXIT_ERROR
    except OSError as exc:  # DIR not writable, a full disk
        _error(f"{exc.filename or args.dir}: {exc.strerror or exc}")
        return EXIT_ERROR


def export_caches(args: argparse.Namespace) -> int:
    """Copy each cache of the map out of the builder into DIR. Exit status as `mounts export --help` says."""
    return _guarded(_export, args)


def _export(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    limit = _max_size(args)
    jobs = _jobs(args)
    builder = _builder(args)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TransferError(f"cannot make {folder}: {exc.strerror or exc}") from None
    previous = {entry.identity: entry for entry in manifest.read(folder) or []}
    ours = {entry.archive for entry in previous.values()}
    for job in jobs:
        name = manifest.archive_name(job.identity)
        if (folder / name).exists() and name not in ours:
            raise TransferError(f"{folder / name} exists and cachefix did not make it (it is not in "
                                f"{manifest.MANIFEST}); move it away first")
    written: list[tuple[Entry, ArchiveWriter | None]] = []
    failed = 0
    with _display() as display:
        for job in jobs:
            meter = display.meter(f"export {job.cache.label}")
            meter.start(None, 0)
            try:
                written.extend(_export_one(builder, job, folder, previous.get(job.identity), meter.advance))
            except (BuilderError, ArchiveDamaged, OSError) as exc:
                failed += 1
                _error(f"cache {job.cache.label}: not exported: {_reason(exc)}")
                carried = previous.get(job.identity)
                if carried is not None and (folder / carried.archive).is_file():
                    written.append((carried, None))
                    _say(f"kept {carried.label}: the archive of the last export stays")
            finally:
                meter.finish()
    kept, left = fit(written, lambda pair: pair[0].archive_bytes, limit)
    for entry, writer in left:
        if writer is not None:
            writer.discard()
        _say(f"left out {entry.label} ({_size(entry.archive_bytes)}): over --max-size {args.max_size}")
    for _entry, writer in kept:
        if writer is not None:
            writer.publish()
    manifest.write(folder, builder.name, [entry for entry, _writer in kept])
    listed = {entry.archive for entry, _writer in kept}
    for stale in ours - listed:
        (folder / stale).unlink(missing_ok=True)
    total = sum(entry.archive_bytes for entry, _writer in kept)
    _say(f"{len(kept)} cache(s) in {folder}, {_size(total)}" + (f"; {failed} failed" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


def _reason(exc: Exception) -> str:
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)


def _export_one(builder: Builder, job: Job, folder: Path, previous: Entry | None,
                progress: Callable[[int], None]) -> list[tuple[Entry, ArchiveWriter | None]]:
    """The new archive (not yet in place), the last export's when the builder's cache is empty, or nothing."""
    with ArchiveWriter(folder / manifest.archive_name(job.identity), job.cache.label, progress) as writer:
        builder.export(job.cache, writer)
        info = writer.close()
    if not info.empty:
        _say(f"exported {job.cache.label}: {info.files} files, {_size(info.content_bytes)} "
             f"({_size(info.archive_bytes)} archived)")
        return [(manifest.entry(job.identity, job.targets, info), writer)]
    writer.discard()
    if previous is not None and (folder / previous.archive).is_file():
        _say(f"kept {job.cache.label}: empty in the builder, so the archive of the last export stays")
        return [(previous, None)]
    _say(f"skipped {job.cache.label}: empty in the builder")
    return []


def import_caches(args: argparse.Namespace) -> int:
    """Put each cache of the map that DIR holds back into the builder. Exit status as `--help` says."""
    return _guarded(_import, args)


def _import(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    limit = _max_size(args)
    jobs = {job.identity: job for job in _jobs(args)}
    entries = manifest.read(folder) if folder.is_dir() else None
    if entries is None:
        _say(f"nothing to import: {folder} holds no {manifest.MANIFEST} (no export yet)")
        return EXIT_OK
    chosen = []
    for entry in entries:
        if entry.identity not in jobs:
            _say(f"skipped {entry.label}: the cache map has no such cache now (or --include/--exclude left it out)")
        else:
            chosen.append(entry)
    for identity in jobs.keys() - {entry.identity for entry in entries}:
        _say(f"no archive for {describe(identity)}: it starts empty")
    chosen, left = fit(chosen, lambda entry: entry.archive_bytes, limit)
    for entry in left:
        _say(f"left out {entry.label} ({_size(entry.archive_bytes)}): over --max-size {args.max_size}")
    damaged = _damaged(folder, chosen)
    if damaged:
        for problem in damaged:
            _error(problem)
        _error("nothing was imported: the builder is as it was")
        return EXIT_ERROR
    builder = _builder(args)
    failed = 0
    with _display() as display:
        for entry in chosen:
            meter = display.meter(f"import {entry.label}")
            meter.start(entry.archive_bytes, 0)
            try:
                filled = builder.import_(jobs[entry.identity].cache, folder / entry.archive, meter.advance)
            except (BuilderError, ArchiveDamaged, OSError) as exc:
                failed += 1
                _error(f"cache {entry.label}: not imported: {_reason(exc)}")
                continue
            finally:
                meter.finish()
            _say(f"imported {entry.label}: {entry.files} files, {_size(entry.content_bytes)}" if filled else
                 f"kept {entry.label}: the builder's cache already holds files, so it was left as it is")
    return EXIT_FAILED if failed else EXIT_OK


def _damaged(folder: Path, entries: Sequence[Entry]) -> list[str]:
    """Every archive read in full against the manifest: the problems, one line each."""
    problems = []
    with _display() as display:
        for entry in entries:
            meter = display.meter(f"check {entry.label}")
            meter.start(entry.archive_bytes, 0)
            try:
                verify(folder / entry.archive, entry.sha256, f"cache {entry.label}", meter.advance)
            except ArchiveDamaged as exc:
                problems.append(str(exc))
            finally:
                meter.finish()
    return problems
