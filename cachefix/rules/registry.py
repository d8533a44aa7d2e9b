"""Every rule cachefix knows: the built-in ones and plugins from the `cachefix.rules` entry-point group.

A plugin is a `cachefix.rules.base.Rule` subclass published by another package under
`[project.entry-points."cachefix.rules"]`; it is loaded only when rules are listed or run.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from cachefix.rules.apt import AptRule
from cachefix.rules.base import Rule
from cachefix.rules.huggingface import HuggingFaceRule
from cachefix.rules.pip import PipRule
from cachefix.rules.syntax import SyntaxRule

BUILTIN: tuple[type[Rule], ...] = (SyntaxRule, PipRule, AptRule, HuggingFaceRule)


class UnknownRule(KeyError):
    """A code given to --select, --ignore, explain or a suppression that no rule has."""


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    plugins = [ep.load() for ep in entry_points(group="cachefix.rules")]
    found = [*BUILTIN, *(p for p in plugins if isinstance(p, type) and issubclass(p, Rule))]
    return tuple(sorted(found, key=lambda r: r.code))


def rule_by_code(code: str) -> type[Rule]:
    for rule in all_rules():
        if rule.code == code.upper():
            return rule
    raise UnknownRule(code)


def select_rules(select: list[str] | None, ignore: list[str] | None) -> list[type[Rule]]:
    """Rules chosen by codes or code prefixes (`CF1` selects every Python rule)."""
    def matches(rule: type[Rule], patterns: list[str]) -> bool:
        return any(rule.code.startswith(p.upper()) or rule.manager == p.lower() for p in patterns)

    for pattern in [*(select or []), *(ignore or [])]:
        if not any(matches(r, [pattern]) for r in all_rules()):
            raise UnknownRule(pattern)
    chosen = [r for r in all_rules() if not select or matches(r, select)]
    return [r for r in chosen if not ignore or not matches(r, ignore)]
