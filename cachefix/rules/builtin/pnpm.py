"""CF403 pnpm: `pnpm install` without a cache mount on pnpm's store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, shell_env
from cachefix.rewriter.mounts import ExistingMount, existing_mounts, is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation
from cachefix.rules.cleanup import clean_up
from cachefix.rules.placement import retarget
from cachefix.rules.user_cache import Cache, UserCacheRule

# The pnpm home (Linux): where pnpm puts its store unless told, and where it tests hard links.
PNPM_HOME = Cache(("$PNPM_HOME", "$XDG_DATA_HOME/pnpm", "~/.local/share/pnpm"))


class PnpmRule(UserCacheRule):
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
    store lands in `/.pnpm-store`, in the image. A mount on the home is moved to the store,
    keeping its options. Files from the mount are copied into `node_modules` (a hard link
    cannot cross file systems), so the image gets the same files.

    For a non-root user whose store is in its home by default, the store moves to
    `/var/cache/pnpm-UID` (owned by that uid) with `npm_config_store_dir` for those commands:
    a mount under the home would make the folders above it root-owned, and pnpm writes there.
    A store the file chose (`PNPM_HOME`, `npm_config_store_dir`, `--store-dir`) stays where it
    is, mounted for that uid.

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
    reported: a user whose uid neither the file nor its base image shows, and an `rm` of a
    folder holding the store.
    """

    code = "CF403"
    name = "pnpm-cache-mount"
    manager = "pnpm"
    summary = "pnpm install without a cache mount on pnpm's store"
    triggers = ("pnpm",)
    programs = frozenset({"pnpm"})
    downloading = frozenset({"install", "i", "add", "fetch", "update", "up", "upgrade", "install-test", "it", "dlx"})
    takes_value = frozenset({"--filter", "-F", "--dir", "-C", "--store-dir", "--reporter", "--loglevel",
                             "--virtual-store-dir", "--modules-dir", "--lockfile-dir"})
    caches = (Cache(("$npm_config_store_dir", "$pnpm_config_store_dir", "$PNPM_HOME/store",
                     "$XDG_DATA_HOME/pnpm/store", "~/.local/share/pnpm/store"), option=("--store-dir",)),)
    clean_ups = ("store prune",)

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        """As for every per-user cache, except that a cache mount on the pnpm home moves to the store."""
        calls = self.calls(run)
        trap = self._mount_on_home(run, calls) if calls else None
        if trap is None:
            yield from super().check(run, state)
            return
        (first, call), (mount, home) = calls[0], trap
        placed = self._place(run, self.caches[0], *self.caches[0].resolve(call, self.environment(run, first),
                                                                             run.home))
        if placed is None:
            return
        store = placed.mount.target
        plan = clean_up(run.commands, self.is_clean_up, [store], run.home, shell_env(run))
        if plan.breaker is not None:
            yield self.at(run, plan.breaker, plan.problem(store))
            return
        fix = retarget(run, mount, placed.mount)
        assign = {placed.variable: store} if placed.variable else {}
        yield self.at(run, first, f"the cache mount is on the pnpm home {home}, so pnpm puts its store in "
                                  f"/.pnpm-store, in the image; mount its store {store} instead",
                      [*fix.edits, *plan.edits, *self._per_command(run, calls, assign, [], store)[0]], mounts=fix.flags)

    def _mount_on_home(self, run: RunContext,
                       calls: Sequence[tuple[Command, Invocation]]) -> tuple[ExistingMount, str] | None:
        """A cache mount on the RUN that holds the pnpm home, and that home."""
        home = PNPM_HOME.resolve(calls[0][1], self.environment(run, calls[0][0]), run.home)[0]
        mount = next((m for m in existing_mounts(run.instruction) if m.is_cache and home is not None
                      and is_within(home, m.target)), None)
        return None if mount is None or home is None else (mount, home)
