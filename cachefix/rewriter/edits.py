"""Text edits on a Dockerfile: where a flag or a deletion goes, and applying them.

Rules describe a fix as edits in file offsets; nothing else in the file moves. Insertions at
the same offset keep the order the rules produced them in, so two mounts added to one RUN
come out in rule order.
"""

from __future__ import annotations

from collections.abc import Iterable

from cachefix.model import Edit
from cachefix.rewriter.dockerfile import Flag, Instruction

Span = tuple[int, int]


class EditConflict(ValueError):
    """Two edits overlap; the fix is not applied rather than guessed."""


def add_flag(instruction: Instruction, flag: str) -> Edit:
    """Insert ` --mount=...` right after the RUN keyword (inside ONBUILD too)."""
    target = instruction.unwrapped
    end = target.keyword_span[1]
    return Edit(end, end, " " + flag)


def replace_flag(flag: Flag, text: str) -> Edit:
    return Edit(flag.span[0], flag.span[1], text)


def delete(span: Span) -> Edit:
    return Edit(span[0], span[1], "")


def insert(offset: int, text: str) -> Edit:
    return Edit(offset, offset, text)


def apply(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits; identical duplicates count once."""
    unique = list(dict.fromkeys(edits))
    ordered = sorted(enumerate(unique), key=lambda item: (item[1].start, item[1].end, item[0]))
    out: list[str] = []
    cursor = 0
    for _, edit in ordered:
        if edit.start < cursor:
            raise EditConflict(f"overlapping edits at offset {edit.start}")
        out.append(text[cursor:edit.start])
        out.append(edit.replacement)
        cursor = edit.end
    out.append(text[cursor:])
    return "".join(out)
