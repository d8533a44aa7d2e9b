"""CF602 bundler: `bundle install` / `gem install` without a cache mount on RubyGems' `.gem` cache."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import cache_mount_covering, existing_mounts
from cachefix.rewriter.shell import Command
from cachefix.rules.base import (
    Invocation,
    Rule,
    command_span,
    image_env,
    image_name,
    invocation,
    option_value,
    truthy,
)

BUNDLE_DOWNLOADING = frozenset({"install", "i", "update", "add", "cache", "package"})
GEM_DOWNLOADING = frozenset({"install", "i", "update"})
# What base images set: the ruby image installs gems in GEM_HOME=/usr/local/bundle, a folder
# every user may write (`chmod 777`, docker-library/ruby).
IMAGE_ENV = {"ruby": {"GEM_HOME": "/usr/local/bundle"}}
# Two builds writing one .gem at once must not meet half-written files.
SHARING = "locked"
_CONFIG_FACT = re.compile(r"bundle-config:(?P<name>path|deployment|path\.system)=(?P<value>.*)")


def bundler(command: Command) -> Invocation | None:
    return invocation(command, ("bundle", "bundler"), ("--gemfile", "-j", "--jobs", "--retry", "--path", "--with",
                                                       "--without", "--binstubs", "--standalone", "--trust-policy"))


def gem(command: Command) -> Invocation | None:
    return invocation(command, ("gem",), ())


def installs(command: Command) -> bool:
    call = bundler(command)
    if call is not None:
        return call.subcommand is None or call.subcommand in BUNDLE_DOWNLOADING
    call = gem(command)
    return call is not None and call.subcommand in GEM_DOWNLOADING


def remember_bundle_config(run: RunContext) -> None:
    """`bundle config [set] [--local|--global] path vendor/bundle` and the like, for later RUNs."""
    for command in run.commands:
        call = bundler(command)
        if call is None or call.subcommand != "config":
            continue
        words = [w.value or "" for w in call.args if not (w.value or "").startswith("-")][1:]
        words = words[1:] if words[:1] in (["set"], ["unset"]) else words
        if len(words) >= 2 and words[0] in ("path", "deployment", "path.system"):
            run.stage.facts -= {f for f in run.stage.facts if f.startswith(f"bundle-config:{words[0]}=")}
            run.stage.facts.add(f"bundle-config:{words[0]}={words[1]}")


def install_path(run: RunContext, command: Command, call: Invocation) -> str | None:
    """Where Bundler installs when not into GEM_HOME (BUNDLE_PATH, `path`, `--path`,
    deployment's `vendor/bundle`): then the gems go to `<path>/ruby/<ABI version>`."""
    env = command_env(run, command)
    config = {m["name"]: m["value"] for f in run.stage.facts if (m := _CONFIG_FACT.fullmatch(f))}
    values = [w.value for w in call.args]
    if "--system" in values or truthy(env.get("BUNDLE_PATH__SYSTEM")) or truthy(config.get("path.system")):
        return None
    path = option_value(call.args, ("--path",)) or env.get("BUNDLE_PATH") or config.get("path")
    deployment = "--deployment" in values or truthy(env.get("BUNDLE_DEPLOYMENT")) or truthy(config.get("deployment"))
    return path or ("vendor/bundle" if deployment else None)


class BundlerRule(Rule):
    """
    ## What it does
    Finds `bundle install` (also `bundle update`, a bare `bundle`) and `gem install` in a RUN
    without a cache mount on RubyGems' download cache, `$GEM_HOME/cache`, and adds one with
    `sharing=locked`.

    ## Why is this bad?
    Every rebuild of the layer downloads every gem again. RubyGems and Bundler download each
    `.gem` into the `cache` folder of the gem home they install into, and use a `.gem` found
    there instead of downloading it (RubyGems' `RemoteFetcher#download`, Bundler's
    `Source::Rubygems#fetch_gem`). The ruby image installs into GEM_HOME=/usr/local/bundle.

    Only `$GEM_HOME/cache` is mounted, never GEM_HOME itself: that is where the gems are
    installed. Its `.gem` files are not needed at run time (slim images delete them); with the
    mount they simply stay out of the image.

    Bundler's own global cache (`BUNDLE_GLOBAL_GEM_CACHE=true` plus a mount on
    `~/.bundle/cache`) is not used: it also caches compiled native extensions, keyed by Ruby
    version and platform but not by the system libraries they link against, so a mount shared
    between images could put an extension built against another image's libraries into this one.

    Where Bundler installs into a path of its own (BUNDLE_PATH, `--path`, deployment mode) its
    cache is `<path>/ruby/<ABI version>/cache`, and the ABI version is not in the Dockerfile:
    that is reported with the mount to add, not fixed.

    ## Example
    ```dockerfile
    FROM ruby:3.3
    COPY Gemfile Gemfile.lock ./
    RUN bundle install --jobs 4
    ```

    ## Use instead
    ```dockerfile
    FROM ruby:3.3
    COPY Gemfile Gemfile.lock ./
    RUN --mount=type=cache,target=/usr/local/bundle/cache,sharing=locked bundle install --jobs 4
    ```

    ## Fix safety
    Safe. `rm -rf /usr/local/bundle/cache/*.gem` is removed from the RUN that gains the mount.
    Not fixed, and reported instead: a GEM_HOME the file does not show (`gem` of a distribution
    package installs into a folder named after the Ruby version), `gem install --user-install`,
    an install path of Bundler's own, a cache mount that holds GEM_HOME itself, and a user that
    is not root with a GEM_HOME not known to be writable by it.
    """

    code = "CF602"
    name = "bundler-cache-mount"
    manager = "bundler"
    summary = "bundle install or gem install without a cache mount on the .gem cache"
    triggers = ("bundle", "gem")

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        remember_bundle_config(run)
        calls = [c for c in run.commands if installs(c)]
        if not calls:
            return
        first = calls[0]
        span = command_span(run, first)
        gem_home, problem = self._gem_home(run, calls)
        if problem is not None:
            yield self.finding(dockerfile, span, problem)
            return
        assert gem_home is not None
        target = f"{gem_home}/cache"
        held = cache_mount_covering(existing_mounts(run.instruction), gem_home)
        if held is not None:
            yield self.finding(dockerfile, span,
                               f"the cache mount on {held.target} holds GEM_HOME ({gem_home}), where the gems are "
                               f"installed: they are not in the image; mount only {target}")
            return
        writable = image_name(run) in IMAGE_ENV and "GEM_HOME" not in command_env(run, first)
        unwritable = self.home_not_writable(dockerfile, run, first, "GEM_HOME", gem_home, writable)
        if unwritable is not None:
            yield unwritable
            return
        mount = self.owned_mount(target, "gem-cache", run.uid, run.gid, SHARING)
        fix, changed = self.mount_edits(run, [mount])
        if changed:
            yield self.mounts_finding(dockerfile, run, span, fix, changed, [target],
                                      f"gems are downloaded without a locked cache mount on {target}",
                                      env={"GEM_HOME": gem_home})

    @staticmethod
    def _gem_home(run: RunContext, calls: list[Command]) -> tuple[str | None, str | None]:
        """The one gem home every install of the RUN uses, or the reason it is not known."""
        homes: set[str] = set()
        for command in calls:
            env = image_env(run, command, IMAGE_ENV)
            call = bundler(command)
            if call is not None:
                path = install_path(run, command, call)
                if path is not None:
                    path = posixpath.join(run.stage.workdir, path)
                    return None, (f"Bundler installs into {path}/ruby/<Ruby ABI version>, and keeps the .gem files "
                                  "in its `cache` folder there; the version is not in this file: add "
                                  f"`--mount=type=cache,target={path}/ruby/3.3.0/cache,sharing=locked` (for Ruby "
                                  "3.3)")
            else:
                call = gem(command)
                assert call is not None
                if "--user-install" in [w.value for w in call.args]:
                    return None, ("`gem install --user-install` installs into ~/.gem/ruby/<Ruby version>, whose "
                                  "`cache` folder this file does not show: mount it, or install into GEM_HOME")
                directory = option_value(call.args, ("-i", "--install-dir"))
                if directory:
                    homes.add(directory.rstrip("/"))
                    continue
            if not env.get("GEM_HOME"):
                return None, ("RubyGems keeps downloaded .gem files in $GEM_HOME/cache, and this file does not show "
                              "GEM_HOME (a distribution's Ruby names it after its version): set ENV GEM_HOME, or "
                              "mount that folder's `cache` with `sharing=locked`")
            homes.add(env["GEM_HOME"].rstrip("/"))
        if len(homes) != 1:
            return None, (f"the gems of this RUN go to several places ({', '.join(sorted(homes))}): mount the "
                          "`cache` folder of each")
        return homes.pop(), None
