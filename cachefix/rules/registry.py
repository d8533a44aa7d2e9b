"""Every rule cachefix knows: the built-in ones and plugins from the `cachefix.rules` entry-point group.

A plugin is a `cachefix.rules.base.Rule` subclass published by another package under
`[project.entry-points."cachefix.rules"]`; it is loaded only when rules are listed or run.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import lru_cache

from cachefix.rules.apk import ApkRule
from cachefix.rules.apt import AptRule
from cachefix.rules.base import Rule
from cachefix.rules.bundler import BundlerRule
from cachefix.rules.cargo import CargoRule
from cachefix.rules.composer import ComposerRule
from cachefix.rules.conda import CondaRule
from cachefix.rules.dnf import DnfRule
from cachefix.rules.go import GoRule
from cachefix.rules.gradle import GradleRule
from cachefix.rules.huggingface import HuggingFaceRule
from cachefix.rules.maven import MavenRule
from cachefix.rules.npm import NpmRule
from cachefix.rules.pip import PipRule
from cachefix.rules.pnpm import PnpmRule
from cachefix.rules.poetry import PoetryRule
from cachefix.rules.syntax import SyntaxRule
from cachefix.rules.uv import UvRule
from cachefix.rules.yarn import YarnRule

BUILTIN: tuple[type[Rule], ...] = (SyntaxRule, PipRule, UvRule, PoetryRule, CondaRule, AptRule, ApkRule, DnfRule,
                                   NpmRule, YarnRule, PnpmRule, HuggingFaceRule,
                                   GoRule, CargoRule, MavenRule, GradleRule, ComposerRule,
                                   BundlerRule)


class UnknownRule(KeyError):
    """A code given to --select, --ignore, explain or a suppression that no rule has."""


def _plugin_entry_points() -> list[str]:
    """`module:attr` of every `cachefix.rules` entry point of the installed distributions.

    importlib.metadata would do this, but importing it costs more than the whole lint of a
    small file (it pulls in the email parser); pre-commit runs cachefix on every commit, so
    this reads the `entry_points.txt` files of the dist-info folders on sys.path directly.
    """
    found: list[str] = []
    for folder in sys.path:
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                if not entry.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as handle:
                        text = handle.read()
                except OSError:
                    continue
                if "[cachefix.rules]" in text:
                    found.extend(_section(text, "cachefix.rules"))
    return found


def _section(text: str, name: str) -> list[str]:
    values, inside = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{name}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            values.append(line.split("=", 1)[1].strip())
    return values


def _load(reference: str) -> object:
    module, _, attribute = reference.partition(":")
    value: object = importlib.import_module(module.strip())
    for part in attribute.strip().split(".") if attribute.strip() else ():
        value = getattr(value, part)
    return value


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    plugins = [_load(reference) for reference in dict.fromkeys(_plugin_entry_points())]
    found = [*BUILTIN, *(p for p in plugins if isinstance(p, type) and issubclass(p, Rule))]
    return tuple(sorted(found, key=lambda r: r.code))


def select_rules(select: list[str] | None, ignore: list[str] | None) -> list[type[Rule]]:
    """Rules chosen by codes or code prefixes (`CF1` selects every Python rule)."""
    def matches(rule: type[Rule], patterns: list[str]) -> bool:
        return any(rule.code.startswith(p.upper()) or rule.manager == p.lower() for p in patterns)

    for pattern in [*(select or []), *(ignore or [])]:
        if not any(matches(r, [pattern]) for r in all_rules()):
            raise UnknownRule(pattern)
    chosen = [r for r in all_rules() if not select or matches(r, select)]
    return [r for r in chosen if not ignore or not matches(r, ignore)]
