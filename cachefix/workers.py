"""Worker processes that die with the run that started them.

A `kill -9` of `cachefix fix` must stop its workers too: left alone they would go on rewriting
files the user no longer wants touched, then block forever on a result queue nobody reads.
On Linux the kernel kills them (PR_SET_PDEATHSIG); everywhere, a worker checks that its parent
is still there right before each rename.
"""

from __future__ import annotations

import os
import sys

_PR_SET_PDEATHSIG = 1
_parent: int | None = None  # set in a worker: the pid of the run it works for


class Orphaned(BaseException):
    """The run this worker works for is gone: stop without writing (not an Exception: nothing may catch it)."""


def bind_to_parent(parent: int) -> None:
    """Initialise a worker: die with `parent`, and remember it for `orphaned()`."""
    global _parent
    _parent = parent
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if orphaned():  # the parent died before the prctl: the kernel will not tell us
        os._exit(1)


def orphaned() -> bool:
    """Whether this is a worker whose parent is gone."""
    return _parent is not None and os.getppid() != _parent
