"""The `# syntax=` parser directive: which frontend a file needs, and writing it.

BuildKit features arrived in frontend versions: `RUN --mount` is stable since 1.2, variables
in mount options are expanded since 1.3, heredocs and `COPY --link` need 1.4. A file gets the
version the user asked for (default 1.3), raised to what it uses; an existing directive is
never lowered, and one naming another frontend image is left alone.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from cachefix.model import Edit
from cachefix.rewriter.dockerfile import Dockerfile

DEFAULT = "docker/dockerfile:1.3"
Version = tuple[int, ...]
# distribution/reference's grammar (reference.go), ASCII only: [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])"
_REFERENCE = re.compile(rf"(?P<name>(?:{_HOST}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*)"
                        r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                        r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")
_MAX_NAME = 255  # reference.NameTotalLengthMax
_FRONTEND = re.compile(r"^(?P<image>(?:docker\.io/)?docker/dockerfile(?:-upstream)?)"
                       r"(?::(?P<tag>[0-9][0-9.]*)?(?P<suffix>[-a-z]*)?)?(?P<digest>@[A-Za-z0-9+._-]+:[0-9a-fA-F]+)?$")


class Frontend(NamedTuple):
    """`docker/dockerfile:1.4-labs` → image, version (1, 4), suffix "-labs"."""

    image: str
    version: Version | None  # None: a floating tag such as `:1`-less `latest`
    suffix: str
    pinned: bool = False  # `@sha256:...`: the tag cannot be changed without a new digest

    def at_least(self, needed: Version) -> bool:
        return self.version is None or self.version >= needed

    def raised_to(self, needed: Version) -> str:
        return f"{self.image}:{'.'.join(map(str, needed))}{self.suffix}"


def parse_frontend(value: str) -> Frontend | None:
    """None for a frontend that is not Docker's own (left alone)."""
    match = _FRONTEND.match(value.strip())
    if match is None:
        return None
    tag = match.group("tag")
    version = tuple(int(p) for p in tag.split(".") if p) if tag else None
    if version is not None and len(version) == 1:
        version = None  # `:1` floats to the newest 1.x, which has everything
    return Frontend(match.group("image"), version, match.group("suffix") or "", bool(match.group("digest")))


def is_image_reference(value: str) -> bool:
    """Whether `value` is an image reference BuildKit could pull as a frontend: nothing else may
    follow `# syntax=` (a value with a newline would write instructions into the file)."""
    match = _REFERENCE.fullmatch(value)
    return match is not None and len(match["name"]) <= _MAX_NAME


def needed_version(dockerfile: Dockerfile, adds_mounts: bool) -> Version | None:
    """The oldest frontend that understands everything the file uses (after the fix)."""
    needed: list[Version] = [(1, 2)] if adds_mounts else []
    for instruction in dockerfile.instructions:
        target = instruction.unwrapped
        if target.heredocs or any(f.name == "link" for f in target.flags):
            needed.append((1, 4))
        for flag in target.flags:
            if flag.name == "mount":
                needed.append((1, 3) if "$" in (flag.value or "") else (1, 2))
    return max(needed, default=None)


def directive_edit(dockerfile: Dockerfile, requested: str | None, adds_mounts: bool) -> Edit | None:
    """The edit that gives the file the directive it needs, or None when it has it."""
    needed = needed_version(dockerfile, adds_mounts)
    if needed is None:
        return None
    current = next((d for d in dockerfile.directives if d.name == "syntax"), None)
    if current is not None:
        frontend = parse_frontend(current.value)
        if frontend is None or frontend.pinned or frontend.at_least(needed):
            return None  # another frontend, or a digest only the user can renew: CF001 reports it
        start = current.span[0] + dockerfile.text[current.span[0]:current.span[1]].index(current.value)
        return Edit(start, start + len(current.value), frontend.raised_to(needed))
    if not adds_mounts or requested == "none":
        return None
    wanted = parse_frontend(requested or DEFAULT)
    line = requested or DEFAULT
    if wanted is not None and not wanted.at_least(needed):
        line = wanted.raised_to(needed)
    start = 1 if dockerfile.text.startswith("\ufeff") else 0
    return Edit(start, start, f"# syntax={line}{dockerfile.newline}")
