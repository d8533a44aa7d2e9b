"""A rule published by another package under the `cachefix.rules` entry-point group is used,
and one that claims a code another rule has is a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.adversarial.plugin_support import plugin_env

DENO_RULE = '''
    from cachefix.rules.rule import RunRule

    class DenoRule(RunRule):
        """Demo rule: flags `deno install`."""
        code = "CFX01"
        name = "deno-demo"
        manager = "deno"
        summary = "deno install without a cache mount"
        triggers = ("deno",)

        def check(self, run, state):
            for command in run.commands:
                if command.name == "deno":
                    yield self.at(run, command, "deno downloads without a cache mount")
'''
CLASHING_RULE = '''
    from cachefix.rules.rule import RunRule

    class Clash(RunRule):
        """Claims pip's code."""
        code = "CF101"
        name = "clash"
        manager = "clash"
        summary = "clash"
'''


def cachefix(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachefix", *args], capture_output=True, text=True, env=env)


def test_plugin_rule_is_listed_and_runs(tmp_path: Path) -> None:
    env = plugin_env(tmp_path / "site", "cachefix_plugin_demo", "DenoRule", DENO_RULE)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM denoland/deno\nRUN deno install\n")
    assert "CFX01" in cachefix("rules", env=env).stdout
    check = cachefix("check", str(dockerfile), env=env)
    assert check.returncode == 1 and "CFX01" in check.stdout and "2:5" in check.stdout


def test_a_plugin_that_claims_a_built_in_code_is_a_clear_error(tmp_path: Path) -> None:
    env = plugin_env(tmp_path / "site", "cachefix_plugin_clash", "Clash", CLASHING_RULE)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nRUN pip install flask\n")
    for args in (["check", str(dockerfile)], ["rules"]):
        done = cachefix(*args, env=env)
        assert done.returncode == 2, done.stderr
        assert "rule code CF101 is claimed by both" in done.stderr and "cachefix_plugin_clash.Clash" in done.stderr
        assert "Traceback" not in done.stderr
    assert dockerfile.read_text() == "FROM python:3.12\nRUN pip install flask\n"
