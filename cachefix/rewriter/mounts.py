"""`RUN --mount=type=cache,...` flags: reading the ones a RUN has, writing the ones it needs."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from cachefix.rewriter.dockerfile import Flag, Instruction

TARGET_KEYS = ("target", "dst", "destination")

# What a value in a `--mount` flag cannot hold: whitespace ends the flag (the rest would run as a
# command), a comma or `=` starts another option, quotes and backslashes are read by the flag
# parser, not kept. Quoting is not portable (BuildKit reads the flag as CSV, buildah splits it
# at commas), so such a mount is left to the user.
_BREAKS = {",": "a comma", "=": "an `=`", '"': "a quote", "'": "a quote", "\\": "a backslash"}


class UnsafeMount(ValueError):
    """A mount whose flag cachefix cannot write safely: the `key` option's `value`, and why
    (`problem`: "holds a space")."""

    def __init__(self, key: str, value: str, problem: str) -> None:
        super().__init__(f"{key}={value!r} {problem}")
        self.key, self.value, self.problem = key, value, problem


def _checked(key: str, value: str) -> str:
    for ch in value:
        if ch in _BREAKS:
            raise UnsafeMount(key, value, f"holds {_BREAKS[ch]}")
        if ch.isspace():
            raise UnsafeMount(key, value, "holds a space" if ch == " " else "holds whitespace")
        if not ch.isprintable():
            raise UnsafeMount(key, value, "holds a control character")
    return value


def mount_flag(options: Iterable[tuple[str, str | None]]) -> str:
    """The one place a `--mount=` flag is written: `key=value` options (None: a bare key such as
    `ro`) joined by commas. Raises UnsafeMount for a value that would not read back as written."""
    return "--mount=" + ",".join(_checked(k, k) if v is None else f"{_checked(k, k)}={_checked(k, v)}"
                                 for k, v in options)


class CacheMount(NamedTuple):
    """A cache mount a rule wants on a RUN. Option order follows Docker's documentation."""

    target: str
    id: str | None = None
    sharing: str | None = None
    uid: int | None = None
    gid: int | None = None
    # "0777" for a user whose uid the file does not show: anyone may write the new cache folder.
    # BuildKit (frontend 1.2+) and buildah apply it when they create the cache, like uid/gid.
    mode: str | None = None

    def render(self) -> str:
        """The flag; UnsafeMount when the target is not a plain absolute path (BuildKit would also
        expand a `$` in it) or a value cannot be written (see `mount_flag`)."""
        if not self.target.startswith("/"):
            raise UnsafeMount("target", self.target, "is not an absolute path")
        if "$" in self.target:
            raise UnsafeMount("target", self.target, "holds a `$`, which BuildKit would expand")
        options = [("type", "cache"), ("target", self.target), ("id", self.id), ("sharing", self.sharing),
                   ("uid", self.uid), ("gid", self.gid), ("mode", self.mode)]
        return mount_flag((k, str(v)) for k, v in options if v is not None and v != "")

    def satisfied_by(self, existing: ExistingMount) -> bool:
        """An existing mount does this mount's job when every option that matters agrees."""
        return (
            existing.is_cache
            and is_within(self.target, existing.target)
            and (self.sharing is None or existing.options.get("sharing") == self.sharing)
            and (self.uid is None or existing.options.get("uid") == str(self.uid))
            and (self.gid is None or existing.options.get("gid") == str(self.gid))
            and (self.mode is None or _octal(existing.options.get("mode")) == _octal(self.mode))
        )


def _octal(mode: str | None) -> int | None:
    """A mount's mode as BuildKit reads it (octal: `777` and `0777` are the same)."""
    try:
        return None if mode is None else int(mode, 8)
    except ValueError:
        return None


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
        return next((self.options[k] for k in TARGET_KEYS if k in self.options), "")


def same_path(a: str, b: str) -> bool:
    return posixpath.normpath(a or "/") == posixpath.normpath(b or "/")


def is_within(path: str, folder: str) -> bool:
    """`path` is `folder` or below it."""
    path, folder = posixpath.normpath(path), posixpath.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def parse_mount(value: str) -> dict[str, str]:
    """BuildKit reads a mount spec as one CSV record of `key=value` (or bare `key`) fields."""
    import csv  # only for a RUN with a --mount

    fields = next(csv.reader([value]), [])
    options: dict[str, str] = {}
    for field in fields:
        key, sep, val = field.partition("=")
        options[key.strip().lower()] = val if sep else "true"
    return options


def existing_mounts(instruction: Instruction) -> list[ExistingMount]:
    target = instruction.unwrapped
    return [ExistingMount(flag, parse_mount(flag.value or "")) for flag in target.flags if flag.name == "mount"]


def cache_mount_covering(mounts: list[ExistingMount], path: str) -> ExistingMount | None:
    """The cache mount whose target holds `path`, if any."""
    return next((m for m in mounts if m.is_cache and m.target and is_within(path, m.target)), None)
