"""Every rule cachefix knows: the modules of `cachefix.rules.builtin` and plugins from the
`cachefix.rules` entry-point group.

A plugin is a `cachefix.rules.rule.RunRule` (or `FileRule`) subclass published by another
package under `[project.entry-points."cachefix.rules"]`; it is loaded only when rules are listed
or run. Codes must be unique, plugins included: two rules with one code would make `--select`,
`ignore[...]` and `explain` ambiguous.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from functools import lru_cache

from cachefix.rules import builtin
from cachefix.rules.rule import Rule


class UnknownRule(KeyError):
    """A code given to --select, --ignore, explain or a suppression that no rule has."""


class DuplicateCode(ValueError):
    """Two rules, built in or plugins, claim one code."""


def _builtin_rules() -> list[type[Rule]]:
    """The rule classes defined in the modules of `cachefix.rules.builtin`."""
    found: list[type[Rule]] = []
    for module_info in pkgutil.iter_modules(builtin.__path__):
        module = importlib.import_module(f"{builtin.__name__}.{module_info.name}")
        found.extend(value for value in vars(module).values() if isinstance(value, type) and issubclass(value, Rule)
                     and value.__module__ == module.__name__ and value.code)
    return found


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
    found = [*_builtin_rules(), *(p for p in plugins if isinstance(p, type) and issubclass(p, Rule))]
    codes: dict[str, type[Rule]] = {}
    for rule in found:
        other = codes.setdefault(rule.code, rule)
        if other is not rule:
            raise DuplicateCode(f"rule code {rule.code} is claimed by both {_origin(other)} and {_origin(rule)}")
    return tuple(sorted(found, key=lambda r: r.code))


def _origin(rule: type[Rule]) -> str:
    return f"{rule.__module__}.{rule.__qualname__}"


def select_rules(select: list[str] | None, ignore: list[str] | None) -> list[type[Rule]]:
    """Rules chosen by codes or code prefixes (`CF1` selects every Python rule)."""
    def matches(rule: type[Rule], patterns: list[str]) -> bool:
        return any(rule.code.startswith(p.upper()) or rule.manager == p.lower() for p in patterns)

    for pattern in [*(select or []), *(ignore or [])]:
        if not any(matches(r, [pattern]) for r in all_rules()):
            raise UnknownRule(pattern)
    chosen = [r for r in all_rules() if not select or matches(r, select)]
    return [r for r in chosen if not ignore or not matches(r, ignore)]
