"""CF201 apt: `apt-get install` without cache mounts on apt's archives and package lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cachefix.model import Edit
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation
from cachefix.rules.system_cache import SystemCacheRule

# The `docker-clean` file of the Debian and Ubuntu images hooks `rm -f /var/cache/apt/archives/*.deb`
# onto every dpkg run and every `apt-get update`, and an option cannot take an entry out of a hook
# list. Keeping the .debs in another folder of the same mount puts them out of its reach and
# changes no file of the image (deleting docker-clean would change every later RUN).
ARCHIVES_OPTION = "Dir::Cache::Archives=/var/cache/apt/debs/"
# `apt` (unlike `apt-get`) deletes .debs after installing unless told to keep them; a command-line
# option is read after its built-in `Binary::apt::` default, so it wins.
KEEP_OPTION = "APT::Keep-Downloaded-Packages=true"


@dataclass(frozen=True)
class AptState:
    """What earlier RUNs of the stage did to apt's settings."""

    docker_clean_removed: bool = False
    keeps_debs: bool = False  # Keep-Downloaded-Packages written into apt's configuration


class AptRule(SystemCacheRule):
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
    observes = ("docker-clean", "Keep-Downloaded-Packages")
    State = AptState
    programs = frozenset({"apt-get", "apt", "aptitude"})
    downloading = frozenset({"install", "update", "upgrade", "dist-upgrade", "full-upgrade", "build-dep",
                             "download", "source", "reinstall"})
    takes_value = frozenset({"-o", "--option", "-c", "--config-file", "-t", "--target-release", "-a",
                             "--host-architecture"})
    # One lock serialises every apt RUN. It goes on the archives, mounted last: buildah 1.28 keeps its
    # lock file inside the cache, and `apt-get update` deletes unknown files in the lists folder.
    folders = ("/var/lib/apt/lists", "/var/cache/apt")
    locked = "/var/cache/apt"
    clean_ups = ("clean", "autoclean")
    deletions_corrupt = True

    def observe(self, run: RunContext, state: object) -> AptState:
        assert isinstance(state, AptState)
        removed = any(c.name == "rm" and any((w.value or "").endswith("/etc/apt/apt.conf.d/docker-clean")
                                             for w in c.args) for c in run.commands)
        keeps = any(self.call(c) is None and any("Keep-Downloaded-Packages" in w.raw for w in c.args)
                    for c in run.commands)
        return AptState(state.docker_clean_removed or removed, state.keeps_debs or keeps)

    def extra_edits(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                    state: object) -> tuple[list[Edit], str]:
        """The `-o` options that keep each installing call's .debs in the cache, right after the
        program word: the archives out of docker-clean's reach, and `apt`'s Keep-Downloaded-Packages."""
        assert isinstance(state, AptState)
        out: list[Edit] = []
        missing: list[str] = []
        for command, call in calls:
            if call.subcommand in ("update", "download", "source"):
                continue  # they leave no .debs in the archives
            options = [o for o, key, wanted in (
                (ARCHIVES_OPTION, "Dir::Cache", not state.docker_clean_removed),
                (KEEP_OPTION, "APT::Keep-Downloaded-Packages", call.program == "apt" and not state.keeps_debs))
                if wanted and not _has_option(call, key)]
            program = command.words[len(command.words) - len(call.args) - 1]
            if not options:
                continue
            if program.span is None:
                missing.extend(f"`-o {o}`" for o in options if f"`-o {o}`" not in missing)
                continue
            text = "".join(f" -o {o}" if run.shell_form else f', "-o", "{o}"' for o in options)
            out.append(edits.insert(program.span[1], text))
        return out, " and ".join(missing)


def _has_option(call: Invocation, key: str) -> bool:
    """Whether the apt call sets `key` (or a setting under it) with `-o`/`--option`."""
    values = [w.value or "" for w in call.args]
    given = [values[i + 1] for i, v in enumerate(values[:-1]) if v in ("-o", "--option")]
    given += [v[2:] if v.startswith("-o") else v.removeprefix("--option=")
              for v in values if v.startswith(("-o", "--option=")) and v not in ("-o", "--option")]
    return any(g.lower().startswith(key.lower()) for g in given)
