"""CF401 npm: `npm install` / `npm ci` without a cache mount on npm's cache."""

from __future__ import annotations

from collections.abc import Iterable

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.shell import Command
from cachefix.rules.base import Invocation, Rule, invocation, option_value

DOWNLOADING = frozenset({"install", "i", "in", "ins", "inst", "add", "isntall", "ci", "clean-install", "ic",
                         "install-clean", "isntall-clean", "it", "install-test", "cit", "clean-install-test",
                         "update", "up", "upgrade", "udpate"})
TAKES_VALUE = frozenset({"--prefix", "--cache", "--registry", "--userconfig", "--globalconfig", "-w", "--workspace",
                         "--omit", "--include", "--loglevel", "--install-strategy", "--tag", "--before"})
ENV_VAR = "npm_config_cache"


def npm(command: Command) -> Invocation | None:
    return invocation(command, ("npm",), TAKES_VALUE)


def cache_dir(call: Invocation, env: dict[str, str], home: str | None) -> str | None:
    """`--cache`, then `npm_config_cache` (npm reads its env config case-insensitively), then `~/.npm`."""
    chosen = option_value(call.args, ("--cache",))
    if chosen is None:
        chosen = next((v for k, v in env.items() if k.lower() == ENV_VAR and v), None)
    if chosen is not None:
        return chosen if chosen.startswith("/") else None
    return None if home is None else home.rstrip("/") + "/.npm"


def _cleans_cache(command: Command) -> bool:
    """`npm cache clean --force` (also `clear`, `rm`) empties the cache the mount keeps."""
    call = npm(command)
    return call is not None and call.subcommand == "cache" and any(
        w.value in ("clean", "clear", "rm") for w in call.args)


class NpmRule(Rule):
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
    uid 1000. npm's cache (cacache) is safe for concurrent use, so the mount is shared.

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
    from the registry. Not fixed, and reported: a user whose uid the file does not show, an
    exec-form RUN for a non-root user, and an `rm` of a folder holding the cache.
    """

    code = "CF401"
    name = "npm-cache-mount"
    manager = "npm"
    summary = "npm install/ci without a cache mount on npm's cache"
    triggers = ("npm",)

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        calls = [(c, a) for c in run.commands if (a := npm(c)) is not None and a.subcommand in DOWNLOADING]
        if not calls:
            return
        first, call = calls[0]
        default = None if run.home is None else run.home.rstrip("/") + "/.npm"
        placed = self.user_cache(run, dockerfile, first, cache_dir(call, command_env(run, first), run.home),
                                 default, ENV_VAR)
        yield from self.user_cache_fix(run, dockerfile, [c for c, _ in calls], placed, _cleans_cache,
                                       stale_in_home=".npm")
