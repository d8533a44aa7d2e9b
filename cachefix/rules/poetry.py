"""CF103 poetry: `poetry install` without a cache mount, and the virtualenv that lives in the cache."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from cachefix.model import Edit, Finding
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.base import (
    Invocation,
    Rule,
    UserCache,
    command_span,
    invocation,
    previous_words,
    programs_resolved,
    remove_words,
)

# Global options that take a value, so the word after them is not the subcommand.
TAKES_VALUE = frozenset({"-C", "--directory", "-P", "--project"})
# Commands that run in the project's environment, which poetry creates first if it must.
INSTALLING = frozenset({"install", "sync", "add", "update", "lock", "remove"})
# `poetry config` settings this rule follows: (setting, environment variable).
SETTINGS = {"cache-dir": "POETRY_CACHE_DIR", "virtualenvs.create": "POETRY_VIRTUALENVS_CREATE",
            "virtualenvs.in-project": "POETRY_VIRTUALENVS_IN_PROJECT", "virtualenvs.path": "POETRY_VIRTUALENVS_PATH"}
CONFIG_FACT = "poetry-config {scope} {key}={value}"


def poetry(command: Command) -> Invocation | None:
    return invocation(command, ("poetry",), TAKES_VALUE)


def operands(call: Invocation) -> list[str]:
    return [w.value for w in call.args if w.value is not None and not w.value.startswith("-")]


def is_on(value: str) -> bool:
    """poetry's boolean settings: "true" and "1" (older releases compare case-sensitively)."""
    return value in ("true", "1")


class PoetryConfig:
    """poetry's configuration for one command: POETRY_* variables win over `poetry config`."""

    def __init__(self, env: Mapping[str, str], config: Mapping[str, str], home: str | None) -> None:
        self.env, self.config, self.home = env, config, home

    def get(self, key: str) -> str | None:
        value = self.env.get(SETTINGS[key])
        return value if value is not None else self.config.get(key)

    def cache_dir(self) -> str | None:
        """`cache-dir`, else platformdirs' user cache: `$XDG_CACHE_HOME/pypoetry`, `~/.cache/pypoetry`."""
        if self.get("cache-dir"):
            return self.get("cache-dir")
        if self.env.get("XDG_CACHE_HOME"):
            return self.env["XDG_CACHE_HOME"].rstrip("/") + "/pypoetry"
        return None if self.home is None else self.home.rstrip("/") + "/.cache/pypoetry"

    def venv_outside(self, cache: str) -> bool:
        """Whether the environment poetry installs into is outside `cache` (EnvManager.get/create_venv)."""
        create = self.get("virtualenvs.create")
        if create is not None and create.lower() not in ("true", "1"):
            return True  # no virtualenv: poetry installs into the Python it runs with
        in_project = self.get("virtualenvs.in-project")
        if in_project is not None and is_on(in_project):
            return True
        active = self.env.get("VIRTUAL_ENV") or (
            self.env.get("CONDA_PREFIX") if self.env.get("CONDA_DEFAULT_ENV") != "base" else None)
        path = active or self.get("virtualenvs.path")
        if not path:
            return False  # the default, {cache-dir}/virtualenvs
        path = path.replace("{cache-dir}", cache)
        if self.home and (path == "~" or path.startswith("~/")):
            path = self.home.rstrip("/") + path[1:]
        return path.startswith("/") and not is_within(path, cache)


def cleans_cache(command: Command) -> bool:
    """`poetry cache clear ...` empties the cache."""
    call = poetry(command)
    return call is not None and operands(call)[:2] == ["cache", "clear"]


class PoetryRule(Rule):
    """
    ## What it does
    Finds `poetry install` (also `sync`, `add`, `update`, `lock`, `remove`) in a RUN without a
    cache mount on poetry's cache, and adds one, but only where the project's virtualenv is
    not in that cache.

    ## Why is this bad?
    Every rebuild of the layer downloads every distribution again. With a cache mount they
    stay in BuildKit's cache between builds and never enter the image.

    The trap: poetry creates the project's virtualenv in `{cache-dir}/virtualenvs` unless
    told otherwise. A cache mount there would hold the virtualenv, and the installed packages
    would not be in the image. So the mount is added only when the environment is elsewhere:
    `POETRY_VIRTUALENVS_IN_PROJECT=true` (a `.venv` in the project),
    `POETRY_VIRTUALENVS_CREATE=false` (the image's Python), `POETRY_VIRTUALENVS_PATH` outside
    the cache, the same set with `poetry config` earlier in the stage or the RUN, or an active
    virtualenv (`VIRTUAL_ENV`). Otherwise the finding says what to set.

    The cache is `POETRY_CACHE_DIR` (or `poetry config cache-dir`), else
    `$XDG_CACHE_HOME/pypoetry`, else `~/.cache/pypoetry`. For a user other than root it goes
    outside the home folder (`/var/cache/poetry-UID`, owned by that uid, with
    `POETRY_CACHE_DIR` set for each command).

    ## Example
    ```dockerfile
    ENV POETRY_VIRTUALENVS_IN_PROJECT=1 POETRY_CACHE_DIR=/tmp/poetry_cache
    RUN poetry install --without dev --no-root && rm -rf $POETRY_CACHE_DIR
    ```

    ## Use instead
    ```dockerfile
    ENV POETRY_VIRTUALENVS_IN_PROJECT=1 POETRY_CACHE_DIR=/tmp/poetry_cache
    RUN --mount=type=cache,target=/tmp/poetry_cache poetry install --without dev --no-root
    ```

    ## Fix safety
    Safe where it applies: `--no-cache`, `poetry cache clear` and `rm` of the cache folder are
    removed only in the RUN that gains the mount. A `poetry.toml` in the project can set
    `virtualenvs.in-project` too, but the Dockerfile does not show it: such a project gets the
    finding, and `POETRY_VIRTUALENVS_IN_PROJECT=true` in ENV makes it fixable.
    """

    code = "CF103"
    name = "poetry-cache-mount"
    manager = "poetry"
    summary = "poetry install without a cache mount, or with its virtualenv in the cache"
    triggers = ("poetry",)

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        config = self._config_so_far(run)
        installs: list[tuple[Command, Invocation, PoetryConfig]] = []
        commands = programs_resolved(run)
        for command, resolved in commands:
            call = poetry(resolved)
            if call is None:
                continue
            words = operands(call)
            if words[:1] == ["config"] and len(words) == 3 and words[1] in SETTINGS:
                config[words[1]] = words[2]
                scope = "local" if any(w.value == "--local" for w in call.args) else f"home:{run.home}"
                earlier = CONFIG_FACT.format(scope=scope, key=words[1], value="")
                run.stage.facts.difference_update({f for f in run.stage.facts if f.startswith(earlier)})
                run.stage.facts.add(CONFIG_FACT.format(scope=scope, key=words[1], value=words[2]))
            elif call.subcommand in INSTALLING:
                installs.append((command, call, PoetryConfig(command_env(run, command), dict(config), run.home)))
        if installs:
            yield from self._check(run, dockerfile, installs)

    def _check(self, run: RunContext, dockerfile: Dockerfile,
               installs: list[tuple[Command, Invocation, PoetryConfig]]) -> Iterator[Finding]:
        first, _, settings = installs[0]
        default = None if run.home is None else run.home.rstrip("/") + "/.cache/pypoetry"
        configured = settings.cache_dir()
        placed = self.user_cache(run, dockerfile, first, configured, default, "POETRY_CACHE_DIR")
        trapped = None if not isinstance(placed, UserCache) else next(
            (c for c, _, s in installs if not s.venv_outside(placed.target)), None)
        if trapped is not None:
            where = configured or default or "~/.cache/pypoetry"
            yield self.finding(dockerfile, command_span(run, trapped),
                               f"poetry creates the project's virtualenv in {where}/virtualenvs, inside its "
                               "cache, so a cache mount there would leave the installed "
                               "packages out of the image: set POETRY_VIRTUALENVS_IN_PROJECT=true, "
                               "POETRY_VIRTUALENVS_CREATE=false or POETRY_VIRTUALENVS_PATH outside the cache (ENV, "
                               "or `poetry config` before the install), then run cachefix again")
            return
        yield from self.user_cache_fix(run, dockerfile, [c for c, _, _ in installs], placed, cleans_cache,
                                       stale_in_home=".cache/pypoetry", extra=list(self._no_cache(installs)))

    @staticmethod
    def _config_so_far(run: RunContext) -> dict[str, str]:
        """`poetry config` settings earlier RUNs of the stage made for this user, or for the project."""
        config: dict[str, str] = {}
        for scope in (f"home:{run.home}", "local"):  # the project's poetry.toml wins
            prefix = f"poetry-config {scope} "
            for fact in (f for f in run.stage.facts if f.startswith(prefix)):
                key, _, value = fact[len(prefix):].partition("=")
                config[key] = value
        return config

    @staticmethod
    def _no_cache(installs: list[tuple[Command, Invocation, PoetryConfig]]) -> Iterator[Edit]:
        """`--no-cache` (poetry's global option) goes once the RUN has a mount."""
        for command, call, _ in installs:
            yield from remove_words((w for w in call.args if w.value == "--no-cache"), previous_words(command))
