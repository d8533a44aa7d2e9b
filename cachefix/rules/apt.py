"""CF201 apt: `apt-get install` without cache mounts on apt's archives and package lists."""

from __future__ import annotations

from collections.abc import Iterable

from cachefix.model import Edit, Finding
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
# Subcommands that leave .debs in Dir::Cache::Archives (`download` and `source` write to the
# current folder, `update` only fetches lists).
FILLING_ARCHIVES = DOWNLOADING - {"update", "download", "source"}
# The `docker-clean` file of the Debian and Ubuntu images hooks `rm -f /var/cache/apt/archives/*.deb`
# onto every dpkg run and every `apt-get update`, and an option cannot take an entry out of a hook
# list. Keeping the .debs in another folder of the same mount puts them out of its reach and
# changes no file of the image (deleting docker-clean would change every later RUN).
KEPT_ARCHIVES = f"{ARCHIVES}/debs/"
ARCHIVES_OPTION = f"Dir::Cache::Archives={KEPT_ARCHIVES}"
# `apt` (unlike `apt-get`) deletes .debs after installing unless told to keep them; a command-line
# option is read after its built-in `Binary::apt::` default, so it wins.
KEEP_OPTION = "APT::Keep-Downloaded-Packages=true"
DOCKER_CLEAN_GONE = "apt-docker-clean-removed"  # an earlier RUN of the stage deleted docker-clean
APT_KEEPS_DEBS = "apt-keeps-debs"  # an earlier RUN wrote Keep-Downloaded-Packages into apt's settings


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


def sets_keep_debs(command: Command) -> bool:
    """`echo 'APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/...` (not an apt call's `-o`)."""
    return apt_call(command) is None and any("Keep-Downloaded-Packages" in w.raw for w in command.args)


def has_option(call: Invocation, key: str) -> bool:
    """Whether the apt call sets `key` (or a setting under it) with `-o`/`--option`."""
    values = [w.value or "" for w in call.args]
    given = [values[i + 1] for i, v in enumerate(values[:-1]) if v in ("-o", "--option")]
    given += [v[2:] if v.startswith("-o") else v.removeprefix("--option=")
              for v in values if v.startswith(("-o", "--option=")) and v not in ("-o", "--option")]
    return any(g.lower().startswith(key.lower()) for g in given)


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
    - the `docker-clean` file of the Debian and Ubuntu images hooks `rm -f
      /var/cache/apt/archives/*.deb` onto every dpkg run and every `apt-get update`, so each
      .deb would be deleted right after it is installed. Each call that installs gets
      `-o Dir::Cache::Archives=/var/cache/apt/debs/`: the packages are kept in another folder
      of the same mount, out of the hook's reach. An apt option cannot take an entry out of a
      hook list, and deleting `docker-clean` would change the image: every later RUN, and
      every image built on this one, would keep .debs in its layers. Where the RUN uses
      `apt` rather than `apt-get`, the call also gets `-o APT::Keep-Downloaded-Packages=true`
      (only `apt` defaults it to false). Neither is added where the file already deleted
      `docker-clean` or set `Keep-Downloaded-Packages` itself.
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
    RUN --mount=type=cache,target=/var/lib/apt/lists --mount=type=cache,target=/var/cache/apt,sharing=locked apt-get update && apt-get -o Dir::Cache::Archives=/var/cache/apt/debs/ install -y curl
    ```

    ## Fix safety
    Safe: no file of the image changes. The options act on the one apt call they are given
    to; `docker-clean` stays as it is, so later RUNs and images built on this one behave as
    before. What leaves the image is what the mounts hold: the package lists and the .debs,
    which the original RUN deleted or should have. A later RUN that installs without
    `apt-get update` still works: it gets the same mounts, so it sees the lists the earlier
    RUN downloaded. Where the base image had package lists in `/var/lib/apt/lists` (the
    official images have none), the mount hides them for that RUN and they stay in the image.
    """  # noqa: E501

    code = "CF201"
    name = "apt-cache-mount"
    manager = "apt"
    summary = "apt-get install without cache mounts on apt's archives and lists"
    triggers = ("apt",)

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        if any(disables_docker_clean(c) for c in run.commands):
            run.stage.facts.add(DOCKER_CLEAN_GONE)
        if any(sets_keep_debs(c) for c in run.commands):
            run.stage.facts.add(APT_KEEPS_DEBS)
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
        targets = " and ".join(m.target for m in changed)
        keep, missing = self._keep_debs(run, apts)
        if missing:
            yield self.finding(dockerfile, command_span(run, first),
                               f"apt downloads without cache mounts on {targets}, and cachefix cannot edit its "
                               f"command here (inside a quoted script): add {missing} to it and the mounts "
                               f"`{'` `'.join(m.render() for m in changed)}`")
            return
        yield self.finding(dockerfile, command_span(run, first),
                           f"apt downloads without cache mounts on {targets}", [*fix, *keep, *plan.edits])

    @staticmethod
    def _keep_debs(run: RunContext, apts: list[Command]) -> tuple[list[Edit], str]:
        """The `-o` options that keep each call's .debs in the cache, right after the program word:
        the archives out of docker-clean's reach, and `apt`'s Keep-Downloaded-Packages. Also the
        options that could not be placed (the program word has no place in the file), as text."""
        out: list[Edit] = []
        missing: list[str] = []
        for command in apts:
            call = apt_call(command)
            if call is None or call.subcommand not in FILLING_ARCHIVES:
                continue
            options = []
            if DOCKER_CLEAN_GONE not in run.stage.facts and not has_option(call, "Dir::Cache"):
                options.append(ARCHIVES_OPTION)
            if call.program == "apt" and APT_KEEPS_DEBS not in run.stage.facts and \
                    not has_option(call, KEEP_OPTION.split("=")[0]):
                options.append(KEEP_OPTION)
            program = command.words[len(command.words) - len(call.args) - 1]
            if not options:
                continue
            if program.span is None:
                missing.extend(f"`-o {o}`" for o in options if f"`-o {o}`" not in missing)
                continue
            text = "".join(f" -o {o}" if run.shell_form else f', "-o", "{o}"' for o in options)
            out.append(edits.insert(program.span[1], text))
        return out, " and ".join(missing)
