"""CF102 uv: `uv pip install`, `uv sync`, `uvx`, `uv python install` ... without a cache mount on uv's cache."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import ClassVar

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation, invocation, option_value, truthy
from cachefix.rules.user_cache import Cache, Placed, Switch, UserCacheRule

# Phrases that download and link packages from the cache into an environment.
INSTALLING = ("pip install", "pip sync", "sync", "add", "tool install", "tool upgrade", "tool run")
COPY = {"UV_LINK_MODE": "copy"}  # the cache mount is another file system: link by copying, without a warning


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
    programs = frozenset({"uv", "uvx"})
    takes_value = frozenset({"--cache-dir", "--directory", "--project", "--config-file", "--color", "--python", "-p",
                             "--allow-insecure-host", "--from", "--with", "--index"})
    downloading = frozenset({*INSTALLING, "pip compile", "lock", "python install", "python upgrade", "venv"})
    caches = (Cache(("$UV_CACHE_DIR", "$XDG_CACHE_HOME/uv", "~/.cache/uv"), option=("--cache-dir",)),)
    switches = (Switch("UV_NO_CACHE", truthy),)
    defeating = frozenset({"--no-cache", "-n", "--no-cache-dir"})  # `--no-cache-dir`: uv's alias for pip users
    clean_ups = ("cache clean", "cache prune", "clean")
    destinations = frozenset({"--target", "--prefix", "--install-dir"})
    # uv keeps the Python archives it downloads only where UV_PYTHON_CACHE_DIR points (uv 0.7+).
    sets: ClassVar[Mapping[str, Mapping[str, str]]] = {**{phrase: COPY for phrase in INSTALLING},
            "python install": {"UV_PYTHON_CACHE_DIR": "{cache}/python"},
            "python upgrade": {"UV_PYTHON_CACHE_DIR": "{cache}/python"}}

    def call(self, command: Command) -> Invocation | None:
        """`uvx TOOL ARGS` is `uv tool run TOOL ARGS`; the words after the tool are the tool's, not uv's."""
        call = invocation(command, self.programs, self.takes_value)
        if call is None or not (call.program == "uvx" or call.runs("tool run")):
            return call
        before = 0 if call.program == "uvx" else 2  # operands before the tool's name
        seen, cut, skip = 0, len(call.args), False
        for i, word in enumerate(call.args):
            if skip or word.value is None or word.value.startswith("-"):
                skip = not skip and word.value in self.takes_value
                continue
            if seen == before:
                cut = i + 1
                break
            seen += 1
        return replace(call, program="uv", subcommand="tool", args=call.args[:cut],
                       operands=("tool", "run", *call.operands[before:before + 1]))

    def calls(self, run: RunContext) -> list[tuple[Command, Invocation]]:
        """`uv venv` downloads only with `--seed`."""
        return [(c, call) for c, call in super().calls(run)
                if not call.runs("venv") or any(w.value == "--seed" for w in call.args)]

    def variables(self, run: RunContext, command: Command, call: Invocation, cache: str) -> dict[str, str]:
        wanted = super().variables(run, command, call, cache)
        if any(w.value == "--seed" for w in call.args) and call.runs("venv") and "UV_LINK_MODE" not in \
                self.environment(run, command):
            wanted.update(COPY)
        if option_value(call.args, {"--link-mode"}):
            wanted.pop("UV_LINK_MODE", None)
        return wanted

    def results(self, run: RunContext, command: Command, call: Invocation) -> list[str]:
        """Also the environments uv installs into, and `uv venv DIR`."""
        env = self.environment(run, command)
        places = ("UV_PROJECT_ENVIRONMENT", "UV_TOOL_DIR", "UV_PYTHON_INSTALL_DIR")
        found = [*super().results(run, command, call), *(env.get(name, "") for name in places)]
        return [*found, *call.operands[1:2]] if call.runs("venv") else found

    def refusal(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                placed: Sequence[Placed]) -> Finding | None:
        for command, call in calls:
            mode = option_value(call.args, {"--link-mode"}) or self.environment(run, command).get("UV_LINK_MODE")
            if mode == "symlink" and call.runs(*INSTALLING, "venv"):
                return self.at(run, command, "uv links packages as symlinks into its cache (link mode symlink): with "
                                             "a cache mount the environment would point into the mount, which is "
                                             "not in the image; use UV_LINK_MODE=copy")
        return super().refusal(run, calls, placed)
