"""CF101 pip: `pip install` without a cache mount where pip really caches."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from cachefix.model import Edit, Finding
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import is_within
from cachefix.rewriter.shell import Command, Word, iter_options
from cachefix.rules.base import Rule, command_span, delete_assignment, previous_words, remove_words

_PIP = re.compile(r"pip(\d+(\.\d+)*)?")
_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")
DOWNLOADING = frozenset({"install", "download", "wheel"})
# Options that name where pip puts what it installs or downloads.
DESTINATIONS = frozenset({"--target", "-t", "--prefix", "--root", "--dest", "-d", "--wheel-dir", "-w"})
# Where pip caches for a user that is not root: outside the home folder, so the mount point
# left behind in the image does not make `~/.cache` root-owned (buildkit#3153).
NON_ROOT_CACHE = "/var/cache/pip-{uid}"


def pip_arguments(command: Command) -> tuple[Word, ...] | None:
    """The words after `pip` for `pip`, `pip3.11`, `python3 -m pip`; None when not pip."""
    if _PIP.fullmatch(command.name):
        return command.args
    if _PYTHON.fullmatch(command.name):
        values = [w.value for w in command.args]
        for i, value in enumerate(values):
            if value == "-m" and i + 1 < len(values) and values[i + 1] == "pip":
                return command.args[i + 2:]
            if value is None or not value.startswith("-"):
                return None
    return None


def subcommand(arguments: tuple[Word, ...]) -> str | None:
    return next((w.value for w in arguments if w.value and not w.value.startswith("-")), None)


def cache_dir(env: dict[str, str], home: str | None, arguments: tuple[Word, ...]) -> str | None:
    """Where this pip caches: `--cache-dir`, `PIP_CACHE_DIR`, `$XDG_CACHE_HOME/pip`, `~/.cache/pip`."""
    words = list(arguments)
    for i, option, inline in iter_options(words):
        if option == "--cache-dir":
            return inline if inline is not None else (words[i + 1].value if i + 1 < len(words) else None)
    if env.get("PIP_CACHE_DIR"):
        return env["PIP_CACHE_DIR"]
    return shared_cache_dir(env, home)


def shared_cache_dir(env: dict[str, str], home: str | None) -> str | None:
    """pip's place in the user's general cache folder (`$XDG_CACHE_HOME/pip`, `~/.cache/pip`).

    A mount there would leave that folder root-owned for every other tool of a non-root user,
    so for such a user it is moved out; a PIP_CACHE_DIR or --cache-dir chosen for pip is kept.
    """
    if env.get("XDG_CACHE_HOME"):
        return env["XDG_CACHE_HOME"].rstrip("/") + "/pip"
    return None if home is None else home.rstrip("/") + "/.cache/pip"


def is_cache_purge(command: Command) -> bool:
    """`pip cache purge` (also `python -m pip cache purge`) empties the cache."""
    arguments = pip_arguments(command)
    return arguments is not None and [w.value for w in arguments[:2]] == ["cache", "purge"]


def destinations(arguments: tuple[Word, ...]) -> Iterator[str]:
    words = list(arguments)
    for i, option, inline in iter_options(words):
        if option in DESTINATIONS:
            value = inline if inline is not None else (words[i + 1].value if i + 1 < len(words) else None)
            if value:
                yield value


def installs(run: RunContext) -> list[tuple[Command, tuple[Word, ...]]]:
    """The RUN's pip commands that download, with their pip arguments."""
    return [(c, a) for c in run.commands if (a := pip_arguments(c)) is not None and subcommand(a) in DOWNLOADING]


def cache_switched_off(run: RunContext) -> bool:
    """An ENV or ARG PIP_NO_CACHE_DIR (any value) turns the cache off for the RUN's pip, which does
    not set it itself."""
    pips = installs(run)
    return bool(pips) and "PIP_NO_CACHE_DIR" in run.env and not any(
        a.name == "PIP_NO_CACHE_DIR" for a in pips[0][0].assignments)


class PipRule(Rule):
    """
    ## What it does
    Finds `pip install` (also `pip3`, `pip3.12`, `python -m pip`, `pip download`, `pip wheel`)
    in a RUN that has no cache mount on pip's cache folder, and adds one.

    ## Why is this bad?
    Without a cache mount every rebuild of the layer downloads every wheel again. With one,
    the wheels stay in BuildKit's cache between builds and never enter the image, so
    `--no-cache-dir` is no longer needed to keep the image small.

    The mount goes where pip really caches for the user running it: `/root/.cache/pip` for
    root, or `PIP_CACHE_DIR` / `XDG_CACHE_HOME` when the file sets them. For another user it
    goes outside the home folder (`/var/cache/pip-UID`, owned by that uid, with
    `PIP_CACHE_DIR` set for that command only): a mount under `/home/app/.cache` would leave
    `/home/app/.cache` owned by root in the image, and the app could no longer write its own
    cache at run time. `PIP_NO_CACHE_DIR` disables the cache whatever its value, even `0`.

    ## Example
    ```dockerfile
    RUN pip install --no-cache-dir -r requirements.txt
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt
    ```

    ## Fix safety
    Safe: only where bytes come from changes. `--no-cache-dir` and a `PIP_NO_CACHE_DIR=`
    prefix are removed only in the RUN that gains the mount. Not fixed, and reported instead:
    a user whose uid the file does not show, `ENV PIP_NO_CACHE_DIR` (reported on the ENV line,
    with the RUNs it affects as related locations), and an install whose
    `--target`/`--prefix`/`-d` points into the cache (the result would be lost with the mount).
    """

    code = "CF101"
    name = "pip-cache-mount"
    manager = "pip"
    summary = "pip install without a cache mount on pip's cache"
    triggers = ("pip",)

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        pips = installs(run)
        if not pips:
            return
        first = pips[0][0]
        env = command_env(run, first)
        if cache_switched_off(run):
            found = self.switch_finding(dockerfile, run, first, "PIP_NO_CACHE_DIR", cache_switched_off,
                                        "PIP_NO_CACHE_DIR disables pip's cache whatever its value (even 0 or false)")
            if found is not None:
                yield found
            return
        placed = self.user_cache(run, dockerfile, first, cache_dir(env, run.home, pips[0][1]),
                                 shared_cache_dir(env, run.home), "PIP_CACHE_DIR")
        if isinstance(placed, Finding):
            yield placed
            return
        if placed is None:
            return
        target = placed.target
        for command, arguments in pips:
            for destination in destinations(arguments):
                if is_within(destination, target):
                    yield self.finding(dockerfile, command_span(run, command),
                                       f"pip writes its result to {destination}, inside its cache {target}: a cache "
                                       "mount there would keep the result out of the image; install elsewhere")
                    return
        yield from self.user_cache_fix(run, dockerfile, [c for c, _ in pips], placed, is_cache_purge,
                                       stale_in_home=".cache/pip", extra=list(self._cache_defeaters(pips)))

    @staticmethod
    def _cache_defeaters(pips: list[tuple[Command, tuple[Word, ...]]]) -> Iterator[Edit]:
        """`--no-cache-dir` and `PIP_NO_CACHE_DIR=...` go once the RUN has a mount."""
        for command, arguments in pips:
            yield from remove_words((w for w in arguments if w.value == "--no-cache-dir"), previous_words(command))
            for assignment in command.assignments:
                if assignment.name == "PIP_NO_CACHE_DIR" and (edit := delete_assignment(command, assignment)):
                    yield edit

