"""A rule published by another package under the `cachefix.rules` entry-point group is used."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def test_plugin_rule_is_listed_and_runs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "cachefix_plugin_demo").mkdir(parents=True)
    (site / "cachefix_plugin_demo" / "__init__.py").write_text(textwrap.dedent('''
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
    '''))
    dist = site / "cachefix_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cachefix-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[cachefix.rules]\ndeno = cachefix_plugin_demo:DenoRule\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM denoland/deno\nRUN deno install\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run([sys.executable, "-m", "cachefix", "rules"], capture_output=True, text=True, env=env)
    assert "CFX01" in listing.stdout
    check = subprocess.run([sys.executable, "-m", "cachefix", "check", str(dockerfile)],
                           capture_output=True, text=True, env=env)
    assert check.returncode == 1 and "CFX01" in check.stdout and "2:5" in check.stdout


def test_a_plugin_that_claims_a_built_in_code_is_a_clear_error(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "cachefix_plugin_clash").mkdir(parents=True)
    (site / "cachefix_plugin_clash" / "__init__.py").write_text(textwrap.dedent('''
        from cachefix.rules.rule import RunRule

        class Clash(RunRule):
            """Claims pip's code."""
            code = "CF101"
            name = "clash"
            manager = "clash"
            summary = "clash"
    '''))
    dist = site / "cachefix_plugin_clash-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cachefix-plugin-clash\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[cachefix.rules]\nclash = cachefix_plugin_clash:Clash\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nRUN pip install flask\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    for args in (["check", str(dockerfile)], ["rules"]):
        done = subprocess.run([sys.executable, "-m", "cachefix", *args], capture_output=True, text=True, env=env)
        assert done.returncode == 2, done.stderr
        assert "rule code CF101 is claimed by both" in done.stderr and "cachefix_plugin_clash.Clash" in done.stderr
        assert "Traceback" not in done.stderr
    assert dockerfile.read_text() == "FROM python:3.12\nRUN pip install flask\n"
