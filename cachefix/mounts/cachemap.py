"""The cache map: every `RUN --mount=type=cache` of a Dockerfile, as BuildKit will key it.

Defaults and expansion follow BuildKit's Dockerfile frontend (moby/buildkit,
frontend/dockerfile/instructions/commands_runmount.go and dockerfile2llb/convert_runmount.go):
- a mount is `type=bind` unless it says otherwise; option names are read case-insensitively;
- every option value is expanded with the stage's ARG (build arguments included) and ENV values;
- `id` defaults to `path.Clean(target)`; `uid` and `gid` default to 0, `mode` to 0755 (read as
  octal: `mode=755` is the same cache); `sharing` defaults to `shared`. A mount that writes any of
  uid, gid and mode is another cache than one that writes none, even with the default values
  (`CacheIdentity.explicit`): the frontend then bases the cache on a folder made with them.
ONBUILD RUNs are left out: they run in the builds of other images, not in this one. With a build
target (`--target`, a compose service's `target`), so are the stages BuildKit does not build for it.
"""

from __future__ import annotations

import platform
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence

from cachefix.mounts.identity import CacheIdentity, CacheMount
from cachefix.rewriter.context import RunContext, Stage, expand, replay
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import TARGET_KEYS, existing_mounts

SHARING_MODES = ("shared", "private", "locked")

# What BuildKit's `--platform` names call the machine types Python reports (`platform.machine()`).
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
                  "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
                  "riscv64": "riscv64"}


class MountProblem(ValueError):
    """A cache mount BuildKit would refuse (`uid=abc`, `sharing=sometimes`): one line, with its place."""


def host_platform_args() -> dict[str, str]:
    """BuildKit's automatic platform ARGs for a build on this machine without `--platform`: a stage
    that declares `ARG TARGETARCH` gets them (docs.docker.com, "Automatic platform ARGs in the
    global scope"). `--build-arg TARGETARCH=arm64` replaces them like any other build argument."""
    machine = platform.machine().lower()
    arch = _ARCHITECTURES.get(machine, machine)
    variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine, "")
    name = f"linux/{arch}" + (f"/{variant}" if variant else "")
    values = {"PLATFORM": name, "OS": "linux", "ARCH": arch, "VARIANT": variant}
    return {prefix + key: value for prefix in ("TARGET", "BUILD") for key, value in values.items()}


def go_clean(path: str) -> str:
    """Go's `path.Clean`, which BuildKit applies to a target to make the default id."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _number(key: str, value: str, base: int, where: str) -> int:
    """Go's `strconv.ParseUint(value, base, 32)`: digits only (no sign, space or underscore)."""
    digits = "01234567" if base == 8 else "0123456789"
    if not value or value.strip(digits):
        raise MountProblem(f"{where}: invalid value {value!r} for {key} in a cache mount")
    number = int(value, base)
    if not 0 <= number < 2 ** 32:
        raise MountProblem(f"{where}: {key}={value} is out of range in a cache mount")
    return number


def _cache_mount(options: Mapping[str, str], run: RunContext, path: str) -> CacheMount:
    line = run.instruction.start_line
    where = f"{path}:{line}"
    raw_target = next((options[k] for k in TARGET_KEYS if k in options), "")
    if not raw_target:
        raise MountProblem(f"{where}: a cache mount without a target")
    target = raw_target if raw_target.startswith("/") else posixpath.join(run.stage.workdir, raw_target)
    sharing = options.get("sharing", "shared").lower()
    if sharing not in SHARING_MODES:
        raise MountProblem(f"{where}: unsupported sharing value {options['sharing']!r} in a cache mount")
    identity = CacheIdentity(
        id=options.get("id") or go_clean(raw_target),
        uid=str(_number("uid", options.get("uid", "0"), 10, where)),
        gid=str(_number("gid", options.get("gid", "0"), 10, where)),
        mode=f"{_number('mode', options.get('mode', '0755'), 8, where):04o}",
        explicit=any(key in options for key in ("uid", "gid", "mode")),
    )
    image = "" if run.stage.base_image.lower() == "scratch" else run.stage.base_image
    return CacheMount(identity, go_clean(target), sharing, run.stage.name or str(run.stage.index), path, line, image)


def _stage_sources(stage: Stage, by_name: Mapping[str, int]) -> Iterator[int]:
    """The stages of this file that `stage` needs: its parent, and those named by `COPY --from` and
    `RUN --mount=...,from=` (by name or by index)."""
    if stage.parent is not None:
        yield stage.parent
    for instruction in stage.instructions:
        names = list(instruction.flag_values("from")) if instruction.keyword == "COPY" else []
        names += [mount.options["from"] for mount in existing_mounts(instruction) if "from" in mount.options]
        for name in names:
            if name and name.lower() in by_name:
                yield by_name[name.lower()]
            elif name and name.isdigit() and int(name) < stage.index:
                yield int(name)


def built_stages(stages: Sequence[Stage], target: str, where: str) -> set[int]:
    """The stages `--target target` builds: that stage and every stage it needs, directly or not
    (BuildKit builds no other). MountProblem when the file has no such stage."""
    by_name: dict[str, int] = {}
    for stage in stages:
        if stage.name:
            by_name.setdefault(stage.name, stage.index)
    if target.lower() not in by_name:
        raise MountProblem(f"{where}: no stage named {target!r} (the build's target)")
    needed, pending = set(), [by_name[target.lower()]]
    while pending:
        index = pending.pop()
        if index not in needed:
            needed.add(index)
            pending.extend(_stage_sources(stages[index], by_name))
    return needed


def mounts_in(dockerfile: Dockerfile, path: str, build_args: Mapping[str, str] | None = None,
              target: str | None = None) -> list[CacheMount]:
    """Every cache mount of the file's RUNs, in file order, with build arguments and the stage's
    variables resolved (`--build-arg` values over the automatic platform ARGs of this machine).
    With a `target`, only the stages that build it; without, every stage (a CI job may build any
    of them). MountProblem for a mount BuildKit would refuse."""
    given = {**host_platform_args(), **(build_args or {})}
    replayed = replay(dockerfile, build_args=given)
    stages = None if target is None else built_stages(replayed.stages, target, path)
    found: list[CacheMount] = []
    for run in replayed.runs:
        if run.instruction.keyword != "RUN" or (stages is not None and run.stage.index not in stages):
            continue  # an ONBUILD RUN, or a stage the target does not need
        for mount in existing_mounts(run.instruction):
            options = {key: expand(value, run.env) for key, value in mount.options.items()}
            if options.get("type", "bind").lower() == "cache":
                found.append(_cache_mount(options, run, path))
    return found


def distinct_caches(mounts: Iterable[CacheMount]) -> list[CacheIdentity]:
    """The caches these mounts use, each once, sorted: mounts with the same identity share one
    cache in the builder, so export and import handle each identity once."""
    return sorted({mount.identity for mount in mounts})
