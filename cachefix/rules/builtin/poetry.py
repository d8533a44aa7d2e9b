"""CF103 poetry: `poetry install` without a cache mount, and the virtualenv that lives in the cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, in_home
from cachefix.rewriter.mounts import is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation, invocation
from cachefix.rules.user_cache import Cache, Placed, UserCacheRule

# Global options that take a value, so the word after them is not the subcommand.
TAKES_VALUE = frozenset({"-C", "--directory", "-P", "--project"})
# `poetry config` settings this rule follows, and the variable that overrides each.
SETTINGS = {"cache-dir": "POETRY_CACHE_DIR", "virtualenvs.create": "POETRY_VIRTUALENVS_CREATE",
            "virtualenvs.in-project": "POETRY_VIRTUALENVS_IN_PROJECT", "virtualenvs.path": "POETRY_VIRTUALENVS_PATH"}

Setting = tuple[str, str, str]  # (where it is written: "local" or "home:<home>", key, value)


@dataclass(frozen=True)
class PoetryState:
    """The `poetry config` settings of the stage, in order: all so far, and those before the latest RUN."""

    settings: tuple[Setting, ...] = ()
    before: tuple[Setting, ...] = ()


def poetry(command: Command) -> Invocation | None:
    return invocation(command, ("poetry",), TAKES_VALUE)


def setting(run: RunContext, command: Command) -> Setting | None:
    """What a `poetry config KEY VALUE [--local]` writes, for a key this rule follows."""
    call = poetry(command)
    words = [] if call is None else [w.value for w in call.args if w.value is not None and not w.value.startswith("-")]
    if len(words) != 3 or words[0] != "config" or words[1] not in SETTINGS:
        return None
    local = any(w.value == "--local" for w in call.args)  # type: ignore[union-attr]
    return ("local" if local else f"home:{run.home}", words[1], words[2])


def venv_outside(env: Mapping[str, str], home: str | None, cache: str) -> bool:
    """Whether the environment poetry installs into is outside `cache` (EnvManager.get/create_venv)."""
    create = env.get("POETRY_VIRTUALENVS_CREATE")
    if create is not None and create.lower() not in ("true", "1"):
        return True  # no virtualenv: poetry installs into the Python it runs with
    if env.get("POETRY_VIRTUALENVS_IN_PROJECT") in ("true", "1"):  # older releases compare case-sensitively
        return True
    active = env.get("VIRTUAL_ENV") or (env.get("CONDA_PREFIX") if env.get("CONDA_DEFAULT_ENV") != "base" else None)
    path = (active or env.get("POETRY_VIRTUALENVS_PATH") or "").replace("{cache-dir}", cache)
    if not path:
        return False  # the default, {cache-dir}/virtualenvs
    path = in_home(path, home)
    return path.startswith("/") and not is_within(path, cache)


class PoetryRule(UserCacheRule):
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
    triggers = observes = ("poetry",)
    State = PoetryState
    programs = frozenset({"poetry"})
    downloading = frozenset({"install", "sync", "add", "update", "lock", "remove"})
    takes_value = TAKES_VALUE
    caches = (Cache(("$POETRY_CACHE_DIR", "$XDG_CACHE_HOME/pypoetry", "~/.cache/pypoetry")),)
    defeating = frozenset({"--no-cache"})
    clean_ups = ("cache clear",)

    def observe(self, run: RunContext, state: object) -> PoetryState:
        assert isinstance(state, PoetryState)
        written = tuple(s for c in run.commands if (s := setting(run, c)))
        return PoetryState(state.settings + written, state.settings)

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        """Keeps, for the hooks, what `poetry config` set before each command of the RUN (the
        project's `--local` settings over the user's), then does the usual fix."""
        assert isinstance(state, PoetryState)
        settings, self._configured = list(state.before), {}
        for command in run.commands:
            settings += [s for s in [setting(run, command)] if s]
            chosen = {key: value for scope in (f"home:{run.home}", "local") for where, key, value in settings
                      if where == scope}
            self._configured[id(command)] = {SETTINGS[key]: value for key, value in chosen.items()}
        return super().check(run, state)

    def environment(self, run: RunContext, command: Command) -> dict[str, str]:
        """POETRY_* variables win over `poetry config`."""
        return {**getattr(self, "_configured", {}).get(id(command), {}), **super().environment(run, command)}

    def refusal(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                placed: Sequence[Placed]) -> Finding | None:
        cache = placed[0].mount.target
        trapped = next((c for c, _ in calls if not venv_outside(self.environment(run, c), run.home, cache)), None)
        if trapped is None:
            return None
        return self.at(run, trapped, f"poetry creates the project's virtualenv in {cache}/virtualenvs, inside its "
                                     "cache, so a cache mount there would leave the installed packages out of the "
                                     "image: set POETRY_VIRTUALENVS_IN_PROJECT=true, POETRY_VIRTUALENVS_CREATE=false "
                                     "or POETRY_VIRTUALENVS_PATH outside the cache (ENV, or `poetry config` before "
                                     "the install), then run cachefix again")
