"""`--id-scope distro|arch` (and `id-scope` in the configuration): ids `fix` writes, and `mounts list` reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cachefix.cli import main
from cachefix.rewriter.dockerfile import parse
from cachefix.rewriter.guard import unintended_change
from cachefix.rules.id_scope import distro_of

STACK = ("FROM python:3.11-slim-bookworm AS build\n"
         "RUN pip install requests\n"
         "RUN pip install flask\n"
         "\n"
         "FROM --platform=linux/arm64 ubuntu:jammy AS arm\n"
         "RUN apt-get update && apt-get install -y git\n"
         "\n"
         "FROM --platform=$BUILDPLATFORM python:3.12-alpine3.20 AS tools\n"
         "RUN pip install black\n")


@pytest.mark.parametrize("reference, distro", [
    ("python:3.11-bookworm", "debian-bookworm"),
    ("python:3.11-slim-bookworm", "debian-bookworm"),
    ("debian:12", "debian-bookworm"),
    ("debian:bookworm-slim", "debian-bookworm"),
    ("docker.io/library/debian:11.9", "debian-bullseye"),
    ("ubuntu:22.04", "ubuntu-22.04"),
    ("ubuntu:jammy", "ubuntu-22.04"),
    ("eclipse-temurin:21-jdk-noble", "ubuntu-24.04"),
    ("alpine:3.20.1", "alpine-3.20"),
    ("python:3.12-alpine3.20", "alpine-3.20"),
    ("nvidia/cuda:12.4.1-devel-ubuntu22.04", "ubuntu-22.04"),
    ("nvidia/cuda:12.4.1-devel-rockylinux9", "rocky-9"),
    ("fedora:40", "fedora-40"),
    ("node:20-bookworm@sha256:" + "a" * 64, "debian-bookworm"),
    ("python:3.11", None),  # its Debian release changes over time
    ("python:3.12-alpine", None),
    ("ubuntu:latest", None),
    ("${BASE}", None),
    ("registry.example:5000/team/app:1.0", None),
])
def test_the_distribution_release_a_static_from_names(reference, distro):
    assert distro_of(reference) == distro


def _fix(tmp_path: Path, text: str, *flags: str) -> str:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    assert main(["fix", "--syntax", "none", *flags, str(path)]) in (0, 1)
    return path.read_text()


def test_distro_scope_writes_one_id_per_release(tmp_path):
    fixed = _fix(tmp_path, STACK, "--id-scope", "distro")
    lines = fixed.splitlines()
    assert lines[1] == ("RUN --mount=type=cache,target=/root/.cache/pip,id=/root/.cache/pip-debian-bookworm "
                        "pip install requests")
    assert "id=/var/lib/apt/lists-ubuntu-22.04" in lines[5] and "id=/var/cache/apt-ubuntu-22.04" in lines[5]
    assert "id=/root/.cache/pip-alpine-3.20" in lines[8]
    assert len(lines) == len(STACK.splitlines())  # no ARG needed


def test_arch_scope_uses_a_static_platform_or_declares_the_automatic_arg_once_per_stage(tmp_path):
    fixed = _fix(tmp_path, STACK, "--id-scope", "arch")
    assert fixed.splitlines()[:4] == [
        "FROM python:3.11-slim-bookworm AS build",
        "ARG TARGETARCH",
        "RUN --mount=type=cache,target=/root/.cache/pip,id=/root/.cache/pip-${TARGETARCH} pip install requests",
        "RUN --mount=type=cache,target=/root/.cache/pip,id=/root/.cache/pip-${TARGETARCH} pip install flask",
    ]
    assert "id=/var/cache/apt-arm64" in fixed and fixed.count("ARG TARGETARCH") == 1
    assert "FROM --platform=$BUILDPLATFORM python:3.12-alpine3.20 AS tools\nARG BUILDARCH\n" in fixed
    assert "id=/root/.cache/pip-${BUILDARCH}" in fixed


@pytest.mark.parametrize("scope", ["distro", "arch"])
def test_a_scoped_fix_is_stable_and_checks_clean(tmp_path, scope, capsys):
    once = _fix(tmp_path, STACK, "--id-scope", scope)
    assert _fix(tmp_path, once, "--id-scope", scope) == once
    assert main(["check", "--id-scope", scope, str(tmp_path / "Dockerfile")]) == 0


def test_an_existing_arg_is_used_and_crlf_is_kept(tmp_path):
    path = tmp_path / "Dockerfile"
    for text in ("FROM debian:12\r\nARG TARGETARCH\r\nRUN apt-get update && apt-get install -y curl\r\n",
                 "FROM debian:12\r\nRUN apt-get update && apt-get install -y curl\r\n"):
        path.write_bytes(text.encode())
        assert main(["fix", "--syntax", "none", "--id-scope", "arch", str(path)]) == 0
        fixed = path.read_bytes().decode()
        assert fixed.startswith("FROM debian:12\r\nARG TARGETARCH\r\nRUN --mount=type=cache,")
        assert fixed.count("ARG TARGETARCH") == 1 and "\n" not in fixed.replace("\r\n", "")


def test_without_the_option_ids_stay_buildkits_default(tmp_path):
    assert "id=" not in _fix(tmp_path, STACK)


def test_the_configuration_key_and_a_manager_table(tmp_path):
    (tmp_path / ".cachefix.toml").write_text('id-scope = "distro"\n[apt]\nid-scope = "arch"\n')
    fixed = _fix(tmp_path, STACK)
    assert "id=/root/.cache/pip-debian-bookworm" in fixed and "id=/var/cache/apt-arm64" in fixed


def test_a_bad_configuration_value_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / ".cachefix.toml").write_text('id-scope = "release"\n')
    (tmp_path / "Dockerfile").write_text(STACK)
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "id-scope" in err[0] and "distro, arch" in err[0]


def test_mounts_list_reads_the_scoped_ids_with_this_machines_arch(tmp_path, capsys):
    _fix(tmp_path, STACK, "--id-scope", "arch")
    capsys.readouterr()
    assert main(["mounts", "list", "--format", "json", "--build-arg", "TARGETARCH=riscv64", str(tmp_path)]) == 0
    ids = [m["id"] for m in json.loads(capsys.readouterr().out)["mounts"]]
    assert ids[:2] == ["/root/.cache/pip-riscv64"] * 2
    assert "/var/cache/apt-arm64" in ids


def test_the_guard_lets_a_fix_declare_only_an_automatic_platform_arg():
    before = parse("FROM debian\nRUN true\n")
    assert unintended_change(before, parse("FROM debian\nARG TARGETARCH\nRUN true\n"), None) is None
    assert unintended_change(before, parse("FROM debian\nARG BUILDARCH\nRUN true\n"), None) is None
    assert unintended_change(before, parse("FROM debian\nARG TARGETARCH=arm64\nRUN true\n"), None) is not None
    assert unintended_change(before, parse("FROM debian\nARG HTTP_PROXY\nRUN true\n"), None) is not None
    declared = parse("FROM debian\nARG TARGETARCH\nRUN true\n")
    assert unintended_change(declared, parse("FROM debian\nRUN true\n"), None) is not None  # never removed


def test_an_onbuild_run_gets_no_arch_variable_but_a_static_scope(tmp_path):
    text = "FROM debian:12\nONBUILD RUN apt-get update && apt-get install -y curl\n"
    arch = _fix(tmp_path, text, "--id-scope", "arch")
    assert "ARG" not in arch and "TARGETARCH" not in arch and "--mount=type=cache" in arch
    assert "id=/var/cache/apt-debian-bookworm" in _fix(tmp_path, text, "--id-scope", "distro")
