"""The cache map of a whole project: the Dockerfiles that PATHS name (folders, files, compose files),
each with the build arguments it is built with, read into one list of cache mounts.

`cachefix mounts list` prints it; `cachefix mounts export/import` carry the caches it names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cachefix.compose import COMPOSE_NAMES, ComposeError, looks_like_compose, read_compose
from cachefix.config import ConfigError, Configurations
from cachefix.discovery import BadPath, BadPattern, Warn, find_dockerfiles, warn_on_stderr
from cachefix.files import UnreadableFile, read_dockerfile
from cachefix.mounts.cachemap import MountProblem, distinct_caches, mounts_in
from cachefix.mounts.identity import CacheIdentity, CacheMount
from cachefix.rewriter.dockerfile import DockerfileSyntaxError, parse


class ProjectError(ValueError):
    """PATHS that give no cache map at all (a missing path, a compose file that cannot be read): one line."""


class UnreadableBuild(ValueError):
    """A Dockerfile of the project that cannot be read or parsed: one line, naming it."""


@dataclass(frozen=True)
class Build:
    """One Dockerfile as it is built: with these build arguments, for these compose services."""

    dockerfile: Path
    build_args: Mapping[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = ()
    target: str | None = None  # the stage built (`--target`); None: every stage


@dataclass(frozen=True)
class MappedMount:
    """A cache mount of the map, and the compose services whose builds use it (none outside compose)."""

    mount: CacheMount
    services: tuple[str, ...] = ()


@dataclass
class CacheMap:
    """Every cache mount the project's builds use, and the files that could not be read."""

    builds: list[Build] = field(default_factory=list)
    mounts: list[MappedMount] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def caches(self) -> list[CacheIdentity]:
        return distinct_caches(entry.mount for entry in self.mounts)

    def users(self, identity: CacheIdentity) -> list[MappedMount]:
        """The mounts that share this cache in the builder."""
        return [entry for entry in self.mounts if entry.mount.identity == identity]


def parse_build_args(items: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`--build-arg K=V` values; a bare `K` takes the variable from the environment, as docker build
    does, and is left out when it is unset. ProjectError for an empty name."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise ProjectError(f"--build-arg {item!r}: needs a NAME (NAME=VALUE)")
        if sep:
            values[key] = value
        elif key in environ:
            values[key] = environ[key]
    return values


def find_builds(paths: Sequence[str], build_args: Mapping[str, str], target: str | None = None,
                warn: Warn = warn_on_stderr) -> list[Build]:
    """The builds PATHS name: a compose file gives its services' builds (the command line's build
    arguments over the file's; a service's own target over `target`), any other path the
    Dockerfiles `cachefix check` would find there, the configuration's `exclude` honoured."""
    builds: dict[tuple[Path, tuple[tuple[str, str], ...], str | None], list[str]] = {}
    plain: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_file() and looks_like_compose(path):
            try:
                services = read_compose(path, warn=warn)
            except ComposeError as exc:
                raise ProjectError(str(exc)) from None
            for service in services:
                args = {**service.build_args, **build_args}
                key = (service.dockerfile, tuple(sorted(args.items())), service.target or target)
                builds.setdefault(key, []).append(service.service)
        else:
            plain.append(given)
            _say_compose_is_not_read(path, warn)
    configurations = Configurations()
    try:
        for found in find_dockerfiles(plain, warn=warn):
            if not configurations.for_file(found.path).excludes(found.path):
                builds.setdefault((found.path, tuple(sorted(build_args.items())), target), [])
    except (BadPath, BadPattern, ConfigError) as exc:
        raise ProjectError(str(exc)) from None
    return [Build(dockerfile, dict(args), tuple(services), stage) for (dockerfile, args, stage), services
            in builds.items()]


def _say_compose_is_not_read(folder: Path, warn: Warn) -> None:
    """A folder given whose compose file builds its Dockerfiles with other args than their ARG
    defaults: the map of the folder alone may name other caches than the build uses."""
    for name in COMPOSE_NAMES:
        if (folder / name).is_file():
            warn(f"{folder / name} is not read for {folder}: give it as a PATH so that its services' "
                 "build args and targets apply")
            return


def _mounts_of(build: Build) -> list[CacheMount]:
    """The build's cache mounts; UnreadableBuild or MountProblem naming the file (and line)."""
    try:
        dockerfile = parse(read_dockerfile(build.dockerfile).text)
    except UnreadableFile as exc:
        raise UnreadableBuild(f"{build.dockerfile}: {exc}") from None
    except DockerfileSyntaxError as exc:
        line = f":{exc.line}" if exc.line else ""
        raise UnreadableBuild(f"{build.dockerfile}{line}: {exc.message}") from None
    return mounts_in(dockerfile, str(build.dockerfile), build.build_args, build.target)


def cache_map(paths: Sequence[str], build_args: Mapping[str, str] | None = None, target: str | None = None,
              warn: Warn = warn_on_stderr) -> CacheMap:
    """The cache map of PATHS. A Dockerfile that cannot be read or parsed, or holds a mount BuildKit
    would refuse, is an error of the map and the other files are still read; ProjectError when
    PATHS themselves are wrong."""
    result = CacheMap(builds=find_builds(paths, build_args or {}, target, warn))
    seen: dict[CacheMount, int] = {}
    for build in result.builds:
        try:
            mounts = _mounts_of(build)
        except (UnreadableBuild, MountProblem) as exc:  # each once: a file built with other arguments is read again
            if str(exc) not in result.errors:
                result.errors.append(str(exc))
            continue
        for mount in mounts:
            if mount in seen:  # a file built with other arguments that do not change this mount
                entry = result.mounts[seen[mount]]
                result.mounts[seen[mount]] = MappedMount(mount, entry.services + build.services)
            else:
                seen[mount] = len(result.mounts)
                result.mounts.append(MappedMount(mount, build.services))
    return result
