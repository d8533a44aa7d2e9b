"""Progress display: a rich bar (bytes, rate, ETA) on a terminal, nothing elsewhere.

rich is imported only when a bar is really shown, so hits and piped runs never pay for it.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any


def wanted(flag: bool | None) -> bool:
    """Explicit `--progress`/`--quiet` win; otherwise only on a terminal and never in CI."""
    if flag is not None:
        return flag
    return sys.stderr.isatty() and not os.environ.get("CI")


class Meter:
    """The progress of one transfer. This base class shows nothing."""

    def start(self, total: int | None, done: int) -> None:
        """A (re)started response: `total` bytes expected (None if unknown), `done` already held."""

    def advance(self, size: int) -> None:
        """`size` more bytes arrived."""

    def finish(self) -> None:
        """The transfer is over, whatever its outcome."""


class Display:
    """One display for any number of concurrent transfers, plus an optional file counter."""

    def __init__(self, enabled: bool, files: int = 0) -> None:
        self._progress: Any = None
        self._files_task: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class BytesOnly(ProgressColumn):
            """A byte column that stays blank on the file counter's row."""

            def __init__(self, column: ProgressColumn) -> None:
                super().__init__()
                self.column = column

            def render(self, task: Task) -> Any:
                return Text("") if task.fields.get("counter") else self.column.render(task)

        self._progress = Progress(
            TextColumn("{task.description}", table_column=None), BarColumn(),
            *(BytesOnly(c) for c in (DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())),
            console=Console(stderr=True), transient=True)
        if files > 1:
            self._files_task = self._progress.add_task(f"0/{files} files", total=files, counter=True)

    def __enter__(self) -> Display:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def meter(self, label: str) -> Meter:
        return Meter() if self._progress is None else _RichMeter(self._progress, label)

    def file_done(self) -> None:
        if self._files_task is not None:
            self._progress.advance(self._files_task)
            task = self._progress.tasks[self._files_task]
            self._progress.update(self._files_task, description=f"{task.completed:.0f}/{task.total:.0f} files")


class _RichMeter(Meter):
    def __init__(self, progress: Any, label: str) -> None:
        self._progress, self._label, self._task = progress, label, None

    def start(self, total: int | None, done: int) -> None:
        if self._task is None:
            self._task = self._progress.add_task(self._label, total=total, completed=done)
        else:
            self._progress.reset(self._task, total=total, completed=done)

    def advance(self, size: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, size)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
