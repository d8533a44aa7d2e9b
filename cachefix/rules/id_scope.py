"""`--id-scope distro|arch`: one cache per distribution release or per architecture.

A cache mount's id defaults to its target, so every build on a builder shares `/var/cache/apt`
or `/root/.cache/pip`: a bookworm and a jammy image would mix their `.deb` files, and an arm64
and an amd64 build their compiled wheels (moby/buildkit#2598). With a scope, cachefix writes
`id=<id or target>-<scope>`:
- distro: the release named by the stage's static FROM (`python:3.11-slim-bookworm` and
  `debian:12` give `debian-bookworm`, `ubuntu:jammy` and `ubuntu:22.04` give `ubuntu-22.04`,
  `python:3.12-alpine3.20` gives `alpine-3.20`). A FROM that names no release (`python:3.11`,
  whose Debian release changes over time, or `FROM $BASE`) leaves the mount unscoped.
- arch: a static `FROM --platform=linux/arm64` gives `arm64`; otherwise the id holds
  `${TARGETARCH}` (`${BUILDARCH}` in a stage `FROM --platform=$BUILDPLATFORM`, whose RUNs run on
  the build machine), which BuildKit fills in. Automatic platform ARGs reach a stage's RUNs only
  when the stage declares them (docs.docker.com, "Automatic platform ARGs in the global scope"),
  so the fix adds a bare `ARG TARGETARCH` after the stage's FROM when it has none. The variable
  is expanded by the Dockerfile frontend 1.3 and later (moby/buildkit#2089) and by buildah;
  dockerd 20.10's built-in frontend keeps it as written (README, "Cache mounts in CI").
"""

from __future__ import annotations

import re

from cachefix.model import Edit
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, image_name, image_tag
from cachefix.rewriter.dockerfile import Instruction
from cachefix.rewriter.mounts import CacheMount
from cachefix.rewriter.stages import lineage

ID_SCOPES = ("distro", "arch")

_DEBIAN = {"7": "wheezy", "8": "jessie", "9": "stretch", "10": "buster", "11": "bullseye", "12": "bookworm",
           "13": "trixie", "14": "forky"}
_UBUNTU = {"trusty": "14.04", "xenial": "16.04", "bionic": "18.04", "focal": "20.04", "jammy": "22.04",
           "lunar": "23.04", "mantic": "23.10", "noble": "24.04", "oracular": "24.10", "plucky": "25.04",
           "questing": "25.10"}
_MAJOR = {"fedora": "fedora", "rockylinux": "rocky", "almalinux": "alma", "amazonlinux": "amzn", "centos": "centos",
          "oraclelinux": "ol"}
# A release inside another image's tag: `-alpine3.20`, `-ubuntu22.04` (nvidia/cuda), `-rockylinux9`, `-ubi9`.
_IN_TAG = re.compile(r"(?P<name>alpine|ubuntu|rockylinux|ubi)(?P<release>\d+(?:\.\d+)?)")


def distro_of(reference: str) -> str | None:
    """The distribution release an image reference names, or None when it names none."""
    if "$" in reference:
        return None
    name, tag = image_name(reference), image_tag(reference)
    words = re.split(r"[-_]", tag)
    if name == "debian":
        release = words[0].split(".")[0]
        release = _DEBIAN.get(release, release)
        return f"debian-{release}" if release in _DEBIAN.values() or release == "sid" else None
    if name == "ubuntu":
        release = _UBUNTU.get(words[0], words[0])
        return f"ubuntu-{release}" if re.fullmatch(r"\d\d\.\d\d", release) else None
    if name == "alpine":
        release = re.match(r"\d+\.\d+", tag)
        return f"alpine-{release.group(0)}" if release else None
    if name in _MAJOR:
        release = re.match(r"\d+", tag)
        return f"{_MAJOR[name]}-{release.group(0)}" if release else None
    for word in words:
        if word in _DEBIAN.values():
            return f"debian-{word}"
        if word in _UBUNTU:
            return f"ubuntu-{_UBUNTU[word]}"
        if found := _IN_TAG.fullmatch(word):
            kind = {"rockylinux": "rocky"}.get(found.group("name"), found.group("name"))
            return f"{kind}-{found.group('release')}"
    return None


def _stage_from(run: RunContext, index: int) -> Instruction:
    return [i for i in run.dockerfile.instructions if i.keyword == "FROM"][index]


def _platform(run: RunContext) -> str | None:
    """The `--platform` of the nearest FROM in the stage's lineage that has one."""
    for index in lineage(run.replay.stages, run.stage.index):
        values = _stage_from(run, index).flag_values("platform")
        if values and values[0]:
            return values[0]
    return None


def _arch(run: RunContext) -> tuple[str, str | None]:
    """The arch part of the id, and the automatic ARG it needs declared (None: a static platform)."""
    platform = _platform(run)
    if platform is not None and "$" not in platform:
        parts = platform.split("/")
        return (parts[1] if len(parts) > 1 else parts[0]), None
    variable = "BUILDARCH" if platform is not None and "BUILDPLATFORM" in platform else "TARGETARCH"
    return "${" + variable + "}", variable


def _declared(run: RunContext, name: str) -> bool:
    """An `ARG name` in the RUN's stage before the RUN."""
    before = run.instruction.span[0]
    return any(i.keyword == "ARG" and i.span[0] < before and any(v.partition("=")[0] == name for v in i.value)
               for i in run.stage.instructions)


def _declaration(run: RunContext, name: str) -> Edit:
    """`ARG name` on a line of its own right after the stage's FROM (the same edit for every RUN
    of the stage, which the engine applies once)."""
    end = _stage_from(run, run.stage.index).span[1]
    return edits.insert(end, f"{run.dockerfile.newline}ARG {name}")


def scoped(run: RunContext, mount: CacheMount, scope: str | None) -> tuple[CacheMount, list[Edit]]:
    """The mount with its id scoped, and the edits that scope needs (an ARG declaration); the
    mount as it was when there is no scope or the FROM names no release."""
    if scope is None:
        return mount, []
    extra: list[Edit] = []
    if scope == "distro":
        suffix = distro_of(run.stage.base_image)
        if suffix is None:
            return mount, []
    else:
        suffix, needs = _arch(run)
        if needs is not None and run.instruction.keyword == "ONBUILD":
            return mount, []  # it runs in another build, whose stages this file cannot declare the ARG in
        if needs is not None and not _declared(run, needs):
            extra.append(_declaration(run, needs))
    return mount._replace(id=f"{mount.id or mount.target}-{suffix}"), extra
