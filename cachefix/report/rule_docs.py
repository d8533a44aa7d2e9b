"""`cachefix rules` and `cachefix explain CODE`: the rules' own documentation."""

from __future__ import annotations

import sys

from cachefix.rules.registry import UnknownRule, all_rules, rule_by_code


def list_rules() -> int:
    for rule in all_rules():
        print(f"{rule.code}  {rule.manager:<8} {rule.name:<26} {rule.summary}")
    return 0


def explain_rule(code: str) -> int:
    try:
        rule = rule_by_code(code)
    except UnknownRule:
        print(f"cachefix: error: unknown rule code {code!r} (see `cachefix rules`)", file=sys.stderr)
        return 2
    print(f"# {rule.code} {rule.name} ({rule.manager})\n\n{rule.summary}.\n\n{rule.documentation()}")
    return 0
