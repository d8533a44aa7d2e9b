"""`RUN --mount=type=cache,...` flags: reading the ones a RUN has, writing the ones it needs."""

from __future__ import annotations

import csv
import posixpath
from dataclasses import dataclass
from typing import NamedTuple

from cachefix.rewriter.dockerfile import Flag, Instruction

_TARGET_KEYS = ("target", "dst", "destination")


class CacheMount(NamedTuple):
    """A cache mount a rule wants on a RUN. Option order follows Docker's documentation."""

    target: str
    id: str | None = None
    sharing: str | None = None
    uid: int | None = None
    gid: int | None = None

    def render(self) -> str:
        options = ["type=cache", f"target={self.target}"]
        if self.id:
            options.append(f"id={self.id}")
        if self.sharing:
            options.append(f"sharing={self.sharing}")
        if self.uid is not None:
            options.append(f"uid={self.uid}")
        if self.gid is not None:
            options.append(f"gid={self.gid}")
        return "--mount=" + ",".join(options)

    def satisfied_by(self, existing: ExistingMount) -> bool:
        """An existing mount does this mount's job when every option that matters agrees."""
        return (
            existing.is_cache
            and is_within(self.target, existing.target)
            and (self.sharing is None or existing.options.get("sharing") == self.sharing)
            and (self.uid is None or existing.options.get("uid") == str(self.uid))
            and (self.gid is None or existing.options.get("gid") == str(self.gid))
        )


@dataclass(frozen=True)
class ExistingMount:
    """A `--mount` flag already on a RUN, with its options parsed."""

    flag: Flag
    options: dict[str, str]

    @property
    def is_cache(self) -> bool:
        return self.options.get("type") == "cache"

    @property
    def target(self) -> str:
        return next((self.options[k] for k in _TARGET_KEYS if k in self.options), "")


def same_path(a: str, b: str) -> bool:
    return posixpath.normpath(a or "/") == posixpath.normpath(b or "/")


def is_within(path: str, folder: str) -> bool:
    """`path` is `folder` or below it."""
    path, folder = posixpath.normpath(path), posixpath.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def parse_mount(value: str) -> dict[str, str]:
    """BuildKit reads a mount spec as one CSV record of `key=value` (or bare `key`) fields."""
    fields = next(csv.reader([value]), [])
    options: dict[str, str] = {}
    for field in fields:
        key, sep, val = field.partition("=")
        options[key.strip().lower()] = val if sep else "true"
    return options


def existing_mounts(instruction: Instruction) -> list[ExistingMount]:
    target = instruction.inner if instruction.keyword == "ONBUILD" and instruction.inner else instruction
    return [ExistingMount(flag, parse_mount(flag.value or "")) for flag in target.flags if flag.name == "mount"]


def cache_mount_covering(mounts: list[ExistingMount], path: str) -> ExistingMount | None:
    """The cache mount whose target holds `path`, if any."""
    return next((m for m in mounts if m.is_cache and m.target and is_within(path, m.target)), None)
