"""A new user's first commands, typed as a user types them (the installed `cachefix`, in a
project folder): no argument never writes, help answers the questions a user has, and
`explain` and `rules` find what they are asked for."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from cachefix.rules.registry import select_rules
from tests.helpers import write

UNCACHED = "FROM python:3.12\nRUN pip install --no-cache-dir -r requirements.txt\n"
CACHEFIX = shutil.which("cachefix")

pytestmark = pytest.mark.skipif(CACHEFIX is None, reason="the cachefix command is not installed")


def cachefix(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CACHEFIX, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    write(tmp_path / "Dockerfile", UNCACHED)
    write(tmp_path / "svc" / "Dockerfile", UNCACHED)
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- no PATH: nothing is written ----------------------------------------------------------------


def test_bare_cachefix_prints_the_help_and_changes_nothing(project: Path) -> None:
    before = snapshot(project)
    result = cachefix(cwd=project)
    assert result.returncode == 2
    assert result.stdout.startswith("usage: cachefix")
    for command in ("fix", "check", "rules", "explain"):
        assert re.search(rf"^\s+{command}\s+\S", result.stdout, re.MULTILINE), command
    assert snapshot(project) == before


@pytest.mark.parametrize("args", [["fix"], ["check"], ["--diff"], ["-q"], ["fix", "--diff"],
                                  ["check", "--select", "apt"], ["--select", "CF1"], ["--no-color", "--quiet"]],
                         ids=" ".join)
def test_a_lint_command_without_a_path_says_so_in_one_line_and_changes_nothing(project: Path,
                                                                                args: list[str]) -> None:
    before = snapshot(project)
    result = cachefix(*args, cwd=project)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "needs a PATH" in result.stderr
    hint = shlex.join(["cachefix", *args, "."])
    assert f"`{hint}`" in result.stderr
    assert snapshot(project) == before
    assert cachefix(*shlex.split(hint)[1:], cwd=project).returncode in (0, 1)  # the hint works


def test_a_path_alone_still_means_fix(project: Path) -> None:
    result = cachefix(".", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "--mount=type=cache,target=/root/.cache/pip" in (project / "svc" / "Dockerfile").read_text()
    assert result.stdout.splitlines()[-1] == "Fixed 2 findings in 2 files of 2 checked."


# --- help ---------------------------------------------------------------------------------------


def help_text(*args: str, cwd: Path) -> str:
    result = cachefix(*args, "--help", cwd=cwd)
    assert result.returncode == 0 and result.stderr == ""
    return result.stdout


@pytest.mark.parametrize("command", ["fix", "check"])
def test_fix_and_check_help_describe_the_command_the_select_forms_and_the_exit_codes(tmp_path: Path,
                                                                                     command: str) -> None:
    text = help_text(command, cwd=tmp_path)
    assert text.startswith(f"usage: cachefix {command} [options] PATH...\n\n")
    description = text.split("\n\n")[1]
    assert "BuildKit cache mount" in description and len(description.split()) > 30
    for form in ("rule codes", "code prefixes", "manager names"):
        assert form in text
    exit_codes = text.split("exit status:\n")[1].split("\n\n")[0]
    assert re.findall(r"^  (\d)  \w", exit_codes, re.MULTILINE) == ["0", "1", "2"]


def test_the_code_prefixes_in_the_help_select_the_managers_it_names(tmp_path: Path) -> None:
    text = help_text("check", cwd=tmp_path)
    named = re.findall(r"(CF\d) \(([a-z, ]+)\)", text)
    assert len(named) >= 2
    for prefix, managers in named:
        assert [r.manager for r in select_rules([prefix], None)] == managers.split(", "), prefix


def test_the_main_help_lists_each_command_with_a_line_and_examples(tmp_path: Path) -> None:
    text = help_text(cwd=tmp_path)
    commands = text.split("commands:\n")[1].split("\n\n")[0]
    for command in ("fix", "check", "rules", "explain", "fetch", "cache", "shell-init"):
        assert re.search(rf"^\s+{command}\b", commands, re.MULTILINE), command
    assert "examples:" in text and "cachefix --diff ." in text


@pytest.mark.parametrize("command", [[], ["fix"], ["check"]], ids=["cachefix", "fix", "check"])
def test_every_example_in_the_help_runs(project: Path, command: list[str]) -> None:
    examples = re.findall(r"^  (cachefix [^\n]*?)(?:\s{2,}|\n)", help_text(*command, cwd=project).split("examples:")[1],
                          re.MULTILINE)
    assert len(examples) >= 3
    for example in examples:
        result = cachefix(*shlex.split(example)[1:], cwd=project)
        assert result.returncode in (0, 1), f"{example}: {result.stderr}"
        assert "Traceback" not in result.stderr


# --- explain and rules --------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "codes"), [("CF201", ["CF201"]), ("cf101", ["CF101"]), ("apt", ["CF201"]),
                                              ("pip", ["CF101"]), ("apt-cache-mount", ["CF201"]),
                                              ("huggingface", ["CF301"]), ("hf", ["CF301", "CF302"])])
def test_explain_takes_a_code_a_rule_name_or_a_manager(tmp_path: Path, query: str, codes: list[str]) -> None:
    result = cachefix("explain", query, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^# (CF\d{3}) ", result.stdout, re.MULTILINE) == codes
    assert "## Fix safety" in result.stdout


@pytest.mark.parametrize(("query", "suggested"), [("pipp", ["pip"]), ("CF1011", ["CF101"]),
                                                  ("apt-cache-mounts", ["apt-cache-mount"]), ("zzzz", [])])
def test_explain_an_unknown_rule_is_one_line_with_close_matches(tmp_path: Path, query: str,
                                                                suggested: list[str]) -> None:
    result = cachefix("explain", query, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and f"`{query}`" in result.stderr
    assert ("did you mean" in result.stderr) == bool(suggested)
    for word in suggested:
        assert word in result.stderr


def test_rules_as_json_is_a_list_with_one_object_per_rule(tmp_path: Path) -> None:
    listed = json.loads(cachefix("rules", "--format", "json", cwd=tmp_path).stdout)
    text = cachefix("rules", cwd=tmp_path).stdout
    assert [rule["code"] for rule in listed] == [line.split()[0] for line in text.splitlines()]
    for rule in listed:
        assert set(rule) == {"code", "name", "manager", "summary", "fixable", "fix_safety"}
        assert rule["name"] in text and rule["summary"] in text and rule["fix_safety"]
    fixable = {rule["code"]: rule["fixable"] for rule in listed}
    assert fixable["CF900"] is False and fixable["CF101"] is True and fixable["CF201"] is True
