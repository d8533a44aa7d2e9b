"""CF102 uv: `uv pip install`, `uv sync`, `uvx`, `uv python install` ... without a cache mount on uv's cache."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from cachefix.model import Edit, Finding
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, expand
from cachefix.rewriter.mounts import existing_mounts, is_within, same_path
from cachefix.rewriter.shell import Command, Word
from cachefix.rules.calls import Invocation, invocation, option_value, truthy
from cachefix.rules.user_cache import Cache, Placed, Switch, UserCacheRule
from cachefix.rules.words import set_for_command

_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")
# uv's global options that take a value, so the word after them is not the subcommand.
TAKES_VALUE = frozenset({"--cache-dir", "--directory", "--project", "--config-file", "--color", "--python", "-p",
                         "--allow-insecure-host"})
# Subcommands (with their own subcommand where they have one) that download and install into
# an environment, so they fetch through the cache and link from it.
INSTALLING = frozenset({("pip", "install"), ("pip", "sync"), ("sync", None), ("add", None), ("tool", "install"),
                        ("tool", "upgrade"), ("tool", "run")})
# Subcommands that download (metadata, distributions to build, Python archives) but link nothing.
RESOLVING = frozenset({("pip", "compile"), ("lock", None), ("python", "install"), ("python", "upgrade")})
PYTHON_INSTALL = frozenset({("python", "install"), ("python", "upgrade")})
NESTED = frozenset({"pip", "tool", "cache", "python"})
# Where an install puts its result (options, then variables): never inside the cache.
DESTINATIONS = frozenset({"--target", "--prefix", "--install-dir"})
ENVIRONMENT_VARIABLES = ("UV_PROJECT_ENVIRONMENT", "UV_TOOL_DIR", "UV_PYTHON_INSTALL_DIR")
# uv keeps the Python archives it downloads only where this points (uv 0.7+); empty: nowhere.
ARCHIVES = "UV_PYTHON_CACHE_DIR"


def uv(command: Command) -> Invocation | None:
    """`uv ...`, `uvx ...` (as `uv tool run`), `python -m uv ...`, also behind sudo."""
    if _PYTHON.fullmatch(command.name) and command.arg_values()[:2] == ["-m", "uv"] and command.args[1].value:
        command = replace(command, words=command.words[2:])
    call = invocation(command, ("uv", "uvx"), TAKES_VALUE)
    if call is not None and call.program == "uvx":
        return Invocation("uv", "tool", (Word("tool", "tool", None), Word("run", "run", None), *call.args))
    return call


def action(call: Invocation) -> tuple[str, str | None]:
    """The subcommand and, for `uv pip|tool|cache|python`, the one after it."""
    nested = None
    if call.subcommand in NESTED:
        after = call.args[[w.value for w in call.args].index(call.subcommand) + 1:]
        nested = next((w.value for w in after if w.value and not w.value.startswith("-")), None)
    return call.subcommand or "", nested


def uv_options(call: Invocation) -> Invocation:
    """The call with only the words uv itself reads: for `uv tool run TOOL ARGS` / `uvx`, those before the tool."""
    if action(call) != ("tool", "run"):
        return call
    words = list(call.args)
    start = next(i for i, w in enumerate(words) if w.value == "run") + 1
    tool = next((i for i in range(start, len(words)) if not (words[i].value or "").startswith("-")
                 and (words[i - 1].value or "") not in ("--from", "--with", "--python", "-p", "--index")), len(words))
    return replace(call, args=tuple(words[:tool]))


def installs(call: Invocation) -> bool:
    """Whether the call links packages from the cache into an environment."""
    return action(call) in INSTALLING or (action(call)[0] == "venv" and any(w.value == "--seed" for w in call.args))


class UvRule(UserCacheRule):
    """
    ## What it does
    Finds uv commands that download (`uv pip install`, `uv pip sync`, `uv sync`, `uv add`,
    `uv lock`, `uv tool install`, `uvx`, `uv venv --seed`, `uv python install`, also as
    `python -m uv`) in a RUN without a cache mount on uv's cache, and adds one.

    ## Why is this bad?
    Every rebuild of the layer downloads every wheel again. With a mount on the cache the
    wheels stay in BuildKit's cache between builds and never enter the image, so `--no-cache`
    is no longer needed to keep the image small.

    The mount goes where uv caches: `--cache-dir`, `UV_CACHE_DIR`, `$XDG_CACHE_HOME/uv`, else
    `~/.cache/uv` (`/root/.cache/uv` for root). For another user it goes outside the home
    folder (`/var/cache/uv-UID`, owned by that uid, with `UV_CACHE_DIR` set for each command):
    a mount under the home would leave root-owned folders there. A user created without `-u`
    gets the uid the base image's tools give it, where the image is known.

    `UV_NO_CACHE` set to a true value by ENV or ARG turns the cache off for every command; it
    stays in the image, and the command that gets the mount runs with `env -u UV_NO_CACHE`.

    uv links packages from its cache into the environment. A cache mount is another file
    system, so hard links and reflinks fail and uv copies, after a warning; the fix sets
    `UV_LINK_MODE=copy` on each installing command of the RUN (uv's Docker guide sets it with
    ENV; a prefix keeps the image's environment as it was). `UV_LINK_MODE=symlink` would
    leave the environment pointing into the mount, which is not in the image: reported,
    not fixed. uv's cache is safe for concurrent use (uv docs, "Cache safety"), so the mount
    is shared.

    `uv python install` keeps the Python archives it downloads only where
    `UV_PYTHON_CACHE_DIR` points (uv 0.7+); the fix sets it to `python` inside the mounted
    cache for that command, as uv's Docker guide does. The interpreters themselves
    (`UV_PYTHON_INSTALL_DIR`, `~/.local/share/uv/python`) stay in the image: an install
    directory inside the cache is reported, not fixed.

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
    only in the RUN that gains the mount. Not fixed, and reported instead: symlink link mode,
    an install whose result goes inside the cache (`--target`, `--prefix`, `--install-dir`,
    `UV_PROJECT_ENVIRONMENT`, `UV_TOOL_DIR`, `UV_PYTHON_INSTALL_DIR`), and a RUN that would
    break on the mount (`rm -rf /root/.cache` fails on the mount point). `uvx` keeps the
    tool's environment in the cache, so with the mount it is not left in the image for a
    later `uvx` at run time (which downloads it again).
    """

    code = "CF102"
    name = "uv-cache-mount"
    manager = "uv"
    summary = "uv install without a cache mount on uv's cache"
    triggers = ("uv",)
    caches = (Cache(("$UV_CACHE_DIR", "$XDG_CACHE_HOME/uv", "~/.cache/uv"), option=("--cache-dir",)),)
    switches = (Switch("UV_NO_CACHE", truthy),)
    defeating = frozenset({"--no-cache", "-n", "--no-cache-dir"})  # `--no-cache-dir`: uv's alias for pip users

    def calls(self, run: RunContext) -> list[tuple[Command, Invocation]]:
        return [(c, uv_options(call)) for c in run.commands
                if (call := uv(c)) and (installs(call) or action(call) in RESOLVING)]

    def is_clean_up(self, command: Command) -> bool:
        call = uv(command)
        return call is not None and action(call) in (("cache", "clean"), ("cache", "prune"), ("clean", None))

    def refusal(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                placed: Sequence[Placed]) -> Finding | None:
        cache = placed[0].mount.target
        for command, call in calls:
            env = self.environment(run, command)
            if installs(call) and (option_value(call.args, {"--link-mode"}) or env.get("UV_LINK_MODE")) == "symlink":
                return self.at(run, command, "uv links packages as symlinks into its cache (link mode symlink): with "
                                             "a cache mount the environment would point into the mount, which is "
                                             "not in the image; use UV_LINK_MODE=copy")
            places = [option_value(call.args, {name}) for name in DESTINATIONS]
            places += [env.get(name) for name in ENVIRONMENT_VARIABLES]
            if call.subcommand == "venv":
                places += [w.value for w in call.args[1:] if w.value and not w.value.startswith("-")][:1]
            inside = next((p for p in places if p and p.startswith("/") and is_within(p, cache)), None)
            if inside is not None:
                return self.at(run, command, f"uv puts what it installs in {inside}, inside its cache {cache}: a "
                                             "cache mount there would keep it out of the image; install elsewhere")
        return None

    def extra_edits(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                    placed: Sequence[Placed]) -> Iterable[Edit]:
        """`UV_LINK_MODE=copy` before each installing command that sets no link mode (the mount is
        another file system: uv would try links, fail and warn), and the archive folder for
        `uv python install`."""
        yield from self._archives(run, calls, placed[0].mount.target)
        for command, call in calls:
            start = command.words[0].span if command.words else None
            if run.shell_form and start and installs(call) and not (
                    option_value(call.args, {"--link-mode"}) or self.environment(run, command).get("UV_LINK_MODE")):
                yield edits.insert(start[0], "UV_LINK_MODE=copy ")

    def _archives(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]], cache: str) -> Iterator[Edit]:
        """`UV_PYTHON_CACHE_DIR=<cache>/python` for each `uv python install` that keeps its archives nowhere."""
        for command, call in calls:
            if action(call) in PYTHON_INSTALL and not self.environment(run, command).get(ARCHIVES) and (
                    edit := set_for_command(command, run.shell_form, {ARCHIVES: cache.rstrip("/") + "/python"})):
                yield edit

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        """Also a `uv python install` under a right mount whose archives are not kept in it."""
        found = list(super().check(run, state))
        if found:
            return found
        calls = [(c, call) for c, call in self.calls(run) if action(call) in PYTHON_INSTALL]
        mounted = [expand(m.target, run.env) for m in existing_mounts(run.instruction) if m.is_cache]
        for command, call in calls[:1]:
            cache, _ = self.caches[0].resolve(call, self.environment(run, command), run.home)
            fix = list(self._archives(run, calls, cache or ""))
            if cache and fix and any(same_path(cache, m) for m in mounted):
                return [self.at(run, command, f"uv python install keeps no Python archive in its cache mount "
                                              f"{cache}: set {ARCHIVES}={cache.rstrip('/')}/python for it", fix)]
        return []
