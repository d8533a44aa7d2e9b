"""CF201 apt: `apt-get install` without cache mounts on apt's archives and package lists."""

from __future__ import annotations

from collections.abc import Iterable

from cachefix.model import Finding
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import CacheMount
from cachefix.rewriter.shell import Command
from cachefix.rules.base import Invocation, Rule, clean_up, command_span, invocation, shell_env

APT = frozenset({"apt-get", "apt", "aptitude"})
DOWNLOADING = frozenset({"install", "update", "upgrade", "dist-upgrade", "full-upgrade", "build-dep",
                         "download", "source", "reinstall"})
ARCHIVES = "/var/cache/apt"
LISTS = "/var/lib/apt/lists"
DISABLE_DOCKER_CLEAN = "rm -f /etc/apt/apt.conf.d/docker-clean"
# `apt` (unlike `apt-get`) deletes .debs after installing unless told to keep them.
KEEP_DEBS_FOR_APT = "echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache"
KEEP_DEBS_FOR_APT_WITH_SUDO = ("echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' "
                               "| sudo tee /etc/apt/apt.conf.d/keep-cache > /dev/null")
KEEPS_DEBS_FACT = "apt-keeps-debs"


# Options whose value is the next word (`apt-get -o Dpkg::Options::=--force-confold install`).
TAKES_VALUE = ("-o", "--option", "-c", "--config-file", "-t", "--target-release", "-a", "--host-architecture")


def apt_call(command: Command) -> Invocation | None:
    """`apt-get`/`apt`/`aptitude`, also behind `sudo [-u x]`."""
    return invocation(command, APT, TAKES_VALUE)


def apt_subcommand(command: Command) -> str | None:
    call = apt_call(command)
    return call.subcommand if call else None


def disables_docker_clean(command: Command) -> bool:
    return command.name == "rm" and any(
        (w.value or "").endswith("/etc/apt/apt.conf.d/docker-clean") for w in command.args)


class AptRule(Rule):
    """
    ## What it does
    Finds `apt-get install` / `apt install` / `apt-get update` in a RUN without cache mounts
    on `/var/cache/apt` (the downloaded .debs) and `/var/lib/apt/lists` (the package lists),
    and adds both, the archives with `sharing=locked`.

    ## Why is this bad?
    Every rebuild of the layer downloads the package lists and every .deb again. Three things
    are needed for apt's cache to work in a build, and the fix does all three:
    - `sharing=locked` on the archives: apt takes a lock in both folders, and two builds
      sharing a cache at once fail with `Could not get lock` (buildkit#1662). BuildKit holds
      a locked mount for the whole RUN, so one lock serialises every apt RUN. It is on
      `/var/cache/apt`, the last mount of the RUN, because buildah before 1.29 (Debian
      bookworm's 1.28) keeps its lock file inside the cache (`apt-get update` deletes
      unknown files in the lists folder, so a lock there is never released) and releases
      only the lock of a RUN's last mount (buildah#4342, #4349): either way the next apt RUN
      would wait forever.
    - the `docker-clean` hook of the Debian and Ubuntu images deletes each .deb right after
      it is installed, so it is removed in the first RUN of the stage that installs (and,
      where the RUN uses `apt` rather than `apt-get`, `Keep-Downloaded-Packages` is set: only
      `apt` defaults it to false).
    - `rm -rf /var/lib/apt/lists/*` and `apt-get clean` would empty the cache, and are not
      needed any more: the mounted folders never enter the image. They are removed from the
      RUN that gains the mounts, and only there.

    Only `/var/lib/apt/lists` is mounted, not all of `/var/lib/apt`: the rest of it holds
    `extended_states`, apt's record of which packages were installed automatically, which
    belongs in the image (`apt-get autoremove` in a later layer needs it).

    ## Example
    ```dockerfile
    RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/var/lib/apt/lists --mount=type=cache,target=/var/cache/apt,sharing=locked rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update && apt-get install -y curl
    ```

    ## Fix safety
    Safe. A later RUN that installs without `apt-get update` still works: it gets the same
    mounts, so it sees the lists the earlier RUN downloaded.
    """  # noqa: E501

    code = "CF201"
    name = "apt-cache-mount"
    manager = "apt"
    summary = "apt-get install without cache mounts on apt's archives and lists"
    triggers = ("apt",)

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        if any(disables_docker_clean(c) for c in run.commands):
            run.stage.facts.add(KEEPS_DEBS_FACT)
        apts = [c for c in run.commands if apt_subcommand(c) in DOWNLOADING]
        if not apts:
            return
        first = apts[0]
        if run.uid not in (0, None) and all(c.name != "sudo" for c in apts):
            return  # apt as a non-root user fails before it downloads anything
        # One lock serialises every apt RUN. It goes on the archives: buildah 1.28 keeps its lock
        # file inside the cache, and `apt-get update` deletes unknown files in the lists folder.
        wanted = [CacheMount(LISTS), CacheMount(ARCHIVES, sharing="locked")]
        fix, changed = self.mount_edits(run, wanted)
        if not changed:
            return
        plan = clean_up(run.commands, lambda c: apt_subcommand(c) in ("clean", "autoclean"), [ARCHIVES, LISTS],
                        run.home, shell_env(run), deletions_corrupt=True)
        if plan.breaker is not None:
            yield self.finding(dockerfile, command_span(run, plan.breaker), plan.problem(f"{ARCHIVES} and {LISTS}"))
            return
        if KEEPS_DEBS_FACT not in run.stage.facts:
            # A user that is not root runs apt through sudo: the preamble needs it too.
            sudo = "sudo " if not run.is_root else ""
            steps = [sudo + DISABLE_DOCKER_CLEAN]
            if any((call := apt_call(c)) is not None and call.program == "apt" for c in apts):
                steps.append(KEEP_DEBS_FOR_APT_WITH_SUDO if sudo else KEEP_DEBS_FOR_APT)
            keep = edits.preamble(run, " && ".join(steps), dockerfile.newline)
            if keep is not None:
                fix.append(keep)
                run.stage.facts.add(KEEPS_DEBS_FACT)
        fix.extend(plan.edits)
        targets = " and ".join(m.target for m in changed)
        yield self.finding(dockerfile, command_span(run, first),
                           f"apt downloads without cache mounts on {targets}", fix)
