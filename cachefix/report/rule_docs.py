"""`cachefix rules` and `cachefix explain CODE`: the rules' own documentation."""

from __future__ import annotations

import re
import sys

from cachefix.rules.base import Rule
from cachefix.rules.registry import all_rules
from cachefix.suppressions import InvalidSuppression


def documented_rules() -> tuple[type[Rule], ...]:
    """Every code a report can contain: the rules, and CF900 for broken suppression comments."""
    return tuple(sorted((*all_rules(), InvalidSuppression), key=lambda r: r.code))


def section(rule: type[Rule], title: str) -> str:
    """One `## Title` section of a rule's documentation, without its heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", rule.documentation(), re.MULTILINE | re.DOTALL)
    return match[1].strip() if match else ""


def list_rules() -> int:
    for rule in documented_rules():
        print(f"{rule.code}  {rule.manager:<8} {rule.name:<26} {rule.summary}")
    return 0


def explain_rule(code: str) -> int:
    rule = next((r for r in documented_rules() if r.code == code.upper()), None)
    if rule is None:
        print(f"cachefix: error: unknown rule code {code!r} (see `cachefix rules`)", file=sys.stderr)
        return 2
    print(f"# {rule.code} {rule.name} ({rule.manager})\n\n{rule.summary}.\n\n{rule.documentation()}")
    return 0
