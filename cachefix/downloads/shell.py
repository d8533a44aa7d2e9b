"""`cachefix shell-init`: the drop-in for the old `scripts/lib/download-cache.sh`.

The functions live in `download-cache.sh` beside this module (a real shell file, readable
and lintable); this fills in the interpreter that runs cachefix, so the functions keep
working in a shell whose PATH lacks the virtualenv, and the default cache folder, so that
shell scripts and `cachefix fetch` share one cache.
"""

from __future__ import annotations

import os
import shlex
import sys
from importlib.resources import files
from pathlib import Path

from cachefix.downloads.store import default_root

SHELLS = ("bash", "zsh")


def init_script(shell: str | None = None) -> str:
    """The text to `eval`; `shell` defaults to the one in $SHELL, else bash."""
    shell = shell or Path(os.environ.get("SHELL", "")).name
    if shell not in SHELLS:
        shell = "bash"
    template = files("cachefix.downloads").joinpath("download-cache.sh").read_text()
    return (template.replace("@SHELL@", shell)
            .replace("@DEFAULT_CACHE@", _double_quoted(str(default_root())))
            .replace("@CACHEFIX@", f"{shlex.quote(sys.executable)} -m cachefix"))


def _double_quoted(text: str) -> str:
    """`text` escaped for use inside "..." in a POSIX shell."""
    for char in ("\\", '"', "$", "`"):
        text = text.replace(char, "\\" + char)
    return text
