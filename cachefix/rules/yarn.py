"""CF402 yarn: `yarn install` without a cache mount on yarn's cache (v1), or its global folder (berry)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.shell import Command
from cachefix.rules.base import (
    Invocation,
    Rule,
    UserCache,
    command_span,
    invocation,
    option_value,
    truthy,
)

INSTALLING = frozenset({"install", "add", "upgrade", "up", "import", "dlx"})
INFO_FLAGS = frozenset({"--version", "-v", "-V", "--help", "-h"})
TAKES_VALUE = frozenset({"--cache-folder", "--modules-folder", "--cwd", "--network-timeout", "--mutex", "--registry",
                         "--global-folder", "--link-folder", "--use-yarnrc", "--network-concurrency",
                         "--child-concurrency"})
# Signs in the Dockerfile that yarn is berry (2+); without one, yarn is taken for v1.
BERRY_FILES = (".yarnrc.yml", ".yarn/releases", ".yarn/", ".pnp.cjs")
BERRY_FLAGS = frozenset({"--immutable", "--immutable-cache", "--check-cache"})
BERRY_FACT = "yarn-berry"
COREPACK_FACT = "yarn-corepack"  # `corepack enable`: berry unless a yarn@1 is named
V1_FACT = "yarn-v1"  # `corepack prepare yarn@1.x`
NODE_MODULES_FACT = "yarn-node-modules"  # `yarn config set nodeLinker node-modules` ran in the stage
SAFE_LINKERS = frozenset({"node-modules", "pnpm"})


def yarn(command: Command) -> Invocation | None:
    """A yarn command that installs: `yarn`, `yarn install`, `add`, `global add`, `workspaces focus`."""
    call = invocation(command, ("yarn", "yarnpkg"), TAKES_VALUE)
    if call is None:
        return None
    operands = [w.value for w in call.args if w.value and not w.value.startswith("-")]
    if call.subcommand is None:
        return None if any(w.value in INFO_FLAGS for w in call.args) else call
    if call.subcommand in INSTALLING or operands[:2] in (["global", "add"], ["workspaces", "focus"]):
        return call
    return None


def berry_command(command: Command) -> str | None:
    """What in a command says yarn is berry, or what it sets for berry."""
    values = [w.value or "" for w in command.args]
    if command.name == "corepack":
        # `corepack enable` runs the yarn that package.json's packageManager names (unseen here)
        named = [v for v in values if v.startswith("yarn@")]
        if named:
            return V1_FACT if named[0].startswith("yarn@1") else BERRY_FACT
        names = [v for v in values[1:] if not v.startswith("-")] if values[:1] == ["enable"] else []
        return COREPACK_FACT if values[:1] == ["enable"] and (not names or "yarn" in names) else None
    call = invocation(command, ("yarn", "yarnpkg"), TAKES_VALUE)
    if call is None:
        return None
    if values[:2] in (["set", "version"], ["policies", "set-version"]) or BERRY_FLAGS & set(values) or \
            call.subcommand in ("dlx", "up") or values[:2] == ["workspaces", "focus"]:
        return BERRY_FACT
    if values[:3] == ["config", "set", "nodeLinker"] and len(values) > 3 and values[3] in SAFE_LINKERS:
        return NODE_MODULES_FACT
    return None


def copies_berry_files(dockerfile: Dockerfile, before: int) -> bool:
    """A COPY or ADD before this RUN brings `.yarnrc.yml`, `.yarn/` or `.pnp.cjs` into the image."""
    for instruction in dockerfile.instructions:
        if instruction.span[0] >= before:
            return False
        if instruction.keyword in ("COPY", "ADD") and any(
                marker in source for source in instruction.value[:-1] for marker in BERRY_FILES):
            return True
    return False


def v1_cache(call: Invocation, env: Mapping[str, str], root: bool, home: str | None) -> str | None:
    """`--cache-folder`, `YARN_CACHE_FOLDER`, `$XDG_CACHE_HOME/yarn`, then `<home>/.cache/yarn`, where
    v1's home is `/usr/local/share` for root (src/util/user-home-dir.js)."""
    chosen = option_value(call.args, ("--cache-folder",)) or env.get("YARN_CACHE_FOLDER")
    if chosen:
        return chosen if chosen.startswith("/") else None
    if env.get("XDG_CACHE_HOME"):
        return env["XDG_CACHE_HOME"].rstrip("/") + "/yarn"
    home = "/usr/local/share" if root else home
    return None if home is None else home.rstrip("/") + "/.cache/yarn"


def berry_folder(env: Mapping[str, str], home: str | None) -> str | None:
    """berry's global folder: `YARN_GLOBAL_FOLDER`, `$XDG_DATA_HOME/yarn/berry`, `~/.yarn/berry`
    (folderUtils.ts). It holds the global cache (and, with it disabled, the mirror)."""
    if env.get("YARN_GLOBAL_FOLDER"):
        return env["YARN_GLOBAL_FOLDER"]
    if env.get("XDG_DATA_HOME"):
        return env["XDG_DATA_HOME"].rstrip("/") + "/yarn/berry"
    return None if home is None else home.rstrip("/") + "/.yarn/berry"


def _cleans_cache(command: Command) -> bool:
    """`yarn cache clean` empties the cache the mount keeps."""
    call = invocation(command, ("yarn", "yarnpkg"), TAKES_VALUE)
    return call is not None and call.subcommand == "cache" and any(w.value == "clean" for w in call.args)


class YarnRule(Rule):
    """
    ## What it does
    Finds `yarn` / `yarn install` / `yarn add` in a RUN without a cache mount on yarn's cache,
    and adds one.

    ## Why is this bad?
    Every rebuild of the layer downloads every package again.

    Which yarn runs is not visible from a Dockerfile (a `.yarnrc.yml` or a `packageManager`
    field decides), so yarn is taken for **v1** unless the file shows a sign of berry (2+):
    a COPY of `.yarnrc.yml`, `.yarn/` or `.pnp.cjs`, `corepack enable` (unless it prepares
    a `yarn@1`), `corepack prepare yarn@2+`, `yarn set version`,
    `--immutable`, `yarn dlx`/`up`/`workspaces focus`, or a `YARN_NODE_LINKER`/
    `YARN_ENABLE_GLOBAL_CACHE` setting. A v1 mount on a berry project only caches nothing.

    - **v1** caches in `/usr/local/share/.cache/yarn` for root (v1 puts root's home in
      `/usr/local/share`), `~/.cache/yarn` for another user; `YARN_CACHE_FOLDER`,
      `--cache-folder` and `XDG_CACHE_HOME` move it. The mount is `sharing=locked`: v1's
      cache breaks when two installs write it at once (yarn#683, #4102). A non-root user gets
      `/var/cache/yarn-UID` with `YARN_CACHE_FOLDER` set for those commands.
    - **berry** keeps its cache in its global folder (`~/.yarn/berry`, `YARN_GLOBAL_FOLDER`),
      and with Plug'n'Play (its default linker) and the global cache (yarn 4's default) those
      zip files *are* the installed packages: a mount there would leave `.pnp.cjs` pointing at
      nothing. So the global folder is mounted only when the install does not read packages
      from it: `YARN_NODE_LINKER=node-modules` (or pnpm), `nodeLinker` set that way with
      `yarn config set`, or `YARN_ENABLE_GLOBAL_CACHE=false` (the packages then stay in
      `.yarn/cache` in the image, and the global folder holds the mirror they are copied
      from). Otherwise the finding says how to make it safe.

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
    berry with Plug'n'Play and the global cache, a user whose uid the file does not show.
    """

    code = "CF402"
    name = "yarn-cache-mount"
    manager = "yarn"
    summary = "yarn install without a cache mount on yarn's cache"
    triggers = ("yarn", "corepack")

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        for command in run.commands:
            fact = berry_command(command)
            if fact is not None:
                run.stage.facts.add(fact)
        calls = [(c, a) for c in run.commands if (a := yarn(c)) is not None]
        if not calls:
            return
        first, call = calls[0]
        env = command_env(run, first)
        facts = run.stage.facts
        berry = BERRY_FACT in facts or (COREPACK_FACT in facts and V1_FACT not in facts) or copies_berry_files(
            dockerfile, run.instruction.span[0]) or any(
            k in env for k in ("YARN_NODE_LINKER", "YARN_ENABLE_GLOBAL_CACHE", "YARN_GLOBAL_FOLDER"))
        if berry:
            placed = self._berry_cache(run, dockerfile, first, env)
        else:
            default = None if run.home is None else run.home.rstrip("/") + "/.cache/yarn"
            placed = self.user_cache(run, dockerfile, first, v1_cache(call, env, run.is_root, run.home), default,
                                     "YARN_CACHE_FOLDER")
        yield from self.user_cache_fix(run, dockerfile, [c for c, _ in calls], placed, _cleans_cache,
                                       sharing=None if berry else "locked", label="yarn berry" if berry else "yarn")

    def _berry_cache(self, run: RunContext, dockerfile: Dockerfile, first: Command,
                     env: Mapping[str, str]) -> UserCache | Finding | None:
        """berry's global folder, when the install does not read its packages from there."""
        linker = env.get("YARN_NODE_LINKER")
        global_cache = env.get("YARN_ENABLE_GLOBAL_CACHE")
        safe = linker in SAFE_LINKERS or (linker is None and NODE_MODULES_FACT in run.stage.facts) or (
            global_cache is not None and not truthy(global_cache))
        folder = berry_folder(env, run.home)
        if not safe:
            where = folder or "~/.yarn/berry"
            return self.finding(dockerfile, command_span(run, first),
                                "yarn berry with Plug'n'Play reads the installed packages from its global cache, "
                                "so a cache mount there would leave them out of the image: run the install with "
                                f"YARN_ENABLE_GLOBAL_CACHE=false (packages stay in .yarn/cache) and mount {where}, "
                                "or use nodeLinker: node-modules")
        default = None if run.home is None else run.home.rstrip("/") + "/.yarn/berry"
        return self.user_cache(run, dockerfile, first, folder, default, "YARN_GLOBAL_FOLDER")
