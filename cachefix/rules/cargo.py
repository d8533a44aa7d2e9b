"""CF502 cargo: `cargo build` and friends without cache mounts on cargo's registry and git database."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import ExistingMount, cache_mount_covering, existing_mounts, is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.base import (
    Invocation,
    Rule,
    command_span,
    image_env,
    image_name,
    invocation,
    kept_after_build,
    option_value,
    programs_resolved,
    shell_env,
    word_path,
)

# Subcommands that download crates.
DOWNLOADING = frozenset({"build", "b", "install", "fetch", "test", "t", "run", "r", "check", "c", "clippy", "doc",
                         "d", "bench", "vendor", "update", "generate-lockfile", "zigbuild"})
# Plugins, and their subcommands that build: `cargo chef cook`, `cargo auditable build`, ...
PLUGINS = {"chef": {"cook"}, "auditable": {"build", "install", "zigbuild"},
           "xwin": {"build", "test", "run", "check", "clippy"},
           "nextest": {"run", "archive"}}
BUILDING = frozenset({"build", "b", "zigbuild", "auditable", "xwin"})
COPIES = frozenset({"cp", "mv", "install", "rsync"})
# What base images set: the rust image has CARGO_HOME=/usr/local/cargo, writable by every user
# (`chmod -R a+w $RUSTUP_HOME $CARGO_HOME`, rust-lang/docker-rust); cargo-chef's image is built
# FROM it (LukeMathWalker/cargo-chef, docker/Dockerfile).
IMAGE_ENV = {image: {"CARGO_HOME": "/usr/local/cargo"} for image in ("rust", "lukemathwalker/cargo-chef")}
_OWNED_HOME = "cargo-home-owned:{uid}:{home}"  # a stage fact: rustup made this CARGO_HOME as this user


def cargo(command: Command) -> Invocation | None:
    """`cargo [+toolchain] SUBCOMMAND ...` (the toolchain is not the subcommand)."""
    call = invocation(command, ("cargo",), ("--config", "-Z", "--color", "-C"))
    if call is not None and call.subcommand is not None and call.subcommand.startswith("+"):
        rest = [w.value for w in call.args if w.value and not w.value.startswith(("-", "+"))]
        return Invocation(call.program, rest[0] if rest else None, call.args)
    return call


def downloads(command: Command) -> bool:
    call = cargo(command)
    if call is None:
        return False
    if call.subcommand in PLUGINS:
        words = [w.value for w in call.args if w.value and not w.value.startswith(("-", "+"))]
        return len(words) > 1 and words[1] in PLUGINS[call.subcommand]
    return call.subcommand in DOWNLOADING


def cargo_home(run: RunContext, command: Command) -> str:
    """CARGO_HOME, or `~/.cargo` (rustup's and cargo's default)."""
    env = image_env(run, command, IMAGE_ENV)
    return env.get("CARGO_HOME") or f"{(run.home or '~').rstrip('/')}/.cargo"


def writable_home(run: RunContext, command: Command, home: str) -> bool:
    """CARGO_HOME is known to be writable by a user that is not root: the rust image's own, or
    one rustup created as this user in an earlier RUN. Cargo writes more than the registry
    there (`.package-cache`, `git/checkouts`), and a mount would create missing parents as root."""
    if image_name(run) in IMAGE_ENV and "CARGO_HOME" not in command_env(run, command):
        return True
    return _OWNED_HOME.format(uid=run.uid, home=home) in run.stage.facts


def remember_rustup(run: RunContext) -> None:
    """A RUN that installs rustup as a user that is not root leaves a CARGO_HOME owned by it."""
    if run.is_root or not run.mentions(("rustup",)):
        return
    for command in run.commands:
        if "rustup" in command.name or any("sh.rustup.rs" in w.raw for w in command.args):
            run.stage.facts.add(_OWNED_HOME.format(uid=run.uid, home=cargo_home(run, command)))


class CargoRule(Rule):
    """
    ## What it does
    Finds `cargo build`, `cargo install`, `cargo fetch`, `cargo test`, `cargo run` (also
    `check`, `clippy`, `doc`, `zigbuild`, `auditable build`, `chef cook`, `xwin build`) in a
    RUN without cache mounts on `$CARGO_HOME/registry` and `$CARGO_HOME/git/db`, and adds them.

    ## Why is this bad?
    Every rebuild of the layer downloads the registry index and every crate again. Cargo keeps
    them in `$CARGO_HOME/registry` (index, `.crate` files, unpacked sources) and git
    dependencies in `$CARGO_HOME/git/db` (the Cargo Book, "Cargo Home"). CARGO_HOME is
    `~/.cargo`, or `/usr/local/cargo` in the rust image.

    CARGO_HOME itself is never mounted: `bin/` holds cargo, rustup's proxies and what
    `cargo install` installs. Neither is `target/`: the built binary would be in the mount,
    not in the image. Mounting `target/` as well does speed up builds, but only with the
    binary copied out in the same RUN:
    `RUN --mount=type=cache,target=/app/target cargo build --release && cp target/release/app /usr/local/bin/`.

    For a user that is not root the registry is mounted (with its uid) only where CARGO_HOME
    is known to be writable by it, the rust image's or one rustup created as that user, and
    `git/db` is left out: cargo writes next to them (`.package-cache`, `git/checkouts`), and a
    mount would create the missing parent folders owned by root.

    ## Example
    ```dockerfile
    FROM rust:1.79 AS build
    RUN cargo build --release --locked
    ```

    ## Use instead
    ```dockerfile
    FROM rust:1.79 AS build
    RUN --mount=type=cache,target=/usr/local/cargo/registry --mount=type=cache,target=/usr/local/cargo/git/db cargo build --release --locked
    ```

    ## Fix safety
    Safe: cargo takes its own file locks in the registry. `rm -rf $CARGO_HOME/registry` in
    the RUN that gains the mount is removed (when the RUN removes `$CARGO_HOME/git` too, all
    of `git` is mounted, so the removal can go). Not fixed, and reported instead: an existing
    cache mount that holds `target/` of a `cargo build` with nothing copied out, or that holds
    CARGO_HOME's `bin/` for `cargo install`, an image that runs cargo when it starts, and a
    user for whom CARGO_HOME is not known to be writable.
    """  # noqa: E501

    code = "CF502"
    name = "cargo-cache-mount"
    manager = "cargo"
    summary = "cargo build without cache mounts on cargo's registry and git database"
    triggers = ("cargo", "rustup")

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        remember_rustup(run)
        calls = [(c, call) for c, resolved in programs_resolved(run)
                 if downloads(resolved) and (call := cargo(resolved)) is not None]
        if not calls:
            return
        first, _ = calls[0]
        span = command_span(run, first)
        home = cargo_home(run, first)
        env = {**shell_env(run), "CARGO_HOME": home}
        removes_git = any(word_path(w, env, run.home) in (f"{home}/git", f"{home}/git/")
                          for c in run.commands if c.name == "rm" for w in c.args)
        targets = [f"{home}/registry", f"{home}/git" if removes_git else f"{home}/git/db"]
        unwritable = self.home_not_writable(dockerfile, run, first, "CARGO_HOME", home, writable_home(run, first, home))
        if unwritable is not None:
            yield unwritable
            return
        if not run.is_root:
            targets = targets[:1]  # git/db's parent, `git`, would be created root-owned
        problem = self._problem(dockerfile, run, calls, home, targets)
        if problem is not None:
            yield self.finding(dockerfile, span, problem)
            return
        fix, changed = self.mount_edits(run, [self.owned_mount(t, f"cargo-{t.rsplit('/', 1)[-1]}", run.uid, run.gid)
                                              for t in targets])
        if changed:
            yield self.mounts_finding(dockerfile, run, span, fix, changed, targets,
                                      "cargo downloads crates without cache mounts", env={"CARGO_HOME": home})

    @staticmethod
    def _problem(dockerfile: Dockerfile, run: RunContext, calls: list[tuple[Command, Invocation]], home: str,
                 targets: list[str]) -> str | None:
        """Why mounting the caches would lose something the image needs, or None."""
        mounts = existing_mounts(run.instruction)
        if any(call.subcommand == "install" for _, call in calls):
            held = cache_mount_covering(mounts, f"{home}/bin")
            if held is not None:
                return (f"the cache mount on {held.target} holds {home}/bin, where `cargo install` puts binaries: "
                        "they are not in the image; mount only the registry and git database")
        for command, call in calls:
            if call.subcommand in BUILDING:
                held = _target_mount(run, command, call, mounts)
                if held is not None and not _copied_out(run, held.target):
                    return (f"the cache mount on {held.target} holds cargo's target folder and nothing in this RUN "
                            "copies the build out of it, so the binary is not in the image: copy it out in the same "
                            "RUN (`cargo build --release && cp target/release/APP /usr/local/bin/`)")
        return kept_after_build(dockerfile, run, targets, downloads, "cargo's crates")


def _absolute(run: RunContext, path: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(run.stage.workdir, path))


def _target_mount(run: RunContext, command: Command, call: Invocation,
                  mounts: list[ExistingMount]) -> ExistingMount | None:
    """The cache mount holding the folder this build writes to (`--target-dir`, CARGO_TARGET_DIR, ./target)."""
    folder = (option_value(call.args, ("--target-dir",)) or command_env(run, command).get("CARGO_TARGET_DIR")
              or "target")
    return cache_mount_covering(mounts, _absolute(run, folder))


def _copied_out(run: RunContext, folder: str) -> bool:
    """A `cp`/`mv`/`install` in the RUN takes something out of `folder`."""
    for command in run.commands:
        if command.name in COPIES:
            for word in command.args:
                if word.value and not word.value.startswith("-") and is_within(_absolute(run, word.value), folder):
                    return True
    return False
