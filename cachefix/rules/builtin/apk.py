"""CF202 apk: `apk add` without a locked cache mount on `/etc/apk/cache`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cachefix.model import Edit, Finding
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.mounts import same_path
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation, option_value
from cachefix.rules.system_cache import SystemCacheRule
from cachefix.rules.words import previous_words, remove_words

UPDATE_CACHE = frozenset({"-U", "--update-cache", "--update"})  # `--update` is a unique prefix of the long name
CACHE = "/etc/apk/cache"
STATIC_CACHE = "/var/cache/apk"


@dataclass(frozen=True)
class ApkState:
    """Whether an earlier RUN made /etc/apk/cache a symlink to /var/cache/apk (buildkit#1009)."""

    linked: bool = False


def links_cache(command: Command) -> bool:
    """`ln -s /var/cache/apk /etc/apk/cache`: apk then caches into /var/cache/apk."""
    values = [w.value or "" for w in command.args]
    return command.name == "ln" and len(values) >= 2 and same_path(values[-1], CACHE) and any(
        v.startswith("-") and "s" in v for v in values) and same_path(values[-2], STATIC_CACHE)


class ApkRule(SystemCacheRule):
    """
    ## What it does
    Finds `apk add` / `apk upgrade` / `apk update` in a RUN without a cache mount on
    `/etc/apk/cache`, and adds one with `sharing=locked`.

    ## Why is this bad?
    Every rebuild downloads the index and every package again. apk keeps packages and
    indexes in `/etc/apk/cache` when that folder exists (apk-cache(5); `setup_cache` in
    apk-tools' `database.c`, v2 and v3), and a cache mount creates it. Without it, apk keeps
    only the index, in `/var/cache/apk`.

    `--no-cache` turns every cache off, so it goes. It also made apk fetch a fresh index on
    each run; `--update-cache` keeps that (without it apk would trust a cached index for up to
    four hours, `cache_max_age`, and could install older packages or fail on ones the mirror
    has dropped). Only the first apk command of the RUN gets it: the ones after it see the
    index it just fetched. A command after `apk update` or with `-U` needs nothing.
    `apk cache clean` would empty the mount, so it goes too. `rm -rf /var/cache/apk/*` stays:
    with the mount apk no longer writes there, so removing it would only keep whatever an
    earlier layer left.

    `sharing=locked`: two builds writing one cache at once could interleave index and
    package writes of the same names.

    The docker-library shape (`apk add --no-cache --virtual .build-deps ...`, build, then
    `apk del --no-network .build-deps`) works unchanged: `apk del` does not touch the cache.

    ## Example
    ```dockerfile
    RUN apk add --no-cache curl
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/etc/apk/cache,sharing=locked apk add --update-cache curl
    ```

    ## Fix safety
    Safe: the image gets the same packages, from the cache when they are there. BuildKit
    removes the empty `/etc/apk/cache` it creates for the mount once the RUN ends; a builder
    that leaves it behind (older BuildKit, buildah) leaves an empty folder that makes a later
    `apk add` without `--no-cache` in a derived image keep its packages. Not fixed, and
    reported: `apk --root DIR` (the cache is under that root). apk run as a non-root user
    cannot install, so it is left alone.
    """

    code = "CF202"
    name = "apk-cache-mount"
    manager = "apk"
    summary = "apk add without a locked cache mount on /etc/apk/cache"
    triggers = ("apk",)
    observes = (CACHE,)
    State = ApkState
    programs = frozenset({"apk"})
    clean_ups = ("cache clean",)  # deletes the packages a later build would reuse
    downloading = frozenset({"add", "upgrade", "update", "fix", "fetch"})
    takes_value = frozenset({"-X", "--repository", "-p", "--root", "--cache-dir", "--arch", "--keys-dir",
                             "--repositories-file", "--cache-max-age", "--timeout", "--wait", "-t", "--virtual",
                             "--progress-fd"})

    def observe(self, run: RunContext, state: object) -> ApkState:
        assert isinstance(state, ApkState)
        return ApkState(state.linked or any(links_cache(c) for c in run.commands))

    def targets(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                state: object) -> tuple[str, ...] | Finding:
        assert isinstance(state, ApkState)
        root = next((r for _, a in calls if (r := option_value(a.args, ("-p", "--root")))), None)
        if root is not None and not same_path(root, "/"):
            return self.at(run, calls[0][0], f"apk installs into --root {root}, so it caches under {root}"
                                             "/etc/apk/cache; cachefix does not mount a cache inside another root")
        chosen = next((d for _, a in calls if (d := option_value(a.args, ("--cache-dir",)))), None)
        return (chosen or (STATIC_CACHE if state.linked else CACHE),)

    def extra_edits(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                    state: object) -> tuple[list[Edit], str]:
        """`--no-cache` goes; the first apk that had it fetches the index with `--update-cache` instead."""
        if any(w.value == "--no-cache" and w.span is None for _, a in calls for w in a.args):
            return [], "`--update-cache` in place of `--no-cache`"
        out: list[Edit] = []
        fresh = False
        for command, call in calls:
            flags = [w for w in call.args if w.value == "--no-cache"]
            refreshes = call.subcommand == "update" or any(w.value in UPDATE_CACHE for w in call.args)
            if flags and not fresh and not refreshes and flags[0].span is not None:
                raw = flags[0].raw if run.shell_form else '"--no-cache"'  # an exec-form word's span has its quotes
                out.append(Edit(*flags[0].span, raw.replace("--no-cache", "--update-cache")))
                flags, refreshes = flags[1:], True
            out.extend(remove_words(flags, previous_words(command)))
            fresh = fresh or refreshes
        return out, ""

    def note(self) -> str:
        return "; --no-cache becomes --update-cache (a fresh index, kept in the cache)"
