"""CF601 composer: `composer install` without a cache mount on Composer's cache."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cachefix.model import Edit, Finding
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import existing_mounts, is_within, same_path
from cachefix.rewriter.shell import Command
from cachefix.rules.base import (
    Invocation,
    Rule,
    UserCache,
    clean_up,
    command_span,
    delete_assignment,
    env_prefixes,
    image_env,
    invocation,
    previous_words,
    remove_words,
    script_command,
    shell_env,
)

COMPOSER = frozenset({"composer", "composer.phar"})
# Global options that take a value (so the word after them is not the command).
TAKES_VALUE = frozenset({"-d", "--working-dir"})
DOWNLOADING = frozenset({"install", "i", "update", "u", "upgrade", "require", "r", "create-project", "reinstall",
                         "remove", "rm"})
CLEARING = frozenset({"clear-cache", "clearcache", "cc"})
NO_CACHE = "--no-cache"  # "Same as setting the COMPOSER_CACHE_DIR env var to /dev/null" (composer docs, 03-cli)
DISABLED = frozenset({"", "/dev/null"})
# What base images set: the composer image has COMPOSER_HOME=/tmp, so its cache is /tmp/cache.
IMAGE_ENV = {"composer": {"COMPOSER_HOME": "/tmp"}, "composer/composer": {"COMPOSER_HOME": "/tmp"}}
# Where the fix points Composer when the file does not show where it caches.
PINNED = "/var/cache/composer"


def composer(command: Command) -> Invocation | None:
    """`composer ...`, `php composer.phar ...`, `composer global require ...`."""
    call = invocation(script_command(command), COMPOSER, TAKES_VALUE)
    if call is not None and call.subcommand == "global":
        rest = [w.value for w in call.args if w.value and not w.value.startswith("-")]
        return Invocation(call.program, rest[1] if len(rest) > 1 else None, call.args)
    return call


def cache_dir(env: dict[str, str]) -> str | None:
    """COMPOSER_CACHE_DIR, else `$COMPOSER_HOME/cache` (Composer's `Factory::getCacheDir`); None
    when neither is set, as then it depends on `/etc/xdg` and XDG_* variables of the image."""
    if env.get("COMPOSER_CACHE_DIR"):
        return env["COMPOSER_CACHE_DIR"]
    if env.get("COMPOSER_HOME"):
        return env["COMPOSER_HOME"].rstrip("/") + "/cache"
    return None


def composer_calls(run: RunContext) -> list[tuple[Command, Invocation]]:
    """The RUN's Composer commands that download, with their invocation."""
    return [(c, call) for c in run.commands if (call := composer(c)) is not None and call.subcommand in DOWNLOADING]


def cache_switched_off(run: RunContext) -> bool:
    """An ENV or ARG COMPOSER_CACHE_DIR of /dev/null (or empty) turns the cache off for every command."""
    return bool(composer_calls(run)) and run.env.get("COMPOSER_CACHE_DIR", "unset") in DISABLED


def clears_cache(command: Command) -> bool:
    call = composer(command)
    return call is not None and call.subcommand in CLEARING


class ComposerRule(Rule):
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
    A user that is not root always gets its own pinned folder, `/var/cache/composer-UID`,
    owned by it.

    `--no-cache` turns the cache off, and goes from the RUN that gains the mount, as do
    `composer clear-cache` and `rm -rf` of the cache.

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
    goes to `vendor/`. Not fixed, and reported instead: ENV COMPOSER_CACHE_DIR=/dev/null, and
    an `rm` of a folder holding the cache that the fix cannot avoid by pinning.
    """  # noqa: E501

    code = "CF601"
    name = "composer-cache-mount"
    manager = "composer"
    summary = "composer install without a cache mount on Composer's cache"
    triggers = ("composer",)

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        calls = composer_calls(run)
        if not calls:
            return
        first, _ = calls[0]
        span = command_span(run, first)
        if cache_switched_off(run):
            found = self.switch_finding(dockerfile, run, first, "COMPOSER_CACHE_DIR", cache_switched_off,
                                        "COMPOSER_CACHE_DIR turns Composer's cache off for every command")
            if found is not None:
                yield found
            return
        env = image_env(run, first, IMAGE_ENV)
        if env.get("COMPOSER_CACHE_DIR") in DISABLED:  # an inline `COMPOSER_CACHE_DIR=/dev/null`: it goes
            env.pop("COMPOSER_CACHE_DIR")
        found = cache_dir(env)
        inline = any(a.name == "COMPOSER_CACHE_DIR" and (a.value or "") not in DISABLED for a in first.assignments)
        for pin in (False, True):
            placed = self._place(run, dockerfile, first, None if pin else found, inline and not pin)
            if isinstance(placed, Finding):
                yield placed
                return
            plan = clean_up(run.commands, clears_cache, [placed.target], run.home, shell_env(run))
            if plan.breaker is None or placed.env_var:
                break
        if plan.breaker is not None:
            yield self.finding(dockerfile, command_span(run, plan.breaker), plan.problem(placed.target))
            return
        if placed.env_var and any(not c.words or c.words[0].span is None for c, _ in calls):
            yield self.finding(dockerfile, span, f"composer runs inside a quoted script where cachefix cannot set "
                                                 f"COMPOSER_CACHE_DIR={placed.target} for it; set it there and add "
                                                 f"`{placed.mount().render()}`")
            return
        stale = self.stale_mounts(run, placed.target, "composer") + [
            m for m in existing_mounts(run.instruction) if m.is_cache and not is_within(placed.target, m.target)
            and (m.target.rstrip("/").endswith("/.composer/cache") or (found and same_path(m.target, found)))]
        fix, changed = self.mount_edits(run, [placed.mount()], stale)
        pins = list(env_prefixes([c for c, _ in calls], placed))
        if not changed and not pins:
            return
        fix.extend(plan.edits)
        fix.extend(self._cache_defeaters(calls, placed))
        fix.extend(pins)
        if changed:
            message = (f"composer downloads without a cache mount on {placed.target}: add `{changed[0].render()}`"
                       + (f" and COMPOSER_CACHE_DIR={placed.target}" if placed.env_var else ""))
        else:
            message = (f"composer caches in {placed.target}, where this RUN mounts a cache, only if the image has no "
                       f"XDG setup: set COMPOSER_CACHE_DIR={placed.target} for the command")
        yield self.finding(dockerfile, span, message, fix)

    def _place(self, run: RunContext, dockerfile: Dockerfile, command: Command, found: str | None,
               inline: bool) -> UserCache | Finding:
        """The cache the RUN gets: `found` for root (and the command's own COMPOSER_CACHE_DIR=
        for anyone); a pinned folder where the file does not show it, and for another user (a
        folder of its own, so that it never shares a cache root created)."""
        if found is not None and (run.is_root or inline):
            return UserCache(found, *((None, None) if run.is_root else (run.uid, run.gid)))
        if run.is_root:
            if not run.shell_form:
                return self.finding(dockerfile, command_span(run, command),
                                    "composer's cache folder depends on the image here, and an exec-form RUN has no "
                                    "place to pin it: rewrite it in shell form, or set ENV COMPOSER_CACHE_DIR")
            mounted = next((m.target for m in existing_mounts(run.instruction) if m.is_cache
                            and m.target.rstrip("/").endswith(("/.composer/cache", "/.cache/composer"))), None)
            return UserCache(mounted or PINNED, env_var="COMPOSER_CACHE_DIR")
        placed = self.user_cache(run, dockerfile, command, PINNED, PINNED, "COMPOSER_CACHE_DIR")
        assert placed is not None
        return placed

    @staticmethod
    def _cache_defeaters(calls: list[tuple[Command, Invocation]], placed: UserCache) -> Iterator[Edit]:
        """`--no-cache` goes once the RUN has a mount; an inline `COMPOSER_CACHE_DIR=/dev/null`
        goes too, or becomes the pin."""
        for command, call in calls:
            yield from remove_words((w for w in call.args if w.value == NO_CACHE), previous_words(command))
            for assignment in command.assignments:
                if assignment.name != "COMPOSER_CACHE_DIR" or (assignment.value or "") not in DISABLED:
                    continue
                if placed.env_var and assignment.span is not None:
                    yield Edit(*assignment.span, f"COMPOSER_CACHE_DIR={placed.target}")
                elif (edit := delete_assignment(command, assignment)) is not None:
                    yield edit
