"""CF601 composer: `composer install` without a cache mount on Composer's cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from cachefix.rewriter.context import RunContext, command_env, shell_env
from cachefix.rewriter.mounts import ExistingMount, existing_mounts, is_within, same_path
from cachefix.rewriter.shell import Command
from cachefix.rules.cleanup import clean_up
from cachefix.rules.user_cache import Cache, Switch, UserCacheRule

# Where the fix points Composer when the file does not show where it caches.
PINNED = "/var/cache/composer"
# Folders a Composer cache mount is often put on by hand, whether or not Composer uses them.
USUAL = ("/.composer/cache", "/.cache/composer")


class ComposerRule(UserCacheRule):
    """
    ## What it does
    Finds `composer install` (also `update`, `require`, `create-project`, `php composer.phar
    install`) in a RUN without a cache mount on Composer's cache, and adds one.

    ## Why is this bad?
    Every rebuild of the layer downloads every package archive again. Composer caches them in
    COMPOSER_CACHE_DIR, else `$COMPOSER_HOME/cache` (`/tmp/cache` in the composer image,
    which sets COMPOSER_HOME=/tmp). Without either, the place depends on the image: the
    XDG cache folder when any XDG_ variable is set or `/etc/xdg` exists, else
    `~/.composer/cache` (Composer's `Factory::getCacheDir`). A Dockerfile that copies the
    composer binary into a php image does not show which, so the fix pins it: the command gets
    `COMPOSER_CACHE_DIR=/var/cache/composer` (for that command only) and the mount goes there.
    A user that is not root gets its own pinned folder, `/var/cache/composer-UID`, owned by
    it, unless the file itself sets COMPOSER_CACHE_DIR or COMPOSER_HOME.

    `--no-cache` turns the cache off, and goes from the RUN that gains the mount, as do
    `composer clear-cache` and `rm -rf` of the cache. `COMPOSER_CACHE_DIR=/dev/null` (or
    empty) turns it off too: on the command it goes; set by ENV or ARG it stays in the image,
    and the command gets COMPOSER_CACHE_DIR set to the mount, which wins over the ENV (or,
    where COMPOSER_HOME shows the cache, `env -u COMPOSER_CACHE_DIR`).

    ## Example
    ```dockerfile
    FROM php:8.3-fpm
    COPY --from=composer:2 /usr/bin/composer /usr/bin/composer
    RUN composer install --no-dev --no-cache --prefer-dist
    ```

    ## Use instead
    ```dockerfile
    FROM php:8.3-fpm
    COPY --from=composer:2 /usr/bin/composer /usr/bin/composer
    RUN --mount=type=cache,target=/var/cache/composer COMPOSER_CACHE_DIR=/var/cache/composer composer install --no-dev --prefer-dist
    ```

    ## Fix safety
    Safe: the cache holds downloaded archives and repository metadata; what Composer installs
    goes to `vendor/`. A RUN that removes a folder holding the cache Composer would use (`rm
    -rf /tmp/*` in the composer image) gets the pinned folder instead. Not fixed, and reported:
    an `rm` of a folder holding the cache that pinning cannot avoid.
    """  # noqa: E501

    code = "CF601"
    name = "composer-cache-mount"
    manager = "composer"
    summary = "composer install without a cache mount on Composer's cache"
    triggers = ("composer",)
    programs = frozenset({"composer", "composer.phar"})
    downloading = frozenset(f"{scope}{word}" for scope in ("", "global ") for word in (
        "install", "i", "update", "u", "upgrade", "require", "r", "create-project", "reinstall", "remove", "rm"))
    takes_value = frozenset({"-d", "--working-dir"})
    caches = (Cache(("$COMPOSER_CACHE_DIR", "$COMPOSER_HOME/cache")),)
    # "Same as setting the COMPOSER_CACHE_DIR env var to /dev/null" (composer docs, 03-cli).
    switches = (Switch("COMPOSER_CACHE_DIR", lambda value: value in ("", "/dev/null")),)
    defeating = frozenset({"--no-cache"})
    clean_ups = ("clear-cache", "clearcache", "cc")
    # The composer image has COMPOSER_HOME=/tmp, so its cache is /tmp/cache.
    image_env: ClassVar[Mapping[str, Mapping[str, str]]] = {"composer": {"COMPOSER_HOME": "/tmp"},
                                                           "composer/composer": {"COMPOSER_HOME": "/tmp"}}

    def environment(self, run: RunContext, command: Command) -> dict[str, str]:
        """The image's COMPOSER_HOME counts for root only (another user gets a folder of its own);
        where the RUN removes a folder holding the cache it shows, the fix pins one instead."""
        env = super().environment(run, command) if run.is_root else command_env(run, command)
        shown = self._shown(env)
        if shown and clean_up(run.commands, self.is_clean_up, [shown], run.home, shell_env(run)).breaker:
            inline = {a.name for a in command.assignments}
            env = {k: v for k, v in env.items() if k in inline or k not in ("COMPOSER_CACHE_DIR", "COMPOSER_HOME")}
        return env

    def pinned(self, run: RunContext, cache: Cache) -> str | None:
        """A cache mount the user put on a usual folder is kept and pointed at; else PINNED."""
        return next((m.target for m in self._usual(run)), PINNED)

    def stale(self, run: RunContext, cache: Cache, target: str) -> list[ExistingMount]:
        """Also a mount on a usual folder, or on the cache the stage shows (which another user does not get)."""
        shown = self._shown({**self.image_env.get(run.stage.image, {}), **run.env})
        return [m for m in existing_mounts(run.instruction) if m.is_cache and not is_within(target, m.target) and (
            m in self._usual(run) or (shown and same_path(m.target, shown)))] + super().stale(run, cache, target)

    def _shown(self, env: Mapping[str, str]) -> str | None:
        """The cache folder the variables show (COMPOSER_CACHE_DIR, else `$COMPOSER_HOME/cache`)."""
        return self.caches[0].resolve(None, env, None)[0]

    @staticmethod
    def _usual(run: RunContext) -> list[ExistingMount]:
        return [m for m in existing_mounts(run.instruction) if m.is_cache and m.target.rstrip("/").endswith(USUAL)]
