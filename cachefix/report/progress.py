"""A progress bar on stderr for runs over many files, only when a person is watching.

rich is imported only then: a hook or CI job (stderr not a terminal) never pays for it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

MIN_FILES = 20  # fewer files are checked faster than a bar could be read

T = TypeVar("T")


def with_progress(things: Iterable[T], total: int, label: str, *, enabled: bool = True) -> Iterator[T]:
    if not enabled or total < MIN_FILES or not sys.stderr.isatty():
        yield from things
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        for thing in things:
            yield thing
            progress.advance(task)
