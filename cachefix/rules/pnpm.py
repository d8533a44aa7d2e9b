"""CF403 pnpm: `pnpm install` without a cache mount on pnpm's store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import existing_mounts, is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.base import Invocation, Rule, invocation, option_value

DOWNLOADING = frozenset({"install", "i", "add", "fetch", "update", "up", "upgrade", "install-test", "it", "dlx"})
TAKES_VALUE = frozenset({"--filter", "-F", "--dir", "-C", "--store-dir", "--reporter", "--loglevel",
                         "--virtual-store-dir", "--modules-dir", "--lockfile-dir"})
STORE_ENV = ("npm_config_store_dir", "pnpm_config_store_dir")
ENV_VAR = "npm_config_store_dir"


def pnpm(command: Command) -> Invocation | None:
    return invocation(command, ("pnpm",), TAKES_VALUE)


def pnpm_home(env: Mapping[str, str], home: str | None) -> str | None:
    """`PNPM_HOME`, `$XDG_DATA_HOME/pnpm`, `~/.local/share/pnpm` (Linux)."""
    if env.get("PNPM_HOME"):
        return env["PNPM_HOME"].rstrip("/")
    if env.get("XDG_DATA_HOME"):
        return env["XDG_DATA_HOME"].rstrip("/") + "/pnpm"
    return None if home is None else home.rstrip("/") + "/.local/share/pnpm"


def store_dir(call: Invocation, env: Mapping[str, str], home: str | None) -> str | None:
    """`--store-dir`, `npm_config_store_dir`, else `<pnpm home>/store` (store-path's getStorePath)."""
    chosen = option_value(call.args, ("--store-dir",)) or next((env[k] for k in STORE_ENV if env.get(k)), None)
    if chosen:
        return chosen if chosen.startswith("/") else None
    folder = pnpm_home(env, home)
    return None if folder is None else folder + "/store"


def _cleans_cache(command: Command) -> bool:
    """`pnpm store prune` deletes what no project here references: most of a shared store."""
    call = pnpm(command)
    return call is not None and call.subcommand == "store" and any(w.value == "prune" for w in call.args)


class PnpmRule(Rule):
    """
    ## What it does
    Finds `pnpm install` (also `i`, `add`, `fetch`, `update`) in a RUN without a cache mount on
    pnpm's store, and adds one on the store folder.

    ## Why is this bad?
    Every rebuild downloads every package again. pnpm keeps them in its content-addressed
    store, `<pnpm home>/store`, where the pnpm home is `PNPM_HOME`, `$XDG_DATA_HOME/pnpm` or
    `~/.local/share/pnpm`; `--store-dir` and `npm_config_store_dir` move it. pnpm's Docker
    guide: `ENV PNPM_HOME=/pnpm` and `--mount=type=cache,id=pnpm,target=/pnpm/store`.

    The mount goes on the store, never on the pnpm home: with no store set, pnpm places the
    store by testing whether it can hard-link from the project into its home
    (`store/store-path`), and a mount there is another file system, so the test fails and the
    store lands in `/.pnpm-store`, in the image. A mount on the home is replaced by one on the
    store. Files from the mount are copied into `node_modules` (a hard link cannot cross file
    systems), so the image gets the same files.

    For a non-root user whose store is under its home, the store moves to
    `/var/cache/pnpm-UID` (owned by that uid) with `npm_config_store_dir` for those commands:
    a mount under the home would make the folders above it root-owned, and pnpm writes there.

    `pnpm store prune` and an `rm` of the store would empty the mount; they are removed from
    the RUN that gains it, and only there.

    ## Example
    ```dockerfile
    ENV PNPM_HOME=/pnpm
    RUN pnpm install --frozen-lockfile && pnpm store prune
    ```

    ## Use instead
    ```dockerfile
    ENV PNPM_HOME=/pnpm
    RUN --mount=type=cache,target=/pnpm/store pnpm install --frozen-lockfile
    ```

    ## Fix safety
    Safe: pnpm checks every package's integrity when it imports it. A `pnpm fetch` only fills
    the store: the `pnpm install --offline` after it gets the same mount. Not fixed, and
    reported: a user whose uid the file does not show, and an `rm` of a folder holding the
    store.
    """

    code = "CF403"
    name = "pnpm-cache-mount"
    manager = "pnpm"
    summary = "pnpm install without a cache mount on pnpm's store"
    triggers = ("pnpm",)

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        calls = [(c, a) for c in run.commands if (a := pnpm(c)) is not None and a.subcommand in DOWNLOADING]
        if not calls:
            return
        first, call = calls[0]
        env = command_env(run, first)
        target = store_dir(call, env, run.home)
        default = None if run.home is None else run.home.rstrip("/") + "/.local/share/pnpm/store"
        if target is not None and run.home is not None and is_within(target, run.home):
            default = target  # under the home: a non-root user's store moves out of it
        placed = self.user_cache(run, dockerfile, first, target, default, ENV_VAR)
        home = pnpm_home(env, run.home)
        trap = next((m for m in existing_mounts(run.instruction) if m.is_cache and home is not None
                     and is_within(home, m.target)), None)
        problem = f"the cache mount is on the pnpm home {home}, so pnpm puts its store in /.pnpm-store, in the image; "
        yield from self.user_cache_fix(run, dockerfile, [c for c, _ in calls], placed, _cleans_cache, replacing=trap,
                                       label="pnpm", problem=problem if trap is not None else "")
