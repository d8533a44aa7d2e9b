"""Text taken from a file or a path, made safe to show: no file can send escape sequences to a
terminal, or break a line-based report, through a message that quotes it."""

from __future__ import annotations


def escaped(text: str) -> str:
    """`text` as is when printable, else with Python's escapes (`\\x1b`): what any output
    meant for a terminal or a line-based format does with text taken from a file or its path."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def displayable(text: str, limit: int = 60) -> str:
    """Text from a file as a message may show it: cut short, and escaped when it holds control
    or invisible characters."""
    return escaped(text if len(text) <= limit else text[:limit - 3] + "...")
