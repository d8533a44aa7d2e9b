"""CF401 npm: `npm install` / `npm ci` without a cache mount on npm's cache."""

from __future__ import annotations

from cachefix.rules.user_cache import Cache, UserCacheRule


class NpmRule(UserCacheRule):
    """
    ## What it does
    Finds `npm install`, `npm ci` (and their aliases, `npm update`) in a RUN without a cache
    mount on npm's cache, and adds one.

    ## Why is this bad?
    Every rebuild of the layer downloads every package tarball again. npm keeps them in its
    cache, `~/.npm` (`/root/.npm` for root; `--cache` or `npm_config_cache` move it), and a
    cache mount there keeps them between builds without putting them in the image.

    For another user the mount goes outside the home folder (`/var/cache/npm-UID`, owned by
    that uid, with `npm_config_cache` set for those commands only): a mount under
    `/home/node` would leave root-owned folders there. The `node` image's `node` user is
    uid 1000; a user created without a fixed uid gets `/var/cache/npm-USER` with `mode=0777`.
    npm's cache (cacache) is safe for concurrent use, so the mount is shared.

    `npm cache clean --force` and `rm -rf ~/.npm` would empty the mount and are not needed
    any more; they are removed from the RUN that gains the mount, and only there.

    ## Example
    ```dockerfile
    RUN npm ci && npm cache clean --force
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/root/.npm npm ci
    ```

    ## Fix safety
    Safe: npm verifies every tarball against the lockfile's integrity hash, from the cache as
    from the registry. Not fixed, and reported: an `rm` of a folder holding the cache.
    """

    code = "CF401"
    name = "npm-cache-mount"
    manager = "npm"
    summary = "npm install/ci without a cache mount on npm's cache"
    triggers = ("npm",)
    programs = frozenset({"npm"})
    downloading = frozenset({"install", "i", "in", "ins", "inst", "add", "isntall", "ci", "clean-install", "ic",
                             "install-clean", "isntall-clean", "it", "install-test", "cit", "clean-install-test",
                             "update", "up", "upgrade", "udpate"})
    takes_value = frozenset({"--prefix", "--cache", "--registry", "--userconfig", "--globalconfig", "-w",
                             "--workspace", "--omit", "--include", "--loglevel", "--install-strategy", "--tag",
                             "--before"})
    # npm reads its environment configuration case-insensitively.
    caches = (Cache(("$npm_config_cache", "$NPM_CONFIG_CACHE", "~/.npm"), option=("--cache",)),)
    clean_ups = ("cache clean", "cache clear", "cache rm")
