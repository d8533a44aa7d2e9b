"""CF102 uv: `uv pip install`, `uv sync`, `uvx` ... without a cache mount on uv's cache."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace

from cachefix.model import Edit, Finding
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import is_within
from cachefix.rewriter.shell import Command, Word
from cachefix.rules.base import (
    Invocation,
    Rule,
    UserCache,
    command_span,
    delete_assignment,
    invocation,
    option_value,
    previous_words,
    programs_resolved,
    remove_words,
    truthy,
)

_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")
# uv's global options that take a value, so the word after them is not the subcommand.
TAKES_VALUE = frozenset({"--cache-dir", "--directory", "--project", "--config-file", "--color", "--python", "-p",
                         "--allow-insecure-host"})
# Subcommands (with their own subcommand where they have one) that download and install into
# an environment, so they fetch through the cache and link from it.
INSTALLING = frozenset({("pip", "install"), ("pip", "sync"), ("sync", None), ("add", None), ("tool", "install"),
                        ("tool", "upgrade"), ("tool", "run")})
# Subcommands that download (metadata, sometimes whole distributions to build) but link nothing.
RESOLVING = frozenset({("pip", "compile"), ("lock", None)})
NESTED = frozenset({"pip", "tool", "cache"})
NO_CACHE = frozenset({"--no-cache", "-n", "--no-cache-dir"})  # `--no-cache-dir` is uv's alias for pip users
# Options naming where an install puts its result.
DESTINATIONS = frozenset({"--target", "--prefix"})
ENVIRONMENT_VARIABLES = ("UV_PROJECT_ENVIRONMENT", "UV_TOOL_DIR")


def uv(command: Command) -> Invocation | None:
    """`uv ...`, `uvx ...` (as `uv tool run`), `python -m uv ...`, also behind sudo."""
    if _PYTHON.fullmatch(command.name) and command.arg_values()[:2] == ["-m", "uv"] and command.args[1].value:
        command = replace(command, words=command.words[2:])
    call = invocation(command, ("uv", "uvx"), TAKES_VALUE)
    if call is not None and call.program == "uvx":
        return Invocation("uv", "tool", (Word("tool", "tool", None), Word("run", "run", None), *call.args))
    return call


def action(call: Invocation) -> tuple[str, str | None]:
    """The subcommand and, for `uv pip|tool|cache`, the one after it."""
    nested = None
    if call.subcommand in NESTED:
        after = call.args[[w.value for w in call.args].index(call.subcommand) + 1:]
        nested = next((w.value for w in after if w.value and not w.value.startswith("-")), None)
    return call.subcommand or "", nested


def uv_options(call: Invocation) -> tuple[Word, ...]:
    """The words uv itself reads: for `uv tool run TOOL ARGS` / `uvx`, those before the tool."""
    if action(call) != ("tool", "run"):
        return call.args
    words = list(call.args)
    start = next(i for i, w in enumerate(words) if w.value == "run") + 1
    tool = next((i for i in range(start, len(words)) if not (words[i].value or "").startswith("-")
                 and (words[i - 1].value or "") not in ("--from", "--with", "--python", "-p", "--index")), len(words))
    return tuple(words[:tool])


def downloads(call: Invocation) -> str | None:
    """"install" for commands that install, "resolve" for those that only download, else None."""
    step = action(call)
    if step in INSTALLING or (step[0] == "venv" and any(w.value == "--seed" for w in call.args)):
        return "install"
    return "resolve" if step in RESOLVING else None


def cache_dir(env: dict[str, str], home: str | None, options: tuple[Word, ...]) -> str | None:
    """`--cache-dir`, `UV_CACHE_DIR`, `$XDG_CACHE_HOME/uv`, `~/.cache/uv` (uv's storage reference)."""
    if any((w.value or "").split("=", 1)[0] == "--cache-dir" for w in options):
        return option_value(options, {"--cache-dir"})
    if env.get("UV_CACHE_DIR"):
        return env["UV_CACHE_DIR"]
    if env.get("XDG_CACHE_HOME"):
        return env["XDG_CACHE_HOME"].rstrip("/") + "/uv"
    return None if home is None else home.rstrip("/") + "/.cache/uv"


def link_mode(env: dict[str, str], options: tuple[Word, ...]) -> str | None:
    return option_value(options, {"--link-mode"}) or env.get("UV_LINK_MODE")


def uv_calls(run: RunContext) -> list[tuple[Command, Invocation, str]]:
    """The RUN's uv commands that download, with their invocation and what they do."""
    return [(c, a, kind) for c, r in programs_resolved(run) if (a := uv(r)) is not None and (kind := downloads(a))]


def cache_switched_off(run: RunContext) -> bool:
    """A truthy ENV or ARG UV_NO_CACHE turns the cache off for the RUN's uv, which does not set it itself."""
    calls = uv_calls(run)
    return bool(calls) and truthy(run.env.get("UV_NO_CACHE")) and not any(
        a.name == "UV_NO_CACHE" for a in calls[0][0].assignments)


def cleans_cache(command: Command) -> bool:
    """`uv cache clean`, `uv cache prune` and the old `uv clean` empty the cache."""
    call = uv(command)
    return call is not None and action(call) in (("cache", "clean"), ("cache", "prune"), ("clean", None))


class UvRule(Rule):
    """
    ## What it does
    Finds uv commands that download packages (`uv pip install`, `uv pip sync`, `uv sync`,
    `uv add`, `uv lock`, `uv tool install`, `uvx`, `uv venv --seed`, also as `python -m uv`)
    in a RUN without a cache mount on uv's cache, and adds one.

    ## Why is this bad?
    Every rebuild of the layer downloads every wheel again. With a mount on the cache the
    wheels stay in BuildKit's cache between builds and never enter the image, so `--no-cache`
    is no longer needed to keep the image small.

    The mount goes where uv caches: `--cache-dir`, `UV_CACHE_DIR`, `$XDG_CACHE_HOME/uv`, else
    `~/.cache/uv` (`/root/.cache/uv` for root). For another user it goes outside the home
    folder (`/var/cache/uv-UID`, owned by that uid, with `UV_CACHE_DIR` set for each command):
    a mount under the home would leave root-owned folders there.

    uv links packages from its cache into the environment. A cache mount is another file
    system, so hard links and reflinks fail and uv copies, after a warning; the fix sets
    `UV_LINK_MODE=copy` on each installing command of the RUN (uv's Docker guide sets it with
    ENV; a prefix keeps the image's environment as it was). `UV_LINK_MODE=symlink` would
    leave the environment pointing into the mount, which is not in the image: reported,
    not fixed. uv's cache is safe for concurrent use (uv docs, "Cache safety"), so the mount
    is shared.

    ## Example
    ```dockerfile
    RUN uv pip install --system --no-cache -r requirements.txt
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/root/.cache/uv UV_LINK_MODE=copy uv pip install --system -r requirements.txt
    ```

    ## Fix safety
    Safe: only where bytes come from changes. `--no-cache` (`-n`, `--no-cache-dir`), a
    `UV_NO_CACHE=` prefix, `uv cache clean|prune` and `rm` of the cache folder are removed
    only in the RUN that gains the mount. Not fixed, and reported instead: `ENV UV_NO_CACHE`,
    symlink link mode, a user whose uid the file does not show, an install whose result goes
    inside the cache (`--target`, `--prefix`, `UV_PROJECT_ENVIRONMENT`, `UV_TOOL_DIR`), and a
    RUN that would break on the mount (`rm -rf /root/.cache` fails on the mount point).
    `uvx` keeps the tool's environment in the cache, so with the mount it is not left in the
    image for a later `uvx` at run time (which downloads it again).
    """

    code = "CF102"
    name = "uv-cache-mount"
    manager = "uv"
    summary = "uv install without a cache mount on uv's cache"
    triggers = ("uv",)

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        calls = uv_calls(run)
        if not calls:
            return
        first, first_call, _ = calls[0]
        span = command_span(run, first)
        env = command_env(run, first)
        if cache_switched_off(run):
            found = self.switch_finding(dockerfile, run, first, "UV_NO_CACHE", cache_switched_off,
                                        "UV_NO_CACHE turns uv's cache off for every command")
            if found is not None:
                yield found
            return
        symlinked = next((c for c, a, kind in calls if kind == "install"
                          and link_mode(command_env(run, c), uv_options(a)) == "symlink"), None)
        if symlinked is not None:
            yield self.finding(dockerfile, command_span(run, symlinked),
                               "uv links packages as symlinks into its cache (link mode symlink): with a cache mount "
                               "the environment would point into the mount, which is not in the image; use "
                               "UV_LINK_MODE=copy")
            return
        default = None if run.home is None else run.home.rstrip("/") + "/.cache/uv"
        placed = self.user_cache(run, dockerfile, first, cache_dir(env, run.home, uv_options(first_call)), default,
                                 "UV_CACHE_DIR")
        inside = self._result_inside(run, calls, placed.target) if isinstance(placed, UserCache) else None
        if inside is not None:
            yield self.finding(dockerfile, span, f"uv puts what it installs in {inside}, inside its cache "
                                                 f"{placed.target}: a cache mount there would keep it out of the "
                                                 "image; install elsewhere")
            return
        copy = list(self._copy_link_mode(run, calls))
        yield from self.user_cache_fix(run, dockerfile, [c for c, _, _ in calls], placed, cleans_cache,
                                       stale_in_home=".cache/uv", extra=[*self._cache_defeaters(calls), *copy],
                                       note=" (UV_LINK_MODE=copy: the cache is another file system)" if copy else "")

    @staticmethod
    def _result_inside(run: RunContext, calls: list[tuple[Command, Invocation, str]], cache: str) -> str | None:
        """Where an install would put its result inside the cache, if anywhere."""
        for command, call, _ in calls:
            env = command_env(run, command)
            places = [option_value(call.args, {name}) for name in DESTINATIONS]
            places += [env.get(name) for name in ENVIRONMENT_VARIABLES]
            if call.subcommand == "venv":
                places += [w.value for w in call.args[1:] if w.value and not w.value.startswith("-")][:1]
            for place in places:
                if place and place.startswith("/") and is_within(place, cache):
                    return place
        return None

    @staticmethod
    def _cache_defeaters(calls: list[tuple[Command, Invocation, str]]) -> Iterator[Edit]:
        """`--no-cache` (and its aliases) and a true `UV_NO_CACHE=` prefix go once the RUN has a mount."""
        for command, call, _ in calls:
            yield from remove_words((w for w in uv_options(call) if w.value in NO_CACHE), previous_words(command))
            for assignment in command.assignments:
                if assignment.name == "UV_NO_CACHE" and truthy(assignment.value) and (
                        edit := delete_assignment(command, assignment)):
                    yield edit

    @staticmethod
    def _copy_link_mode(run: RunContext, calls: list[tuple[Command, Invocation, str]]) -> Iterator[Edit]:
        """`UV_LINK_MODE=copy ` before each installing command that sets no link mode: the
        cache mount is another file system, so uv would try links, fail and warn."""
        if not run.shell_form:
            return
        for command, call, kind in calls:
            start = command.words[0].span if command.words else None
            if kind == "install" and start and link_mode(command_env(run, command), uv_options(call)) is None:
                yield edits.insert(start[0], "UV_LINK_MODE=copy ")
