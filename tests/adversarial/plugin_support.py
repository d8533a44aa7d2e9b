"""A rule plugin installed the way pip installs one (a dist-info with a `cachefix.rules` entry
point), in a folder the test puts on PYTHONPATH: plugins reach cachefix only this way."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path


def plugin_env(site: Path, module: str, rule_class: str, source: str) -> dict[str, str]:
    """Install `source` as module `module` exposing `rule_class`; the environment that loads it."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[cachefix.rules]\n{module} = {module}:{rule_class}\n")
    return {**os.environ, "PYTHONPATH": str(site)}
