"""Clean-ups that empty a cache about to be mounted: which can be dropped, which block the fix.

`rm -rf /var/lib/apt/lists/*` keeps a layer small when the lists are in the image; once they
are a cache mount it only throws the cache away, so the fix drops it. Some cannot be dropped
(joined by `||`, piped, or removing a folder that holds the mount point): those are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cachefix.model import Edit
from cachefix.rewriter import edits
from cachefix.rewriter.context import word_path
from cachefix.rewriter.mounts import is_within
from cachefix.rewriter.shell import Command, Word, removal_spans
from cachefix.rules.words import previous_words, remove_words


@dataclass
class CleanUp:
    """What a RUN does to caches that are about to be mounted.

    `edits` drop what only empties them: whole clean-up commands, `rm` of paths inside them.
    `breaker` is a command that would break the build or the cache once they are mounts and
    that cannot be dropped: an `rm` of a folder holding a cache fails on the mount point
    ("Device or resource busy"), a clean-up joined by `||` or in a pipeline, and (when asked)
    a `find ... -delete` that reaches into a cache, deleting files a later build links from.
    """

    edits: list[Edit]
    breaker: Command | None = None
    why: str = ""

    def block(self, command: Command, why: str) -> None:
        if self.breaker is None:
            self.breaker, self.why = command, why

    def problem(self, cache: str) -> str:
        """The finding's message for a RUN that cannot gain a mount on `cache` as it is."""
        text = " ".join(w.raw for w in self.breaker.words) if self.breaker else ""
        return (f"a cache mount on {cache} is needed, but `{text}` in this RUN {self.why}: "
                "remove or narrow it, then run cachefix again")


def clean_up(commands: Iterable[Command], is_clean_up: Callable[[Command], bool], cache_dirs: Sequence[str],
             home: str | None = None, env: Mapping[str, str] | None = None, *,
             deletions_corrupt: bool = False) -> CleanUp:
    """Plan the removal of cache clean-ups from a RUN that gains mounts on `cache_dirs`."""
    env = env or {}

    def place(word: Word) -> tuple[bool, bool]:
        """(inside a cache, holding a cache) for an `rm` or `find` operand."""
        path = word_path(word, env, home)
        if path is None:
            return False, False
        path = path.rstrip("*").rstrip("/") or "/"
        if not path.startswith("/"):
            return False, False
        inside = any(is_within(path, folder) for folder in cache_dirs)
        return inside, not inside and any(is_within(folder, path) for folder in cache_dirs)

    plan = CleanUp([])
    doomed: list[Command] = []
    for command in commands:
        if is_clean_up(command):
            doomed.append(command)
        elif command.name == "rm":
            paths = [w for w in command.args if not (w.value or "?").startswith("-")]
            places = [place(w) for w in paths]
            inside = [w for w, (within, _) in zip(paths, places, strict=True) if within]
            if any(holds for _, holds in places):
                plan.block(command, "removes a folder that holds the cache, and fails on the mount point "
                                    "(Device or resource busy)")
            elif any(w.span is None for w in inside):
                plan.block(command, "empties the cache where cachefix cannot edit it (inside a quoted script)")
            if inside and len(inside) == len(paths):
                doomed.append(command)
            elif inside:
                plan.edits.extend(remove_words(inside, previous_words(command)))
        elif deletions_corrupt and _find_deletes(command) and any(any(place(w)) for w in _find_starts(command)):
            plan.block(command, "deletes files inside the cache, and a later build would install the packages "
                                "from there incomplete (add -xdev, or prune the cache folder)")
    spans = removal_spans(doomed) if doomed else []
    if spans is None:
        plan.block(next((c for c in doomed if not c.removable or c.span is None), doomed[0]),
                   "empties the cache, and cannot be removed on its own (it is joined by `||`, piped or quoted)")
    plan.edits.extend(edits.delete(span) for span in spans or ())
    return plan


def _find_deletes(command: Command) -> bool:
    """`find ... -delete` or `find ... -exec rm ...`, unless it stays on one file system
    (`-xdev`: a cache mount is another one) or prunes something."""
    if command.name != "find":
        return False
    values = [w.value for w in command.args]
    if "-xdev" in values or "-mount" in values or "-prune" in values:
        return False
    return "-delete" in values or any(
        v in ("-exec", "-execdir") and i + 1 < len(values) and (values[i + 1] or "").endswith("rm")
        for i, v in enumerate(values))


def _find_starts(command: Command) -> list[Word]:
    """The starting points of a `find`: the operands before its first expression word."""
    starts: list[Word] = []
    for word in command.args:
        value = word.value or ""
        if value in ("-H", "-L", "-P"):
            continue
        if value.startswith(("-", "(", "!")):
            break
        starts.append(word)
    return starts
