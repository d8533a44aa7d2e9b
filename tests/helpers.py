"""Small helpers the test modules share."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, text: str) -> Path:
    """Write a file, creating its folders: tests build small trees of Dockerfiles."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
