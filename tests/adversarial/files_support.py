"""What the lint file-handling tests share: running cachefix as a user types it, and an uncached Dockerfile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

UNCACHED = "FROM python:3.12-slim\nRUN pip install flask\n"
FIXED_LINE = "RUN --mount=type=cache,target=/root/.cache/pip pip install flask"


def cachefix(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`cachefix ARGS` in `cwd`; the timeout only stops a hang from hanging the test run."""
    return subprocess.run([sys.executable, "-m", "cachefix", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "NO_COLOR": "1"})


def one_line(text: str) -> str:
    """The single line of `text`, failing the test if there are more (errors are one line)."""
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]
