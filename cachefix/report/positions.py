"""Offsets into a file's text as 1-based (line, column) pairs and back, for reporters that need them."""

from __future__ import annotations

from bisect import bisect_right

from cachefix.model import Position


class LineIndex:
    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def offset(self, position: Position) -> int:
        line = min(position.line, len(self.starts))
        return min(self.starts[line - 1] + position.column - 1, len(self.text))

    def excerpt(self, start: Position, end: Position) -> str:
        """The text from `start` up to (not including) `end`."""
        return self.text[self.offset(start):self.offset(end)]
