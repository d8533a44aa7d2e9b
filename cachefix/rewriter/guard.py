"""The last check before a fix is written: did it change only what cachefix changes?

A fix adds or changes `RUN --mount=type=cache` flags, rewrites the commands inside RUNs (drops
cache-defeating options and cache clean-ups, points a cache elsewhere) and adds or raises the
`# syntax=` directive, and may declare an automatic platform ARG (`ARG TARGETARCH`, for a cache
id scoped by architecture). Anything else — an instruction added, removed or moved, another
instruction or flag changed, another parser directive touched, a `# syntax=` that is not an
image reference — is a bug in cachefix or in a rule plugin (or an attack through one), and the
file is left as it was. The comparison is of the parsed files, so no layout trick hides a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cachefix.rewriter.dockerfile import Dockerfile, Flag, Instruction
from cachefix.rewriter.syntax import is_image_reference, parse_frontend
from cachefix.shown import displayable

# The bare ARGs a fix may add: automatic platform ARGs, which BuildKit fills in, so declaring one
# only makes its value reach the stage's RUNs (cachefix.rules.id_scope).
PLATFORM_ARGS = ("TARGETARCH", "BUILDARCH")


def unintended_change(before: Dockerfile, after: Dockerfile, requested: str | None,
                      written_flags: Iterable[str] = ()) -> str | None:
    """What the fix changed beyond cache settings, in a few words; None when nothing.

    `requested` is the frontend the user asked for (`--syntax`): besides Docker's own, the only
    one a fix may name in a new `# syntax=` (a frontend is code that runs in the builder).
    `written_flags` are the flags the findings say their fix writes: each must read back as one
    whole flag, or part of it (after a space in a path, say) would run as a command; and every
    cache mount the fixed file has that the original had not must be one of them.
    """
    directives = _directive_change(before, after, requested)
    if directives is not None:
        return directives
    kept = _without_added_platform_args(before.instructions, after.instructions)
    if len(before.instructions) != len(kept):
        return f"{len(before.instructions)} instructions would become {len(after.instructions)}"
    for old, new in zip(before.instructions, kept, strict=True):
        if _shape(old) != _shape(new):
            return f"the {old.keyword} instruction on line {old.start_line} would change"
    written = set(written_flags)
    flags = _flag_texts(after)
    broken = next((flag for flag in written if flag not in flags), None)
    if broken is not None:
        return f"`{displayable(broken)}` would not read back as one flag"
    unannounced = next((flag for flag in _flag_texts(after, cache_only=True) - _flag_texts(before, cache_only=True)
                        if flag not in written), None)
    return None if unannounced is None else f"`{displayable(unannounced)}` is a mount no finding announced"


def _without_added_platform_args(before: Sequence[Instruction], after: Sequence[Instruction]) -> list[Instruction]:
    """`after` without the bare platform ARGs that are not in `before` at that place."""
    kept: list[Instruction] = []
    for instruction in after:
        at = len(kept)
        added = (instruction.keyword == "ARG" and not instruction.flags and len(instruction.value) == 1
                 and instruction.value[0] in PLATFORM_ARGS)
        if added and (at >= len(before) or _shape(before[at]) != _shape(instruction)):
            continue
        kept.append(instruction)
    return kept


def _flag_texts(dockerfile: Dockerfile, cache_only: bool = False) -> set[str]:
    return {dockerfile.text[f.span[0]:f.span[1]] for i in dockerfile.instructions for f in i.unwrapped.flags
            if not cache_only or _cache_mount(f)}


def _directive_change(before: Dockerfile, after: Dockerfile, requested: str | None) -> str | None:
    if _other_directives(before) != _other_directives(after) or before.escape != after.escape:
        return "a parser directive other than `# syntax=` would change"
    old, new = _syntax(before), _syntax(after)
    if old == new:
        return None
    if new is None or not is_image_reference(new):
        return f"`# syntax={displayable(new or '')}` is not an image reference"
    if old is not None and (parse_frontend(old) is None or parse_frontend(new) is None):
        return f"`# syntax={displayable(old)}` would name another frontend"  # only Docker's own is raised
    if old is None and parse_frontend(new) is None and new != requested:
        return f"`# syntax={new}` names a frontend nobody asked for"  # an image reference: printable
    return None


def _other_directives(dockerfile: Dockerfile) -> list[tuple[str, str]]:
    return [(d.name.lower(), d.value) for d in dockerfile.directives if d.name.lower() != "syntax"]


def _syntax(dockerfile: Dockerfile) -> str | None:
    return next((d.value for d in dockerfile.directives if d.name.lower() == "syntax"), None)


def _shape(instruction: Instruction) -> tuple[object, ...]:
    """What a fix must keep: all of an instruction but a RUN's cache mounts and its commands."""
    inner = instruction.inner
    if inner is not None:
        return instruction.keyword, _shape(inner)
    flags = tuple((f.name, f.value) for f in instruction.flags if not _cache_mount(f))
    if instruction.keyword == "RUN":
        return instruction.keyword, flags, instruction.json, tuple(h.name for h in instruction.heredocs)
    heredocs = tuple((h.name, h.chomp, h.expand, h.content) for h in instruction.heredocs)
    return instruction.keyword, flags, instruction.value, instruction.json, heredocs


def _cache_mount(flag: Flag) -> bool:
    return flag.name == "mount" and "type=cache" in (flag.value or "").split(",")
