"""The rule layer's promises, through the engine: rules see what the file does (not what a fix
proposed or a comment silenced), commands are recognised after `$VAR` and `env` are seen
through, and every rule module is found without a central list."""

from __future__ import annotations

import pkgutil

from cachefix.engine import Settings, fix, lint
from cachefix.rewriter.dockerfile import parse
from cachefix.rules import builtin
from cachefix.rules.registry import all_rules

SETTINGS = Settings(rules=[rule() for rule in all_rules()], syntax="none")


def fixed(text: str) -> list[str]:
    return fix(text, SETTINGS).fixed.splitlines()


def test_a_silenced_finding_does_not_change_what_a_later_run_gets() -> None:
    text = ("FROM debian:bookworm\n"
            "# cachefix: ignore[CF201]\n"
            "RUN apt-get update && apt-get install -y curl\n"
            "RUN apt-get update && apt-get install -y git\n")
    lines = fixed(text)
    assert lines[2] == "RUN apt-get update && apt-get install -y curl"  # silenced: untouched
    assert lines[3] == ("RUN --mount=type=cache,target=/var/lib/apt/lists --mount=type=cache,target=/var/cache/apt,"
                        "sharing=locked apt-get update && apt-get -o Dir::Cache::Archives=/var/cache/apt/debs/ "
                        "install -y git")


def test_what_an_earlier_run_did_is_seen_by_later_runs_and_derived_stages() -> None:
    text = ("FROM debian:bookworm AS base\n"
            "RUN rm -f /etc/apt/apt.conf.d/docker-clean\n"
            "FROM base\n"
            "RUN apt-get install -y git\n"
            "FROM debian:bookworm\n"
            "RUN apt-get install -y git\n")
    lines = fixed(text)
    assert "Dir::Cache::Archives" not in lines[3]  # the parent stage deleted docker-clean
    assert "Dir::Cache::Archives" in lines[5]  # another image: docker-clean is there


def test_a_program_named_by_a_variable_is_recognised() -> None:
    text = "FROM python:3.12\nENV PIP=/usr/local/bin/pip3\nRUN $PIP install flask\n"
    assert [f.code for f in lint(parse(text), SETTINGS)] == ["CF101"]
    assert fixed(text)[2] == "RUN --mount=type=cache,target=/root/.cache/pip $PIP install flask"


def test_a_command_run_through_env_is_recognised_and_keeps_its_env() -> None:
    text = "FROM python:3.12\nRUN env PIP_INDEX_URL=https://mirror.example/simple pip install flask\n"
    assert fixed(text)[1] == ("RUN --mount=type=cache,target=/root/.cache/pip "
                              "env PIP_INDEX_URL=https://mirror.example/simple pip install flask")


def test_a_cache_moved_by_env_is_followed() -> None:
    text = "FROM python:3.12\nRUN env PIP_CACHE_DIR=/opt/pip-cache pip install flask\n"
    assert fixed(text)[1] == ("RUN --mount=type=cache,target=/opt/pip-cache "
                              "env PIP_CACHE_DIR=/opt/pip-cache pip install flask")


def test_every_module_of_the_builtin_package_contributes_a_rule() -> None:
    modules = {m.name for m in pkgutil.iter_modules(builtin.__path__)}
    found = {rule.__module__.rsplit(".", 1)[-1] for rule in all_rules() if rule.__module__.startswith(builtin.__name__)}
    assert modules == found
    codes = [rule.code for rule in all_rules()]
    assert len(codes) == len(set(codes))


def test_findings_carry_the_mounts_their_fix_writes() -> None:
    text = "FROM python:3.12\nUSER 1000\nRUN pip install flask\n"
    [finding] = lint(parse(text), SETTINGS)
    assert finding.mounts == ("--mount=type=cache,target=/var/cache/pip-1000,uid=1000,gid=1000",)
    assert finding.fix_title == "add --mount=type=cache,target=/var/cache/pip-1000,uid=1000,gid=1000"
