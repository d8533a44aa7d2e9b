"""`write_all`: every byte of a batch lands in order, however little each `writev` takes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cachefix.downloads.store import write_all


def test_short_writev_calls_are_continued_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_writev = os.writev

    def seven_bytes_at_most(fd: int, buffers: list[memoryview]) -> int:
        taken, left = [], 7
        for view in buffers:
            taken.append(view[:left])
            left -= len(taken[-1])
            if not left:
                break
        return real_writev(fd, taken)

    monkeypatch.setattr(os, "writev", seven_bytes_at_most)
    batch = [b"abc", b"", b"defghijklmnop", b"q", b"rstuvwxyz" * 3]
    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, batch)
    finally:
        os.close(fd)
    assert target.read_bytes() == b"".join(batch)
