"""CF501 go: `go build` and friends without cache mounts on the module cache and the build cache."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.mounts import cache_mount_covering, existing_mounts, is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.after_build import needed_after_build
from cachefix.rules.calls import Invocation, invocation, option_value
from cachefix.rules.cleanup import CleanUp
from cachefix.rules.user_cache import Cache, Placed, UserCacheRule

GO = frozenset({"go", "xx-go"})  # xx-go: tonistiigi/xx's cross-compiling wrapper around go
# Subcommands that load packages (downloading modules) and compile (using the build cache).
BUILDING = frozenset({"build", "install", "test", "run", "generate", "get", "vet", "list"})
# `go mod ...` / `go work ...` subcommands that download modules.
NESTED = {"mod": frozenset({"download", "tidy", "vendor", "verify", "graph", "why"}),
          "work": frozenset({"sync", "vendor"})}
CACHE_CLEANING = frozenset({"-cache", "-modcache", "-testcache", "-fuzzcache"})


def go(command: Command) -> Invocation | None:
    """`go SUBCOMMAND ...` (also `xx-go`, `go -C dir ...`, `sudo go ...`)."""
    return invocation(command, GO, ("-C",))


def values(call: Invocation) -> list[str]:
    return [w.value or "" for w in call.args]


def uses_caches(command: Command) -> bool:
    """The command downloads modules or compiles: it wants both caches."""
    call = go(command)
    operands = [v for v in values(call) if v and not v.startswith("-")] if call else []
    return call is not None and (call.subcommand in BUILDING or (
        len(operands) > 1 and operands[1] in NESTED.get(operands[0], ())))


def clean_words(command: Command) -> list[str]:
    """The words after `go clean` (none when the command is not one)."""
    call = go(command)
    words = values(call) if call is not None and call.subcommand == "clean" else []
    return words[words.index("clean") + 1:] if words else []


def only_cleans_caches(words: Sequence[str]) -> bool:
    """`go clean -cache -modcache` (nothing else): it only empties the caches."""
    return any(w in CACHE_CLEANING for w in words) and all(w in CACHE_CLEANING | {"-x"} for w in words)


@dataclass(frozen=True)
class GoState:
    """What `go env -w` wrote to each user's go env file in earlier RUNs: (uid, name, value)."""

    written: tuple[tuple[int | None, str, str], ...] = ()


@dataclass(frozen=True)
class GoCache(Cache):
    """A go cache found as go finds it: the go env file counts below the environment (not with
    GOENV=off); GOPATH's first entry is the one; the module cache is off in GOPATH mode and with
    `-mod=vendor`. Only GOMODCACHE and GOCACHE are the user's choice: GOPATH (the golang image's
    `/go`) holds more than the cache, so for another user the cache moves out of it."""

    written: tuple[tuple[str, str], ...] = ()

    def resolve(self, call: Invocation, env: Mapping[str, str], home: str | None) -> tuple[str | None, bool]:
        env = {**(dict(self.written) if env.get("GOENV") != "off" else {}), **env}
        env["GOPATH"] = env.get("GOPATH", "").split(":")[0]
        vendored = "-mod=vendor" in env.get("GOFLAGS", "").split() + values(call) and call.subcommand not in NESTED
        if self.name == "go-mod" and (env.get("GO111MODULE") == "off" or vendored):
            return None, True
        target, _ = super().resolve(call, env, home)
        return target, bool(env.get(self.variable))


class GoRule(UserCacheRule):
    """
    ## What it does
    Finds `go build`, `go install`, `go test`, `go run`, `go generate`, `go get`, `go mod
    download` (also `tidy`, `vendor`, `verify`) in a RUN without cache mounts on go's module
    cache and build cache, and adds both.

    ## Why is this bad?
    Every rebuild of the layer downloads every module and compiles every package again. Go
    keeps modules in `GOMODCACHE` (default `$GOPATH/pkg/mod`; the golang image sets
    `GOPATH=/go`, so `/go/pkg/mod`) and compiled packages in `GOCACHE` (default
    `~/.cache/go-build`, `/root/.cache/go-build` for root). Both are caches: go fetches or
    rebuilds what is missing, and a mount keeps them out of the image.

    `go mod download` only fills the module cache: with the mount, the modules stay in the
    mount, and the later `go build` gets the same mount, so it finds them there.

    For a user that is not root, both caches move out of the home folder and out of GOPATH
    (`/var/cache/go-mod-UID` and `/var/cache/go-build-UID`, owned by that uid, with GOMODCACHE
    and GOCACHE set for each go command): a mount at `/go/pkg/mod` would leave `/go/pkg` owned
    by root, and go writes its checksum database cache to `$GOPATH/pkg/sumdb`. A user created
    without `-u` gets the uid the base image's tools give it, where the image is known. What
    `go env -w` wrote in earlier RUNs counts, as in go.

    ## Example
    ```dockerfile
    FROM golang:1.22
    RUN go mod download && CGO_ENABLED=0 go build -o /app ./cmd/app
    ```

    ## Use instead
    ```dockerfile
    FROM golang:1.22
    RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build go mod download && CGO_ENABLED=0 go build -o /app ./cmd/app
    ```

    ## Fix safety
    Safe: GOBIN (`$GOPATH/bin`, where `go install` puts binaries) is never mounted.
    `go clean -cache -modcache` and `rm -rf` of the caches are removed from the RUN that gains
    the mounts. Not fixed, and reported instead: a go that writes its result into a cache
    (`-o`, GOBIN), an existing cache mount that holds GOBIN, an `rm` of a folder holding a
    cache (it would fail on the mount point), an image whose CMD or ENTRYPOINT runs go (it
    needs the modules in the image) or a stage whose module cache another stage copies.
    """  # noqa: E501

    code = "CF501"
    name = "go-cache-mount"
    manager = "go"
    summary = "go build without cache mounts on go's module and build caches"
    triggers = ("go ", "go\t")
    observes = ("env",)
    State = GoState
    caches = (GoCache(("$GOMODCACHE", "$GOPATH/pkg/mod", "~/go/pkg/mod"), name="go-mod"),
              GoCache(("$GOCACHE", "$XDG_CACHE_HOME/go-build", "~/.cache/go-build"), name="go-build"))
    image_env: ClassVar[Mapping[str, Mapping[str, str]]] = {"golang": {"GOPATH": "/go"}}  # docker-library/golang

    def observe(self, run: RunContext, state: object) -> GoState:
        """`go env -w NAME=value` / `go env -u NAME`: later RUNs of the stage read the go env file."""
        assert isinstance(state, GoState)
        written = list(state.written)
        for command in run.commands:
            call = go(command)
            words = values(call) if call is not None and call.subcommand == "env" else []
            for word in words[words.index("env") + 1:] if {"-w", "-u"} & set(words) else []:
                name, sep, value = word.partition("=")
                if name and not name.startswith("-"):
                    written = [w for w in written if w[:2] != (run.uid, name)]
                    written += [(run.uid, name, value)] if sep and "-w" in words else []
        return GoState(tuple(written))

    def caches_for(self, run: RunContext, state: object) -> tuple[Cache, ...]:
        assert isinstance(state, GoState)
        written = tuple((name, value) for uid, name, value in state.written if uid == run.uid)
        return tuple(replace(cache, written=written) for cache in self.caches)

    def calls(self, run: RunContext) -> list[tuple[Command, Invocation]]:
        return [(c, call) for c in run.commands if uses_caches(c) and (call := go(c))]

    def is_clean_up(self, command: Command) -> bool:
        return only_cleans_caches(clean_words(command))

    def refusal(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                placed: Sequence[Placed]) -> Finding | None:
        """Why mounting the caches would change what the image contains, or None."""
        (first, call), targets = calls[0], [p.mount.target for p in placed]
        env = self.environment(run, first)
        gopath = env.get("GOPATH", "").split(":")[0] or f"{(run.home or '~').rstrip('/')}/go"
        results = [posixpath.join(run.stage.workdir, o) for _, c in calls
                   if c.subcommand == "build" and (o := option_value(c.args, ("-o",)))]
        if any(c.subcommand in ("install", "get") for _, c in calls):
            results.append(env.get("GOBIN") or f"{gopath}/bin")
        for path in results:
            if inside := next((t for t in targets if is_within(path, t)), None):
                return self.at(run, first, f"go writes {path} inside its cache {inside}: a cache mount there would "
                                           "keep it out of the image; build or install elsewhere")
            if held := cache_mount_covering(existing_mounts(run.instruction), path):
                return self.at(run, first, f"the cache mount on {held.target} holds {path}, where go puts what it "
                                           "builds: the result is not in the image; mount only the module cache and "
                                           "the build cache")
        modules = self.caches[0].resolve(call, env, run.home)[0]
        if modules and (reason := needed_after_build(run, [modules], uses_caches, "go's modules")):
            return self.at(run, first, reason)
        mixed = next((c for c in run.commands if (w := clean_words(c)) and not only_cleans_caches(w)
                      and CACHE_CLEANING & set(w)), None)
        if mixed is None:
            return None
        plan = CleanUp([])
        plan.block(mixed, "empties the cache with its other clean-ups (take -cache and -modcache out of it)")
        return self.at(run, mixed, plan.problem(" and ".join(targets)))
