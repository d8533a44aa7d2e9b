"""Edits on a command's words: dropping an option, a `NAME=value` prefix, or putting one before it.

Every deletion takes the whitespace before the word with it, so continuation lines and the
rest of the command stay as the user wrote them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from cachefix.model import Edit
from cachefix.rewriter import edits
from cachefix.rewriter.shell import Assignment, Command, Word


def remove_words(words: Iterable[Word], previous: dict[int, Word]) -> Iterator[Edit]:
    """Delete words together with the whitespace before them (continuations kept intact)."""
    for word in words:
        before = previous.get(id(word))
        if word.span is None or before is None or before.span is None:
            continue
        yield edits.delete((before.span[1], word.span[1]))


def previous_words(command: Command) -> dict[int, Word]:
    """For each word, the word before it (the deletion of a word starts after its predecessor)."""
    return {id(w): command.words[i - 1] for i, w in enumerate(command.words) if i > 0}


def delete_assignment(command: Command, assignment: Assignment) -> Edit | None:
    """Delete a `NAME=value ` prefix of a command, with the space after it."""
    if assignment.span is None:
        return None
    after = assignment.span[1]
    starts = [a.span[0] for a in command.assignments if a.span and a.span[0] >= after]
    starts += [w.span[0] for w in command.words if w.span and w.span[0] >= after]
    return edits.delete((assignment.span[0], min(starts, default=after)))




def set_for_command(command: Command, shell_form: bool, assign: Mapping[str, str],
                    unset: Sequence[str] = ()) -> Edit | None:
    """Set variables (`assign`) and remove others (`unset`) for this one command, in front of its
    program word: `NAME=value ` in a shell, `env -u NAME ` to remove one; in an exec-form RUN,
    `"env", "-u", "NAME", "NAME=value", `. The image's ENV is kept; only this command sees the
    change. BusyBox's and GNU's env both read `-u NAME`. None when the program word has no place
    in the file (inside a quoted script) or there is nothing to do.
    """
    assign = {k: v for k, v in assign.items() if not any(a.name == k and a.value == v for a in command.assignments)}
    unset = [name for name in unset if name not in command.unsets]
    start = command.words[0].span if command.words else None
    if start is None or not (assign or unset):
        return None
    items = [*(f"-u {name}" for name in unset), *(f"{k}={v}" for k, v in assign.items())]
    if not shell_form:
        argv = [part for item in items for part in item.split(" ")]
        return edits.insert(start[0], "".join(f'"{part}", ' for part in ["env", *argv]))
    return edits.insert(start[0], ("env " if unset else "") + " ".join(items) + " ")
