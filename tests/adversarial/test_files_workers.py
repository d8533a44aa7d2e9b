"""`kill -9` of a multi-process `fix` takes its workers with it (issue 8.8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.adversarial.files_support import FIXED_LINE, UNCACHED
from tests.helpers import write

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc"),
    pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
                       reason="on one CPU cachefix lints in one process"),
]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # state, ppid, ...


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) and fields[1] == str(parent):
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie no one reaps does nothing


def _wait_until(condition, limit: float) -> bool:
    """Poll `condition` until it holds or `limit` seconds pass (a guard against hanging, not a timing)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_kill_9_of_fix_kills_its_workers_and_nothing_is_written_after(tmp_path: Path) -> None:
    files = [write(tmp_path / f"svc{index:04}" / "Dockerfile", UNCACHED) for index in range(1500)]
    run = subprocess.Popen([sys.executable, "-m", "cachefix", "fix", "-q", "."], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        assert _wait_until(lambda: FIXED_LINE in files[0].read_text(), 120), "the run never fixed a file"
        workers = _children(run.pid)
        assert workers, "no worker processes"
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        assert _wait_until(lambda: not any(_alive(pid) for pid in workers), 60), "workers outlived the run"
        after = [f.read_text() for f in files]
        assert all(text == UNCACHED or FIXED_LINE in text for text in after)  # nothing half-written
        assert UNCACHED in after  # the run was cut short: the workers did not go on alone
    finally:
        for pid in [run.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
