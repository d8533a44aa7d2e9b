"""CF402 yarn: `yarn install` without a cache mount on yarn's cache (v1), or its global folder (berry)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.shell import Command
from cachefix.rewriter.stages import earlier_instructions
from cachefix.rules.calls import Invocation, invocation, truthy
from cachefix.rules.user_cache import Cache, UserCacheRule

PROGRAMS = frozenset({"yarn", "yarnpkg"})
INSTALLING = frozenset({"install", "add", "upgrade", "up", "import", "dlx"})
INFO_FLAGS = frozenset({"--version", "-v", "-V", "--help", "-h"})
TAKES_VALUE = frozenset({"--cache-folder", "--modules-folder", "--cwd", "--network-timeout", "--mutex", "--registry",
                         "--global-folder", "--link-folder", "--use-yarnrc", "--network-concurrency",
                         "--child-concurrency"})
# Signs in the Dockerfile that yarn is berry (2+); without one, yarn is taken for v1.
BERRY_FILES = (".yarnrc.yml", ".yarn/releases", ".yarn/", ".pnp.cjs")
BERRY_FLAGS = frozenset({"--immutable", "--immutable-cache", "--check-cache"})
BERRY_ENV = ("YARN_NODE_LINKER", "YARN_ENABLE_GLOBAL_CACHE", "YARN_GLOBAL_FOLDER")
SAFE_LINKERS = frozenset({"node-modules", "pnpm"})
# berry's global folder (folderUtils.ts) holds its global cache (and, with that off, the mirror).
BERRY = (Cache(("$YARN_GLOBAL_FOLDER", "$XDG_DATA_HOME/yarn/berry", "~/.yarn/berry")),)
# v1 puts root's home in /usr/local/share (src/util/user-home-dir.js).
V1_ROOT_CACHE_HOME = "/usr/local/share/.cache"


@dataclass(frozen=True)
class YarnState:
    """What earlier RUNs of the stage (and this one) show about which yarn runs."""

    berry: bool = False  # `yarn set version`, `--immutable`, `yarn dlx`, `corepack prepare yarn@2+`
    corepack: bool = False  # `corepack enable`: package.json's packageManager (unseen) picks, berry unless...
    v1: bool = False  # ...`corepack prepare yarn@1.x`
    node_modules: bool = False  # `yarn config set nodeLinker node-modules` (or pnpm)


def installs(call: Invocation) -> bool:
    """`yarn`, `yarn install`, `add`, `global add`, `workspaces focus`: not `yarn --version`."""
    if call.subcommand is None:
        return not any(w.value in INFO_FLAGS for w in call.args)
    operands = [w.value for w in call.args if w.value and not w.value.startswith("-")]
    return call.subcommand in INSTALLING or operands[:2] in (["global", "add"], ["workspaces", "focus"])


def sign(command: Command) -> str | None:
    """The `YarnState` field a command sets: what it says about which yarn runs, or sets for berry."""
    values = [w.value or "" for w in command.args]
    if command.name == "corepack":
        named = [v for v in values if v.startswith("yarn@")]
        if named:
            return "v1" if named[0].startswith("yarn@1") else "berry"
        names = [v for v in values[1:] if not v.startswith("-")]
        return "corepack" if values[:1] == ["enable"] and (not names or "yarn" in names) else None
    call = invocation(command, PROGRAMS, TAKES_VALUE)
    if call is None:
        return None
    if values[:2] in (["set", "version"], ["policies", "set-version"]) or BERRY_FLAGS & set(values) or \
            call.subcommand in ("dlx", "up") or values[:2] == ["workspaces", "focus"]:
        return "berry"
    return "node_modules" if values[:3] == ["config", "set", "nodeLinker"] and values[3:4] and \
        values[3] in SAFE_LINKERS else None


class YarnRule(UserCacheRule):
    """
    ## What it does
    Finds `yarn` / `yarn install` / `yarn add` in a RUN without a cache mount on yarn's cache,
    and adds one.

    ## Why is this bad?
    Every rebuild of the layer downloads every package again.

    Which yarn runs is not visible from a Dockerfile (a `.yarnrc.yml` or a `packageManager`
    field decides), so yarn is taken for **v1** unless the file shows a sign of berry (2+):
    a COPY of `.yarnrc.yml`, `.yarn/` or `.pnp.cjs` (in the stage or one it is built from),
    `corepack enable` (unless it prepares a `yarn@1`), `corepack prepare yarn@2+`,
    `yarn set version`, `--immutable`, `yarn dlx`/`up`/`workspaces focus`, or a
    `YARN_NODE_LINKER`/`YARN_ENABLE_GLOBAL_CACHE`/`YARN_GLOBAL_FOLDER` setting. A v1 mount on
    a berry project only caches nothing.

    - **v1** caches in `/usr/local/share/.cache/yarn` for root (v1 puts root's home in
      `/usr/local/share`), `~/.cache/yarn` for another user; `YARN_CACHE_FOLDER`,
      `--cache-folder` and `XDG_CACHE_HOME` move it. The mount is `sharing=locked`: v1's
      cache breaks when two installs write it at once (yarn#683, #4102). A non-root user gets
      `/var/cache/yarn-UID` with `YARN_CACHE_FOLDER` set for those commands (unless the file
      chose the folder with `YARN_CACHE_FOLDER` or `--cache-folder`).
    - **berry** keeps its cache in its global folder (`~/.yarn/berry`, `YARN_GLOBAL_FOLDER`,
      `$XDG_DATA_HOME/yarn/berry`), and with Plug'n'Play (its default linker) and the global
      cache (yarn 4's default) those zip files *are* the installed packages: a mount there
      would leave `.pnp.cjs` pointing at nothing. So the global folder is mounted only when
      the install does not read packages from it: `YARN_NODE_LINKER=node-modules` (or pnpm),
      `nodeLinker` set that way with `yarn config set`, or `YARN_ENABLE_GLOBAL_CACHE=false`
      (the packages then stay in `.yarn/cache` in the image, and the global folder holds the
      mirror they are copied from). Otherwise the finding says how to make it safe. A non-root
      user gets `/var/cache/yarn-UID` with `YARN_GLOBAL_FOLDER` set for those commands.

    `yarn cache clean` and an `rm` of the cache would empty the mount; they are removed from
    the RUN that gains it, and only there.

    ## Example
    ```dockerfile
    RUN yarn install --frozen-lockfile && yarn cache clean
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/usr/local/share/.cache/yarn,sharing=locked yarn install --frozen-lockfile
    ```

    ## Fix safety
    Safe for v1 and for berry without Plug'n'Play's global cache. A berry 2 or 3 project with
    Plug'n'Play whose Dockerfile shows no sign of berry, run by a non-root user, would have
    its `YARN_CACHE_FOLDER` (its local cache, the installed packages) moved into the mount:
    copy `.yarnrc.yml` before installing so cachefix sees berry. Not fixed, and reported:
    berry with Plug'n'Play and the global cache, a user whose uid neither the file nor its
    base image shows.
    """

    code = "CF402"
    name = "yarn-cache-mount"
    manager = "yarn"
    summary = "yarn install without a cache mount on yarn's cache"
    triggers = ("yarn",)
    observes = ("yarn", "corepack")
    State = YarnState
    programs = PROGRAMS
    takes_value = TAKES_VALUE
    caches = (Cache(("$YARN_CACHE_FOLDER", "$XDG_CACHE_HOME/yarn", "~/.cache/yarn"), option=("--cache-folder",),
                    sharing="locked"),)
    clean_ups = ("cache clean",)

    def observe(self, run: RunContext, state: object) -> YarnState:
        assert isinstance(state, YarnState)
        return replace(state, **{field: True for c in run.commands if (field := sign(c))})

    def calls(self, run: RunContext) -> list[tuple[Command, Invocation]]:
        return [(c, call) for c in run.commands if (call := invocation(c, PROGRAMS, TAKES_VALUE)) and installs(call)]

    def environment(self, run: RunContext, command: Command) -> dict[str, str]:
        """For root, v1's default cache is under `/usr/local/share`, as if XDG_CACHE_HOME pointed there."""
        env = super().environment(run, command)
        if run.is_root and not env.get("XDG_CACHE_HOME"):
            env["XDG_CACHE_HOME"] = V1_ROOT_CACHE_HOME
        return env

    def caches_for(self, run: RunContext, state: object) -> tuple[Cache, ...]:
        return BERRY if self._berry(run, state, self.environment(run, self.calls(run)[0][0])) else self.caches

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        """As for every per-user cache, except berry with Plug'n'Play reading its global cache."""
        assert isinstance(state, YarnState)
        calls = self.calls(run)
        env = self.environment(run, calls[0][0]) if calls else {}
        if calls and self._berry(run, state, env) and not reads_elsewhere(env, state):
            where = BERRY[0].resolve(calls[0][1], env, run.home)[0] or "~/.yarn/berry"
            yield self.at(run, calls[0][0], "yarn berry with Plug'n'Play reads the installed packages from its global "
                                            "cache, so a cache mount there would leave them out of the image: run the "
                                            "install with YARN_ENABLE_GLOBAL_CACHE=false (packages stay in .yarn/cache)"
                                            f" and mount {where}, or use nodeLinker: node-modules")
            return
        yield from super().check(run, state)

    @staticmethod
    def _berry(run: RunContext, state: object, env: Mapping[str, str]) -> bool:
        assert isinstance(state, YarnState)
        return state.berry or (state.corepack and not state.v1) or any(k in env for k in BERRY_ENV) or any(
            i.keyword in ("COPY", "ADD") and any(m in source for source in i.value[:-1] for m in BERRY_FILES)
            for i in earlier_instructions(run))


def reads_elsewhere(env: Mapping[str, str], state: YarnState) -> bool:
    """Whether berry installs packages from somewhere other than its global cache (so a mount is safe)."""
    linker, global_cache = env.get("YARN_NODE_LINKER"), env.get("YARN_ENABLE_GLOBAL_CACHE")
    return linker in SAFE_LINKERS or (linker is None and state.node_modules) or (
        global_cache is not None and not truthy(global_cache))
