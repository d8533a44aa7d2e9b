"""CF602 bundler: `bundle install` / `gem install` without a cache mount on RubyGems' `.gem` cache."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env, shell_env
from cachefix.rewriter.mounts import cache_mount_covering, existing_mounts
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation, invocation, option_value, truthy
from cachefix.rules.cleanup import clean_up
from cachefix.rules.placement import home_not_writable, mount_fix, owned_mount
from cachefix.rules.rule import RunRule

BUNDLE_DOWNLOADING = frozenset({"install", "i", "update", "add", "cache", "package"})
GEM_DOWNLOADING = frozenset({"install", "i", "update"})
BUNDLE_TAKES_VALUE = frozenset({"--gemfile", "-j", "--jobs", "--retry", "--path", "--with", "--without",
                                "--binstubs", "--standalone", "--trust-policy"})
# What base images set: the ruby image installs gems in GEM_HOME=/usr/local/bundle, a folder
# every user may write (`chmod 777`, docker-library/ruby).
IMAGE_ENV = {"ruby": {"GEM_HOME": "/usr/local/bundle"}}
CONFIG = ("path", "deployment", "path.system")  # the `bundle config` settings that move the install


@dataclass(frozen=True)
class BundlerState:
    """What `bundle config [set] [--local|--global] path vendor/bundle` and the like set in earlier RUNs."""

    config: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        return dict(self.config).get(name)


def bundler(command: Command) -> Invocation | None:
    return invocation(command, ("bundle", "bundler"), BUNDLE_TAKES_VALUE)


def installs(command: Command) -> bool:
    if (call := bundler(command)) is not None:
        return call.subcommand is None or call.subcommand in BUNDLE_DOWNLOADING
    return (call := invocation(command, ("gem",))) is not None and call.subcommand in GEM_DOWNLOADING


def install_path(env: Mapping[str, str], call: Invocation, state: BundlerState) -> str | None:
    """Where Bundler installs when not into GEM_HOME (BUNDLE_PATH, `path`, `--path`,
    deployment's `vendor/bundle`): then the gems go to `<path>/ruby/<ABI version>`."""
    values = [w.value for w in call.args]
    if "--system" in values or truthy(env.get("BUNDLE_PATH__SYSTEM")) or truthy(state.get("path.system")):
        return None
    path = option_value(call.args, ("--path",)) or env.get("BUNDLE_PATH") or state.get("path")
    deployment = "--deployment" in values or truthy(env.get("BUNDLE_DEPLOYMENT")) or truthy(state.get("deployment"))
    return path or ("vendor/bundle" if deployment else None)


class BundlerRule(RunRule):
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
    is not root whose uid the file does not show, or with a GEM_HOME not known to be writable
    by it.
    """

    code = "CF602"
    name = "bundler-cache-mount"
    manager = "bundler"
    summary = "bundle install or gem install without a cache mount on the .gem cache"
    triggers = ("bundle", "gem")
    observes = ("bundle",)
    State = BundlerState

    def observe(self, run: RunContext, state: object) -> BundlerState:
        assert isinstance(state, BundlerState)
        config = dict(state.config)
        for command in run.commands:
            call = bundler(command)
            if call is None or call.subcommand != "config":
                continue
            words = [w.value or "" for w in call.args if not (w.value or "").startswith("-")][1:]
            words = words[1:] if words[:1] in (["set"], ["unset"]) else words
            if len(words) >= 2 and words[0] in CONFIG:
                config[words[0]] = words[1]
        return BundlerState(tuple(sorted(config.items())))

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        assert isinstance(state, BundlerState)
        calls = [c for c in run.commands if installs(c)]
        if not calls:
            return
        gem_home, problem = self._gem_home(run, calls, state)
        if problem is None and (held := cache_mount_covering(existing_mounts(run.instruction), gem_home)):
            problem = (f"the cache mount on {held.target} holds GEM_HOME ({gem_home}), where the gems are installed: "
                       f"they are not in the image; mount only {gem_home}/cache")
        if problem is None:  # the ruby image's GEM_HOME is everyone's (`chmod 777`)
            writable = run.stage.image in IMAGE_ENV and "GEM_HOME" not in command_env(run, calls[0])
            problem = home_not_writable(run, self.manager, "GEM_HOME", gem_home, writable)
        if problem is not None:
            yield self.at(run, calls[0], problem)
            return
        target = f"{gem_home}/cache"
        mounts = mount_fix(run, [owned_mount(target, "gem-cache", run.uid, run.gid, self.options, "locked")],
                           self.options, self.manager)
        if not mounts.flags:
            return
        plan = clean_up(run.commands, lambda command: False, [target], run.home,
                        {**shell_env(run), "GEM_HOME": gem_home})
        if plan.breaker is not None:
            yield self.at(run, plan.breaker, plan.problem(target))
            return
        yield self.at(run, calls[0], f"gems are downloaded without a locked cache mount on {target}: add "
                                     + " ".join(f"`{f}`" for f in mounts.flags), [*mounts.edits, *plan.edits],
                      mounts=mounts.flags)

    @staticmethod
    def _gem_home(run: RunContext, calls: list[Command], state: BundlerState) -> tuple[str, str | None]:
        """The one gem home every install of the RUN uses, or the reason it is not known."""
        homes: set[str] = set()
        for command in calls:
            env = {**IMAGE_ENV.get(run.stage.image, {}), **command_env(run, command)}
            if (call := bundler(command)) is not None:
                if (path := install_path(env, call, state)) is not None:
                    path = posixpath.join(run.stage.workdir, path)
                    return "", (f"Bundler installs into {path}/ruby/<Ruby ABI version>, and keeps the .gem files "
                                "in its `cache` folder there; the version is not in this file: add "
                                f"`--mount=type=cache,target={path}/ruby/3.3.0/cache,sharing=locked` (for Ruby 3.3)")
            elif (call := invocation(command, ("gem",))) is not None:
                if "--user-install" in [w.value for w in call.args]:
                    return "", ("`gem install --user-install` installs into ~/.gem/ruby/<Ruby version>, whose "
                                "`cache` folder this file does not show: mount it, or install into GEM_HOME")
                if directory := option_value(call.args, ("-i", "--install-dir")):
                    homes.add(directory.rstrip("/"))
                    continue
            if not env.get("GEM_HOME"):
                return "", ("RubyGems keeps downloaded .gem files in $GEM_HOME/cache, and this file does not show "
                            "GEM_HOME (a distribution's Ruby names it after its version): set ENV GEM_HOME, or "
                            "mount that folder's `cache` with `sharing=locked`")
            homes.add(env["GEM_HOME"].rstrip("/"))
        if len(homes) != 1:
            return "", (f"the gems of this RUN go to several places ({', '.join(sorted(homes))}): mount the "
                        "`cache` folder of each")
        return homes.pop(), None
