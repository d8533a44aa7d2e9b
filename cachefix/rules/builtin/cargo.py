"""CF502 cargo: `cargo build` and friends without cache mounts on cargo's registry and git database."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env, shell_env, word_path
from cachefix.rewriter.mounts import cache_mount_covering, existing_mounts, is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.after_build import needed_after_build
from cachefix.rules.calls import Invocation, invocation, option_value
from cachefix.rules.cleanup import clean_up
from cachefix.rules.placement import home_not_writable, mount_fix, owned_mount
from cachefix.rules.rule import RunRule

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


def cargo(command: Command) -> Invocation | None:
    """`cargo [+toolchain] SUBCOMMAND ...` (the toolchain is not the subcommand), when it downloads."""
    call = invocation(command, ("cargo",), ("--config", "-Z", "--color", "-C"))
    if call is None or call.subcommand is None:
        return None
    operands = [w.value for w in call.args if w.value and not w.value.startswith(("-", "+"))]
    subcommand = operands[0] if call.subcommand.startswith("+") and operands else call.subcommand
    if subcommand in PLUGINS:
        return call if len(operands) > 1 and operands[1] in PLUGINS[subcommand] else None
    return Invocation(call.program, subcommand, call.args) if subcommand in DOWNLOADING else None


def cargo_home(run: RunContext, command: Command) -> str:
    """CARGO_HOME, or `~/.cargo` (rustup's and cargo's default)."""
    env = {**IMAGE_ENV.get(run.stage.image, {}), **command_env(run, command)}
    return env.get("CARGO_HOME") or f"{(run.home or '~').rstrip('/')}/.cargo"


@dataclass(frozen=True)
class CargoState:
    """The CARGO_HOMEs rustup created as a user that is not root in earlier RUNs: (uid, folder)."""

    owned: frozenset[tuple[int | None, str]] = frozenset()


class CargoRule(RunRule):
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
    triggers = ("cargo",)
    observes = ("rustup",)
    State = CargoState

    def observe(self, run: RunContext, state: object) -> CargoState:
        """A RUN that installs rustup as a user that is not root leaves a CARGO_HOME owned by it."""
        assert isinstance(state, CargoState)
        made = {(run.uid, cargo_home(run, c)) for c in run.commands
                if "rustup" in c.name or any("sh.rustup.rs" in w.raw for w in c.args)}
        return state if run.is_root else CargoState(state.owned | made)

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        assert isinstance(state, CargoState)
        calls = [(c, call) for c in run.commands if (call := cargo(c))]
        if not calls:
            return
        first = calls[0][0]
        home = cargo_home(run, first)
        # Writable: the rust image's own CARGO_HOME, or one rustup created as this user. Cargo
        # writes more than the registry there (`.package-cache`, `git/checkouts`).
        writable = ((run.stage.image in IMAGE_ENV and "CARGO_HOME" not in command_env(run, first))
                    or (run.uid, home) in state.owned)
        env = {**shell_env(run), "CARGO_HOME": home}
        removes_git = any(word_path(w, env, run.home) in (f"{home}/git", f"{home}/git/")
                          for c in run.commands if c.name == "rm" for w in c.args)
        targets = [f"{home}/registry", f"{home}/git" if removes_git else f"{home}/git/db"]
        targets = targets if run.is_root else targets[:1]  # git/db's parent, `git`, would be created root-owned
        problem = (home_not_writable(run, self.manager, "CARGO_HOME", home, writable)
                   or self._problem(run, calls, home, targets))
        if problem is not None:
            yield self.at(run, first, problem)
            return
        wanted = [owned_mount(t, f"cargo-{t.rsplit('/', 1)[-1]}", run.uid, run.gid, self.options) for t in targets]
        mounts = mount_fix(run, wanted, self.options, self.manager)
        plan = clean_up(run.commands, lambda command: False, targets, run.home, env)
        if not mounts.flags:
            return
        if plan.breaker is not None:
            yield self.at(run, plan.breaker, plan.problem(" and ".join(targets)))
            return
        yield self.at(run, first, "cargo downloads crates without cache mounts: add "
                      + " ".join(f"`{f}`" for f in mounts.flags), [*mounts.edits, *plan.edits], mounts=mounts.flags)

    @staticmethod
    def _problem(run: RunContext, calls: list[tuple[Command, Invocation]], home: str, targets: list[str]) -> str | None:
        """Why mounting the caches would lose something the image needs, or None."""
        mounts = existing_mounts(run.instruction)
        held = cache_mount_covering(mounts, f"{home}/bin")
        if held is not None and any(call.subcommand == "install" for _, call in calls):
            return (f"the cache mount on {held.target} holds {home}/bin, where `cargo install` puts binaries: "
                    "they are not in the image; mount only the registry and git database")
        for command, call in calls:
            folder = (option_value(call.args, ("--target-dir",)) or command_env(run, command).get("CARGO_TARGET_DIR")
                      or "target")
            held = cache_mount_covering(mounts, _absolute(run, folder)) if call.subcommand in BUILDING else None
            if held is not None and not _copied_out(run, held.target):
                return (f"the cache mount on {held.target} holds cargo's target folder and nothing in this RUN "
                        "copies the build out of it, so the binary is not in the image: copy it out in the same "
                        "RUN (`cargo build --release && cp target/release/APP /usr/local/bin/`)")
        return needed_after_build(run, targets, lambda c: cargo(c) is not None, "cargo's crates")


def _absolute(run: RunContext, path: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(run.stage.workdir, path))


def _copied_out(run: RunContext, folder: str) -> bool:
    """A `cp`/`mv`/`install` in the RUN takes something out of `folder`."""
    return any(w.value and not w.value.startswith("-") and is_within(_absolute(run, w.value), folder)
               for c in run.commands if c.name in COPIES for w in c.args)
