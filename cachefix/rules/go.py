"""CF501 go: `go build` and friends without cache mounts on the module cache and the build cache."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import cache_mount_covering, existing_mounts, is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.base import (
    Invocation,
    Rule,
    UserCache,
    clean_up,
    command_span,
    env_prefixes,
    image_env,
    invocation,
    kept_after_build,
    option_value,
    programs_resolved,
    shell_env,
)

GO = frozenset({"go", "xx-go"})  # xx-go: tonistiigi/xx's cross-compiling wrapper around go
# Subcommands that load packages (downloading modules) and compile (using the build cache).
BUILDING = frozenset({"build", "install", "test", "run", "generate", "get", "vet", "list"})
# `go mod ...` / `go work ...` subcommands that download modules.
MOD_DOWNLOADING = frozenset({"download", "tidy", "vendor", "verify", "graph", "why"})
WORK_DOWNLOADING = frozenset({"sync", "vendor"})
CACHE_CLEANING = frozenset({"-cache", "-modcache", "-testcache", "-fuzzcache"})
# What base images set: the golang image has GOPATH=/go (docker-library/golang).
IMAGE_ENV = {"golang": {"GOPATH": "/go"}}
_GO_ENV_FACT = re.compile(r"go-env:(?P<uid>\d+|\?):(?P<name>[A-Z0-9_]+)=(?P<value>.*)")


def go(command: Command) -> Invocation | None:
    """`go SUBCOMMAND ...` (also `xx-go`, `go -C dir ...`, `sudo go ...`)."""
    return invocation(command, GO, ("-C",))


def operands(call: Invocation) -> list[str]:
    return [w.value for w in call.args if w.value and not w.value.startswith("-")]


def uses_caches(command: Command) -> bool:
    """The command downloads modules or compiles: it wants both caches."""
    call = go(command)
    if call is None or call.subcommand is None:
        return False
    words = operands(call)
    nested = words[1] if len(words) > 1 else None
    return (call.subcommand in BUILDING or (call.subcommand == "mod" and nested in MOD_DOWNLOADING)
            or (call.subcommand == "work" and nested in WORK_DOWNLOADING))


def clean_arguments(command: Command) -> list[str | None] | None:
    """The words after `go clean`, or None when the command is not one."""
    call = go(command)
    if call is None or call.subcommand != "clean":
        return None
    values = [w.value for w in call.args]
    return values[values.index("clean") + 1:]


def cleans_caches(command: Command) -> bool:
    """`go clean -cache -modcache` (nothing else): it only empties the caches."""
    words = clean_arguments(command) or []
    return any(w in CACHE_CLEANING for w in words) and all(w in CACHE_CLEANING | {"-x"} for w in words)


def cleans_caches_and_more(command: Command) -> bool:
    words = clean_arguments(command) or []
    return not cleans_caches(command) and any(w in CACHE_CLEANING for w in words)


@dataclass(frozen=True)
class Places:
    """Where go caches for one command, and which of those places are go's defaults."""

    modules: str | None  # None: modules are not downloaded (GOPATH mode, -mod=vendor)
    modules_default: bool
    build: str | None
    build_default: bool
    bin: str | None  # where `go install` puts binaries


def places(run: RunContext, command: Command, call: Invocation) -> Places:
    """GOMODCACHE or `$GOPATH[0]/pkg/mod`; GOCACHE or `$XDG_CACHE_HOME|~/.cache` + `/go-build`.

    The go env file (`go env -w`, remembered from earlier RUNs of the stage) counts below the
    process environment, as in go itself.
    """
    env = image_env(run, command, IMAGE_ENV)
    if env.get("GOENV") != "off":
        env = {**go_env_file(run), **env}
    home = run.home or "~"
    gopath = (env.get("GOPATH") or "").split(":")[0] or f"{home.rstrip('/')}/go"
    flags = (env.get("GOFLAGS") or "").split() + [w.value or "" for w in call.args]
    vendored = "-mod=vendor" in flags and call.subcommand not in ("mod", "work")
    modules = None if env.get("GO111MODULE") == "off" or vendored else env.get("GOMODCACHE") or f"{gopath}/pkg/mod"
    build = env.get("GOCACHE") or f"{(env.get('XDG_CACHE_HOME') or home + '/.cache').rstrip('/')}/go-build"
    return Places(modules, not env.get("GOMODCACHE"), None if build == "off" else build,
                  not env.get("GOCACHE") and not env.get("XDG_CACHE_HOME"), env.get("GOBIN") or f"{gopath}/bin")


def go_env_file(run: RunContext) -> dict[str, str]:
    """What `go env -w` wrote to this user's go env file in earlier RUNs of the stage."""
    owner = str(run.uid) if run.uid is not None else "?"
    found = (_GO_ENV_FACT.fullmatch(f) for f in run.stage.facts)
    return {m["name"]: m["value"] for m in found if m is not None and m["uid"] == owner}


def remember_go_env(run: RunContext) -> None:
    """Record `go env -w NAME=value` / `go env -u NAME`: later RUNs of the stage read that file."""
    owner = str(run.uid) if run.uid is not None else "?"
    for command in run.commands:
        call = go(command)
        if call is None or call.subcommand != "env":
            continue
        values = [w.value or "" for w in call.args]
        writing = "-w" in values
        if not writing and "-u" not in values:
            continue
        for value in values:
            name = value.split("=", 1)[0]
            if not name or name.startswith("-") or name == "env":
                continue
            run.stage.facts -= {f for f in run.stage.facts if f.startswith(f"go-env:{owner}:{name}=")}
            if writing and "=" in value:
                run.stage.facts.add(f"go-env:{owner}:{value}")


class GoRule(Rule):
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
    by root, and go writes its checksum database cache to `$GOPATH/pkg/sumdb`.

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

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        remember_go_env(run)
        calls = [(c, call) for c, resolved in programs_resolved(run)
                 if uses_caches(resolved) and (call := go(resolved)) is not None]
        if not calls:
            return
        first, first_call = calls[0]
        span = command_span(run, first)
        where = places(run, first, first_call)
        wanted: list[tuple[UserCache, str]] = []
        for target, default, env_var, name in ((where.modules, where.modules_default, "GOMODCACHE", "go-mod"),
                                               (where.build, where.build_default, "GOCACHE", "go-build")):
            if target is None:
                continue
            placed = self.user_cache(run, dockerfile, first, target, target if default else None, env_var, name)
            if isinstance(placed, Finding):
                yield placed
                return
            if placed is not None:
                wanted.append((placed, name))
        problem = self._problem(dockerfile, run, calls, where, [p.target for p, _ in wanted])
        if problem is not None:
            yield self.finding(dockerfile, span, problem)
            return
        fix, changed = [], []
        for placed, name in wanted:
            stale = [m for m in existing_mounts(run.instruction) if m.is_cache and _looks_like(m.target, name)
                     and not is_within(placed.target, m.target)]
            more, missing = self.mount_edits(run, [placed.mount()], stale, several=True)
            fix += more
            changed += missing
        if not changed:
            return
        targets = [p.target for p, _ in wanted]
        plan = clean_up(run.commands, cleans_caches, targets, run.home, shell_env(run))
        for command in run.commands:
            if cleans_caches_and_more(command):
                plan.block(command, "empties the cache with its other clean-ups (take -cache and -modcache out of it)")
        if plan.breaker is not None:
            yield self.finding(dockerfile, command_span(run, plan.breaker), plan.problem(" and ".join(targets)))
            return
        pinned = [p for p, _ in wanted if p.env_var]
        if pinned and any(not c.words or c.words[0].span is None for c, _ in calls):
            yield self.finding(dockerfile, span, "go runs inside a quoted script where cachefix cannot set "
                               + " and ".join(f"{p.env_var}={p.target}" for p in pinned) + " for it; set them there "
                               "and add " + " ".join(f"`{p.mount().render()}`" for p in pinned))
            return
        fix.extend(plan.edits)
        for placed in pinned:
            fix.extend(env_prefixes([c for c, _ in calls], placed))
        yield self.finding(dockerfile, span,
                           "go downloads modules and compiles without cache mounts: add "
                           + " ".join(f"`{m.render()}`" for m in changed)
                           + "".join(f" and {p.env_var}={p.target}" for p in pinned), fix)

    @staticmethod
    def _problem(dockerfile: Dockerfile, run: RunContext, calls: list[tuple[Command, Invocation]], where: Places,
                 targets: list[str]) -> str | None:
        """Why mounting the caches would change what the image contains, or None."""
        mounts = existing_mounts(run.instruction)
        installs = any(call.subcommand in ("install", "get") for _, call in calls)
        outputs = [posixpath.join(run.stage.workdir, o) for _, call in calls
                   if call.subcommand == "build" and (o := option_value(call.args, ("-o",)))]
        for path in [*outputs, *([where.bin] if installs and where.bin else [])]:
            inside = next((t for t in targets if is_within(path, t)), None)
            if inside is not None:
                return (f"go writes {path} inside its cache {inside}: a cache mount there would keep it out of the "
                        "image; build or install elsewhere")
            held = cache_mount_covering(mounts, path)
            if held is not None:
                return (f"the cache mount on {held.target} holds {path}, where go puts what it builds: the result is "
                        "not in the image; mount only the module cache and the build cache")
        if where.modules is None:
            return None
        return kept_after_build(dockerfile, run, [where.modules], uses_caches, "go's modules")


def _looks_like(target: str, name: str) -> bool:
    """A mount someone meant for this cache: `.../pkg/mod` or `.../go-build`, or cachefix's own."""
    folder = target.rstrip("/")
    leaf = folder.rsplit("/", 1)[-1]
    return (re.fullmatch(rf"{name}-\d+", leaf) is not None
            or (folder.endswith("/pkg/mod") if name == "go-mod" else leaf == "go-build"))
