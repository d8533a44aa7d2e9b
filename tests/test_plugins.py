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
        from cachefix.rules.base import Rule

        class BunRule(Rule):
            """Demo rule: flags `bun install`."""
            code = "CFX01"
            name = "bun-demo"
            manager = "bun"
            summary = "bun install without a cache mount"
            triggers = ("bun",)

            def check(self, run, dockerfile):
                for command in run.commands:
                    if command.name == "bun":
                        yield self.finding(dockerfile, command.span, "bun downloads without a cache mount")
    '''))
    dist = site / "cachefix_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cachefix-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[cachefix.rules]\nbun = cachefix_plugin_demo:BunRule\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM oven/bun\nRUN bun install\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run([sys.executable, "-m", "cachefix", "rules"], capture_output=True, text=True, env=env)
    assert "CFX01" in listing.stdout
    check = subprocess.run([sys.executable, "-m", "cachefix", "check", str(dockerfile)],
                           capture_output=True, text=True, env=env)
    assert check.returncode == 1 and "CFX01" in check.stdout and "2:5" in check.stdout
