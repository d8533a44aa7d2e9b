"""What cachefix.rewriter.context says is in effect for each RUN: the stage, the user with
uid, gid and home, and the ARG/ENV variables. A cache mount is right only for these, so a
mistake here puts a mount where the package manager never looks."""

from __future__ import annotations

import pytest

from cachefix.rewriter.context import RunContext, command_env, expand, run_contexts, unquote
from cachefix.rewriter.dockerfile import parse


def runs(text: str) -> list[RunContext]:
    return list(run_contexts(parse(text)))


def last(text: str) -> RunContext:
    return runs(text)[-1]


def who(run: RunContext) -> tuple[str, int | None, int | None, str | None]:
    return run.user, run.uid, run.gid, run.home


def test_root_by_default() -> None:
    assert who(last("FROM debian:bookworm\nRUN apt-get update\n")) == ("root", 0, 0, "/root")


def test_user_created_by_useradd_with_uid_and_home() -> None:
    text = "FROM debian\nRUN useradd -m -u 1002 -d /srv/app app\nUSER app\nRUN pip install x\n"
    assert who(last(text)) == ("app", 1002, 1002, "/srv/app")


def test_useradd_clustered_options_and_groupadd_gid() -> None:
    text = "FROM debian\nRUN groupadd -g 2000 staff && useradd -mu 1003 -g staff app\nUSER app\nRUN true\n"
    assert who(last(text)) == ("app", 1003, 2000, "/home/app")


def test_debian_adduser_long_options() -> None:
    text = "FROM debian\nRUN adduser --disabled-password --uid 1500 --home /opt/app app\nUSER app\nRUN true\n"
    assert who(last(text))[1:] == (1500, 1500, "/opt/app")


def test_busybox_adduser_reads_dash_g_as_gecos_not_group() -> None:
    text = 'FROM alpine\nRUN adduser -D -u 1001 -g "App user" -h /app app\nUSER app\nRUN true\n'
    assert who(last(text))[1:] == (1001, 1001, "/app")


def test_user_by_number_without_an_account_has_that_gid_and_no_known_home() -> None:
    assert who(last("FROM debian\nUSER 1234\nRUN true\n"))[1:] == (1234, 1234, None)


def test_user_with_group_and_unknown_user() -> None:
    assert who(last("FROM debian\nUSER 1234:5678\nRUN true\n"))[1:3] == (1234, 5678)
    assert who(last("FROM debian\nUSER ghost\nRUN true\n"))[1:] == (None, None, None)


def test_env_home_overrides_the_accounts_home() -> None:
    text = "FROM debian\nRUN useradd -u 1002 app\nUSER app\nENV HOME=/data\nRUN true\n"
    assert last(text).home == "/data"


def test_well_known_image_accounts() -> None:
    assert who(last("FROM node:20\nUSER node\nRUN true\n")) == ("node", 1000, 1000, "/home/node")
    assert who(last("FROM mambaorg/micromamba:1.5\nRUN true\n"))[:2] == ("mambauser", 57439)
    assert last("FROM debian\nUSER nobody\nRUN true\n").uid == 65534


def test_a_stage_built_from_another_inherits_its_user_and_env() -> None:
    text = ("FROM python:3.12 AS base\nRUN useradd -u 1002 app\nUSER app\nENV PIP_CACHE_DIR=/c\n"
            "FROM base AS build\nRUN pip install x\n")
    run = last(text)
    assert run.stage.name == "build" and run.stage.index == 1
    assert who(run)[:2] == ("app", 1002) and run.env["PIP_CACHE_DIR"] == "/c"


def test_a_stage_from_an_image_starts_afresh() -> None:
    text = "FROM python:3.12 AS base\nUSER 1000\nENV A=1\nFROM python:3.12\nRUN true\n"
    run = last(text)
    assert run.uid == 0 and "A" not in run.env


def test_from_by_stage_index() -> None:
    assert last("FROM debian\nUSER 1000\nFROM 0\nRUN true\n").uid == 1000


def test_args_and_env_expand_with_defaults() -> None:
    text = ('ARG BASE=/opt\nFROM debian\nARG BASE\nARG SUB\nENV CACHE=${BASE}/cache OTHER="${SUB:-x}/y"\n'
            "RUN true\n")
    env = last(text).env
    assert env["CACHE"] == "/opt/cache" and env["OTHER"] == "x/y"


def test_an_arg_before_from_is_not_in_the_stage_unless_declared_again() -> None:
    assert "V" not in last("ARG V=1\nFROM debian\nRUN true\n").env
    assert last("ARG V=1\nFROM debian\nARG V\nRUN true\n").env["V"] == "1"


def test_an_arg_names_the_base_image() -> None:
    run = last("ARG IMAGE=node:20\nFROM ${IMAGE}\nUSER node\nRUN true\n")
    assert run.uid == 1000


def test_single_quoted_or_escaped_dollar_is_literal() -> None:
    run = last("FROM debian\nENV A=/x\nENV B='$A/y' C=/p\\$A D=$A/z\nRUN true\n")
    assert (run.env["B"], run.env["C"], run.env["D"]) == ("$A/y", "/p$A", "/x/z")


def test_export_in_a_run_reaches_the_commands_after_it() -> None:
    run = last("FROM python:3.12\nRUN pip download x; export PIP_CACHE_DIR=/c; pip install y\n")
    pips = [c for c in run.commands if c.name == "pip"]
    assert "PIP_CACHE_DIR" not in command_env(run, pips[0])
    assert command_env(run, pips[1])["PIP_CACHE_DIR"] == "/c"


def test_a_prefix_assignment_is_in_that_commands_env_only() -> None:
    run = last("FROM python:3.12\nRUN PIP_CACHE_DIR=/c pip install x && pip install y\n")
    first, second = (c for c in run.commands if c.name == "pip")
    assert command_env(run, first)["PIP_CACHE_DIR"] == "/c" and "PIP_CACHE_DIR" not in command_env(run, second)


def test_onbuild_run_gets_a_context() -> None:
    found = runs("FROM debian\nUSER 1000\nONBUILD RUN pip install x\n")
    assert len(found) == 1 and found[0].instruction.keyword == "ONBUILD" and found[0].uid == 1000


def test_windows_images_are_skipped() -> None:
    assert runs("FROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN pip install x\n") == []
    assert len(runs("FROM mcr.microsoft.com/windows/servercore\nRUN a\nFROM debian\nRUN b\n")) == 1


def test_uid_from_a_build_arg_is_spelt_as_that_arg() -> None:
    text = 'FROM debian\nARG UID=10001\nRUN adduser --uid "${UID}" app\nUSER app\nRUN pip install x\n'
    run = last(text)
    assert run.uid == 10001 and run.id_spelling("uid", 10001) == "${UID}"


def test_uid_from_an_arg_of_another_stage_is_spelt_as_a_number() -> None:
    text = ('FROM debian AS base\nARG UID=10001\nRUN adduser --uid "${UID}" app\n'
            "FROM base\nUSER app\nRUN pip install x\n")
    run = last(text)
    assert run.uid == 10001 and run.id_spelling("uid", 10001) == "10001"


@pytest.mark.parametrize(("word", "variables", "result"), [
    ("$A/b", {"A": "/x"}, "/x/b"),
    ("${A}b", {"A": "x"}, "xb"),
    ("${A:-/d}/c", {}, "/d/c"),
    ("${A:-/d}/c", {"A": "/a"}, "/a/c"),
    ("$UNSET/c", {}, "/c"),
])
def test_expand(word: str, variables: dict[str, str], result: str) -> None:
    assert expand(word, variables) == result


def test_unquote_removes_quotes_and_keeps_literal_dollars() -> None:
    assert unquote('"$A/b c"', {"A": "/x"}) == "/x/b c"
    assert unquote("'$A'", {"A": "/x"}) == "$A"
    assert unquote("/a\\$b", {"b": "no"}) == "/a$b"


@pytest.mark.parametrize(("base", "uid"), [
    ("python:3.12-slim", 1000), ("debian:bookworm", 1000), ("alpine:3.20", 1000), ("ubuntu:22.04", 1000),
    ("ubuntu:24.04", 1001), ("ubuntu", 1001), ("node:20", 1001), ("oven/bun:1", 1001),
    ("nvidia/cuda:12.8.1-base-ubuntu24.04", 1001), ("nvidia/cuda:12.1.0-runtime-ubuntu22.04", 1000),
    ("fedora:40", 1000), ("registry.example/base:1", None), ("ubuntu:99.04", None),
])
def test_a_user_created_without_uid_gets_what_the_image_tools_give(base: str, uid: int | None) -> None:
    run = last(f"FROM {base}\nRUN useradd -m app\nUSER app\nRUN pip install x\n")
    assert (run.uid, run.gid) == (uid, uid)


def test_later_accounts_take_the_next_ids_and_system_accounts_stay_unknown() -> None:
    text = ("FROM debian:bookworm\nRUN useradd -u 1500 first && useradd second && useradd -r svc\n"
            "RUN groupadd shared && useradd -N third\n")
    accounts = {r.user: (r.uid, r.gid) for r in [last(text + f"USER {name}\nRUN x\n")
                                                for name in ("first", "second", "svc", "third")]}
    assert accounts == {"first": (1500, 1500), "second": (1501, 1501), "svc": (None, None), "third": (1502, 100)}
