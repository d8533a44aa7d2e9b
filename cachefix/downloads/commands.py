"""Sub-commands of the download-cache runtime: fetch, cache, shell-init (being built)."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `fetch`, `cache` and `shell-init` (each sets `handler`)."""
