"""CF203 dnf: `dnf`/`yum`/`microdnf`/`tdnf install` without a locked cache mount and keepcache."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cachefix.model import Edit, Finding
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, image_name, image_tag
from cachefix.rewriter.shell import Command, Word, iter_options
from cachefix.rules.calls import Invocation, invocation
from cachefix.rules.system_cache import SystemCacheRule

DNF4, DNF5, YUM, TDNF = "/var/cache/dnf", "/var/cache/libdnf5", "/var/cache/yum", "/var/cache/tdnf"
# `1` is the one spelling every one of them takes: microdnf accepts only 0 or 1.
KEEPCACHE = "--setopt=keepcache=1"
FALSE = frozenset({"0", "false", "no", "off"})
# Where each program caches; `dnf` and `yum` depend on the image (below), microdnf and tdnf do not.
FIXED = {"microdnf": (YUM,), "tdnf": (TDNF,), "dnf5": (DNF5,), "dnf-3": (DNF4,), "dnf4": (DNF4,)}
BY_FAMILY = {"dnf4": (DNF4,), "dnf5": (DNF5,)}

# What `dnf` and `yum` are in well-known base images.
_YUM3_IMAGES = re.compile(r"(^|/)(centos:(centos)?7|amazonlinux:2($|[.-])|oraclelinux:7|ubi7|rhel7|sl:7)")
_DNF4_IMAGES = re.compile(r"(^|/)(centos:(centos)?8|centos:stream\d+|rockylinux(/rockylinux)?:\d|almalinux:\d"
                          r"|oraclelinux:(8|9|10)|ubi(8|9|10)(/|$|:)|rhel(8|9|10)|amazonlinux:2023|fedora:(3\d|40)\b)")
_DNF5_IMAGES = re.compile(r"(^|/)fedora(:(4[1-9]|[5-9]\d|latest|rawhide))?$")


def image_family(image: str) -> str | None:
    """`yum3`, `dnf4` or `dnf5` for a base image whose package manager is known, else None
    (the tag matters, so this reads the image reference as written, not `Stage.image`)."""
    name = f"{image_name(image)}:{image_tag(image)}" if image else ""
    for family, pattern in (("yum3", _YUM3_IMAGES), ("dnf4", _DNF4_IMAGES), ("dnf5", _DNF5_IMAGES)):
        if pattern.search(name):
            return family
    return None


def cache_dirs(program: str, family: str | None) -> tuple[str, ...]:
    """Where this program caches; for `dnf`/`yum` in an image that does not tell, every candidate."""
    if program in FIXED:
        return FIXED[program]
    if family == "yum3":
        return (YUM,) if program == "yum" else (DNF4, DNF5)
    return BY_FAMILY.get(family or "", (YUM, DNF4, DNF5) if program == "yum" else (DNF4, DNF5))


def setopt(call: Invocation, name: str) -> tuple[Word, str] | None:
    """The `--setopt=name=value` word of a call and its value."""
    words = list(call.args)
    for i, option, inline in iter_options(words):
        if option == "--setopt":
            value = inline if inline is not None else (words[i + 1].value if i + 1 < len(words) else None)
            key, _, setting = (value or "").partition("=")
            if key == name:
                return (words[i] if inline is not None else words[i + 1]), setting
    return None


@dataclass(frozen=True)
class DnfState:
    """Whether an earlier RUN of the stage set keepcache=1 in the configuration."""

    keepcache: bool = False


class DnfRule(SystemCacheRule):
    """
    ## What it does
    Finds `dnf`, `yum`, `microdnf` and `tdnf` installs in a RUN without a locked cache mount on
    their cache folder, adds the mount and `--setopt=keepcache=1`.

    ## Why is this bad?
    Every rebuild downloads the repository metadata and every package again. Two things are
    needed for the cache to work, and the fix does both:
    - the mount, where the tool caches: `/var/cache/dnf` (dnf 4), `/var/cache/libdnf5`
      (dnf 5, Fedora 41 and newer), `/var/cache/yum` (yum 3 and microdnf), `/var/cache/tdnf`.
      `yum` is yum 3 on CentOS 7 and Amazon Linux 2 but dnf on EL 8 and newer, and `dnf` is
      dnf 5 from Fedora 41: both are read from the base image. When the image does not tell
      (a private or an `ARG` image), every folder the command may use is mounted: an unused
      cache mount costs nothing, while a guess that misses caches nothing.
    - `keepcache`: dnf, yum and microdnf delete each package after a successful transaction
      (keepcache defaults to false; `/etc/yum.conf` ships `keepcache=0`), so only metadata
      would be cached. `1` is the spelling microdnf accepts (it takes only 0 or 1).
    `sharing=locked`: dnf's lock files live in the cache and only guard one container; two
    builds writing one cache at once can corrupt it.

    `dnf clean all` and `rm -rf /var/cache/dnf` would empty the mount and are not needed any
    more (the mount never enters the image); they are removed from the RUN that gains the
    mount, and only there. A RUN that already has the mount but still cleans it (a heredoc
    script ending in `dnf clean all`, say) loses the clean-up too: it would empty the cache on
    every build.

    ## Example
    ```dockerfile
    RUN dnf install -y gcc && dnf clean all
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/var/cache/dnf,sharing=locked dnf --setopt=keepcache=1 install -y gcc
    ```

    ## Fix safety
    Safe with current tools: microdnf accepts `--setopt=keepcache=` since 3.6 (2021,
    microdnf#98) and tdnf since tdnf#461. dnf re-reads repository metadata older than
    `metadata_expire` (48 hours by default, less for Fedora's updates repository), as it
    does on any host; within that time a build uses the cached metadata. Not fixed, and
    reported: `--installroot` (the cache is under that root), and an `rm` of a folder that
    holds the cache (it would fail on the mount point).
    """

    code = "CF203"
    name = "dnf-cache-mount"
    manager = "dnf"
    summary = "dnf/yum/microdnf install without a locked cache mount and keepcache"
    triggers = ("dnf", "yum")
    observes = ("keepcache",)
    State = DnfState
    programs = frozenset({"dnf", "dnf-3", "dnf4", "dnf5", "yum", "microdnf", "tdnf"})
    downloading = frozenset({"install", "in", "reinstall", "update", "upgrade", "up", "update-minimal",
                             "upgrade-minimal", "groupinstall", "groupupdate", "group", "module", "localinstall",
                             "distro-sync", "distrosync", "downgrade", "builddep", "makecache", "swap"})
    takes_value = frozenset({"-c", "--config", "--installroot", "--releasever", "--setopt", "--enablerepo",
                             "--disablerepo", "--repo", "--repoid", "-x", "--exclude", "-d", "--debuglevel", "-e",
                             "--errorlevel", "--rpmverbosity", "--forcearch", "--repofrompath", "--use-host-config"})
    clean_ups = ("clean",)

    def observe(self, run: RunContext, state: object) -> DnfState:
        """`echo keepcache=1 >> /etc/dnf/dnf.conf` or `dnf config-manager --save --setopt=keepcache=True`."""
        assert isinstance(state, DnfState)
        return DnfState(state.keepcache or any(self._sets_keepcache(c) for c in run.commands))

    def _sets_keepcache(self, command: Command) -> bool:
        values = [w.value or "" for w in command.args]
        if not any(re.fullmatch(r"(--setopt=)?keepcache\s*=\s*(1|true|yes|on)", v.strip(), re.I) for v in values):
            return False
        return command.name in ("echo", "printf") or (invocation(command, self.programs) is not None
                                                      and "--save" in values)

    def calls(self, run: RunContext) -> list[tuple[Command, Invocation]]:
        """The downloading calls, less those that only read the cache (`-C`)."""
        return [(c, a) for c, a in super().calls(run) if not any(w.value in ("-C", "--cacheonly") for w in a.args)]

    def targets(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                state: object) -> tuple[str, ...] | Finding:
        if any(w.value and w.value.startswith("--installroot") for _, a in calls for w in a.args):
            return self.at(run, calls[0][0], "dnf installs into --installroot, so it caches under that root; "
                                             "cachefix does not mount a cache inside another root")
        family = image_family(run.stage.base_image)
        found: list[str] = []
        for _, call in calls:
            chosen = setopt(call, "cachedir")
            mine = (chosen[1],) if chosen and chosen[1].startswith("/") else cache_dirs(call.program, family)
            found.extend(t for t in mine if t not in found)
        return tuple(found)

    def extra_edits(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                    state: object) -> tuple[list[Edit], str]:
        """`--setopt=keepcache=1` right after the program, or an explicit keepcache=0 turned to 1."""
        assert isinstance(state, DnfState)
        out: list[Edit] = []
        missing = ""
        for command, call in calls:
            found = setopt(call, "keepcache")
            if state.keepcache or call.subcommand == "makecache" or (found and found[1].strip().lower() not in FALSE):
                continue
            if found is not None and found[0].span is not None:
                word = found[0]
                raw = word.raw if run.shell_form else f'"{word.value}"'
                quote = raw[-1] if raw[-1] in "'\"" else ""
                out.append(Edit(*word.span, raw[: raw.rindex("=") + 1] + "1" + quote))
                continue
            program = next(w for w in command.words if w.value and w.value.rsplit("/", 1)[-1] == call.program)
            if found is not None or program.span is None:
                missing = f"`{KEEPCACHE}`"
            else:
                out.append(edits.insert(program.span[1], f" {KEEPCACHE}" if run.shell_form else f', "{KEEPCACHE}"'))
        return out, missing

    def note(self) -> str:
        return "; and keepcache=1 (it deletes packages after installing)"
