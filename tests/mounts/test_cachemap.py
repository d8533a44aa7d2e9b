"""The cache map of one Dockerfile: BuildKit's defaults, variable expansion, build arguments, stages."""

from __future__ import annotations

import pytest

from cachefix.mounts.cachemap import MountProblem, distinct_caches, go_clean, host_platform_args, mounts_in
from cachefix.mounts.identity import CacheIdentity
from cachefix.rewriter.dockerfile import parse


def _mounts(text: str, build_args: dict[str, str] | None = None):
    return mounts_in(parse(text), "Dockerfile", build_args)


def test_buildkit_defaults_id_is_the_target_root_owned_0755_shared():
    (mount,) = _mounts("FROM debian\nRUN --mount=type=cache,target=/var/cache/apt apt-get update\n")
    assert mount.identity == CacheIdentity(id="/var/cache/apt", uid="0", gid="0", mode="0755")
    assert (mount.target, mount.sharing, mount.stage, mount.path, mount.line) == (
        "/var/cache/apt", "shared", "0", "Dockerfile", 2)


def test_only_cache_mounts_are_listed_and_options_are_read_case_insensitively():
    text = ("FROM debian\n"
            "RUN --mount=type=bind,source=.,target=/src --mount=type=secret,id=tok \\\n"
            "    --mount=TYPE=Cache,DST=/root/.npm,Sharing=LOCKED --mount=target=/x true\n")
    (mount,) = _mounts(text)
    assert (mount.target, mount.sharing, mount.identity.id) == ("/root/.npm", "locked", "/root/.npm")


def test_default_id_is_the_cleaned_target_as_written():
    text = "FROM debian\nWORKDIR /app\nRUN --mount=type=cache,target=node_modules/.cache/ true\n" \
           "RUN --mount=type=cache,target=//root/.cache//pip/ true\n"
    relative, doubled = _mounts(text)
    assert relative.identity.id == "node_modules/.cache" and relative.target == "/app/node_modules/.cache"
    assert doubled.identity.id == "/root/.cache/pip" and doubled.target == "/root/.cache/pip"
    assert go_clean("") == "." and go_clean("//a/./b/../c") == "/a/c"


def test_uid_gid_mode_come_from_args_env_and_build_args_and_mode_is_octal():
    text = ("FROM python:3.11\n"
            "ARG UID=1000\n"
            "ENV CACHE=/var/cache/pip-${UID}\n"
            "RUN --mount=type=cache,id=pip-$UID,target=${CACHE},uid=${UID},gid=${UID},mode=755 pip install x\n")
    (mount,) = _mounts(text)
    assert mount.identity == CacheIdentity("pip-1000", "1000", "1000", "0755", explicit=True)
    assert mount.target == "/var/cache/pip-1000"
    (moved,) = _mounts(text, {"UID": "2000"})
    assert moved.identity == CacheIdentity("pip-2000", "2000", "2000", "0755", explicit=True)
    assert moved.target == "/var/cache/pip-2000"


def test_a_build_arg_fills_an_arg_without_default_and_a_global_arg():
    text = ("ARG BASE_ID=base\nFROM debian\nARG BASE_ID\nARG FLAVOUR\n"
            "RUN --mount=type=cache,id=${BASE_ID}-${FLAVOUR},target=/c true\n")
    assert _mounts(text)[0].identity.id == "base-"
    assert _mounts(text, {"BASE_ID": "x", "FLAVOUR": "gpu"})[0].identity.id == "x-gpu"


def test_an_undeclared_build_arg_changes_nothing():
    text = "FROM debian\nRUN --mount=type=cache,id=c-${UID},target=/c true\n"
    assert _mounts(text, {"UID": "7"})[0].identity.id == "c-"


def test_targetarch_is_this_machines_unless_given():
    text = "FROM debian\nARG TARGETARCH\nRUN --mount=type=cache,id=apt-${TARGETARCH},target=/var/cache/apt true\n"
    assert _mounts(text)[0].identity.id == f"apt-{host_platform_args()['TARGETARCH']}"
    assert _mounts(text, {"TARGETARCH": "arm64"})[0].identity.id == "apt-arm64"
    assert host_platform_args()["TARGETPLATFORM"].startswith("linux/")


def test_stages_are_named_or_numbered_and_inherit_variables():
    text = ("FROM golang:1.22 AS build\nENV GOMODCACHE=/go/pkg/mod\n"
            "RUN --mount=type=cache,target=$GOMODCACHE go mod download\n"
            "FROM build\nRUN --mount=type=cache,target=${GOMODCACHE} go build\n")
    first, second = _mounts(text)
    assert (first.stage, second.stage) == ("build", "1")
    assert first.identity == second.identity


def test_onbuild_runs_are_not_part_of_this_build():
    text = "FROM debian\nONBUILD RUN --mount=type=cache,target=/x true\n"
    assert _mounts(text) == []


@pytest.mark.parametrize("options, problem", [
    ("target=/c,uid=abc", "invalid value 'abc' for uid"),
    ("target=/c,gid=-1", "invalid value '-1' for gid"),
    ("target=/c,mode=999", "invalid value '999' for mode"),
    ("target=/c,uid=4294967296", "out of range"),
    ("target=/c,sharing=sometimes", "unsupported sharing value 'sometimes'"),
    ("id=c", "without a target"),
])
def test_a_mount_buildkit_refuses_is_a_problem_with_its_place(options, problem):
    with pytest.raises(MountProblem, match=problem) as caught:
        _mounts(f"FROM debian\n\nRUN --mount=type=cache,{options} true\n")
    assert str(caught.value).startswith("Dockerfile:3: ")


def test_distinct_caches_keys_on_id_uid_gid_mode_not_on_target_or_sharing():
    text = ("FROM debian\n"
            "RUN --mount=type=cache,target=/root/.cache/pip true\n"
            "RUN --mount=type=cache,id=/root/.cache/pip,target=/elsewhere,sharing=locked true\n"
            "RUN --mount=type=cache,target=/root/.cache/pip,uid=1000 true\n"
            "RUN --mount=type=cache,target=/root/.cache/pip,mode=0755,uid=0 true\n")
    # `mode=0755,uid=0` are the defaults, but written they make BuildKit use another cache
    assert distinct_caches(_mounts(text)) == [CacheIdentity("/root/.cache/pip"),
                                              CacheIdentity("/root/.cache/pip", explicit=True),
                                              CacheIdentity("/root/.cache/pip", uid="1000", explicit=True)]


def test_each_mount_records_the_image_its_stage_is_built_from():
    """dockerd's copy build runs `tar` in that image; a stage FROM scratch has none to offer."""
    text = ("ARG PY=3.11\nFROM python:${PY}-slim AS build\nRUN --mount=type=cache,target=/root/.cache/pip true\n"
            "FROM scratch\nRUN --mount=type=cache,target=/cache true\n")
    built, empty = _mounts(text, {"PY": "3.12"})
    assert (built.image, empty.image) == ("python:3.12-slim", "")
