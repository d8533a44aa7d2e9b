"""CF404 bun: `bun install` / `bun add` without a cache mount on bun's package cache."""

from __future__ import annotations

from cachefix.rules.user_cache import Cache, UserCacheRule


class BunRule(UserCacheRule):
    """
    ## What it does
    Finds `bun install`, `bun add`, `bun update` and `bun remove` (and their aliases `i`, `a`,
    `rm`, `r`, `uninstall`) in a RUN without a cache mount on bun's package cache, and adds one.

    ## Why is this bad?
    Every rebuild of the layer downloads every package again. bun keeps them in its cache,
    `~/.bun/install/cache` (`/root/.bun/install/cache` for root), or where
    `BUN_INSTALL_CACHE_DIR`, `--cache-dir`, `$BUN_INSTALL/install/cache` or
    `$XDG_CACHE_HOME/.bun/install/cache` put it; a cache mount there keeps the packages
    between builds without putting them in the image.

    For another user the mount goes outside the home folder (`/var/cache/bun-UID`, owned by
    that uid, with `BUN_INSTALL_CACHE_DIR` set for those commands only, which beats every
    other setting): a root-owned folder is not writable by that user, and bun then silently
    caches nothing. The `oven/bun` image's `bun` user is uid 1000, and a user created there
    without `-u` gets the next uid, 1001. bun publishes each package into its cache with an
    atomic rename, so the mount is shared.

    `--no-cache` only skips bun's manifest cache, not its package cache, so it is kept.
    `bun pm cache rm` and `rm -rf ~/.bun/install/cache` would empty the mount and are not
    needed any more; they are removed from the RUN that gains the mount, and only there.

    ## Example
    ```dockerfile
    RUN bun install --frozen-lockfile && bun pm cache rm
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/root/.bun/install/cache bun install --frozen-lockfile
    ```

    ## Fix safety
    Safe: bun checks every package against the lockfile's integrity hash. The cache is on
    another filesystem than `node_modules`, so bun copies packages instead of hard-linking
    them: the image holds the same files. Not fixed, and reported: an `rm` of a folder holding
    the cache (`rm -rf ~/.bun` would also remove a bun installed there).
    """

    code = "CF404"
    name = "bun-cache-mount"
    manager = "bun"
    summary = "bun install/add without a cache mount on bun's package cache"
    triggers = ("bun",)
    programs = frozenset({"bun"})
    downloading = frozenset({"install", "i", "add", "a", "update", "remove", "rm", "r", "uninstall"})
    takes_value = frozenset({"-c", "--config", "--ca", "--cafile", "--cache-dir", "--cwd", "--backend", "--registry",
                             "--concurrent-scripts", "--network-concurrency", "--omit", "--linker",
                             "--minimum-release-age", "--cpu", "--os", "--filter", "-F"})
    caches = (Cache(("$BUN_INSTALL_CACHE_DIR", "$BUN_INSTALL/install/cache", "$XDG_CACHE_HOME/.bun/install/cache",
                     "~/.bun/install/cache"), option=("--cache-dir",)),)
    clean_ups = ("pm cache rm",)
