"""`cachefix rules` and `cachefix explain RULE`: the rules' own documentation."""

from __future__ import annotations

import re
import sys

from cachefix.rules.registry import all_rules
from cachefix.rules.rule import Rule
from cachefix.suppressions import InvalidSuppression


def documented_rules() -> tuple[type[Rule], ...]:
    """Every code a report can contain: the rules, and CF900 for broken suppression comments."""
    return tuple(sorted((*all_rules(), InvalidSuppression), key=lambda r: r.code))


def section(rule: type[Rule], title: str) -> str:
    """One `## Title` section of a rule's documentation, without its heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", rule.documentation(), re.MULTILINE | re.DOTALL)
    return match[1].strip() if match else ""


def rule_dict(rule: type[Rule]) -> dict[str, object]:
    """One rule for `rules --format json`. A rule that never fixes says so by starting its
    *Fix safety* section with "Not fixed" (CF900 does)."""
    safety = section(rule, "Fix safety")
    return {"code": rule.code, "name": rule.name, "manager": rule.manager, "summary": rule.summary,
            "fixable": not safety.startswith("Not fixed"), "fix_safety": " ".join(safety.split())}


def list_rules(fmt: str = "text") -> int:
    if fmt == "json":
        import json

        print(json.dumps([rule_dict(rule) for rule in documented_rules()], indent=2))
        return 0
    for rule in documented_rules():
        print(f"{rule.code}  {rule.manager:<8} {rule.name:<26} {rule.summary}")
    return 0


def find_rules(query: str) -> list[type[Rule]]:
    """The rules `query` names: a code (any case), a rule name, a manager (all its rules), or
    the first words of a rule name (`huggingface` for huggingface-cache-mount)."""
    wanted = query.strip().lower()
    rules = documented_rules()
    exact = [r for r in rules if wanted in (r.code.lower(), r.name, r.manager)]
    return exact or [r for r in rules if r.name.startswith(f"{wanted}-")]


def close_matches(query: str) -> list[str]:
    """Codes, names and managers that look like `query`, for a did-you-mean."""
    import difflib

    words = {word for r in documented_rules() for word in (r.code, r.name, r.manager)}
    by_lower = {word.lower(): word for word in sorted(words)}
    return [by_lower[m] for m in difflib.get_close_matches(query.strip().lower(), by_lower, n=3)]


def explain_rule(query: str) -> int:
    rules = find_rules(query)
    if not rules:
        close = close_matches(query)
        either = f"{', '.join(close[:-1])} or {close[-1]}" if len(close) > 1 else "".join(close)
        hint = f"; did you mean {either}?" if close else ""
        print(f"cachefix explain: error: no rule code, rule name or manager is called `{query}`{hint} "
              "(`cachefix rules` lists every rule)", file=sys.stderr)
        return 2
    print("\n\n".join(f"# {rule.code} {rule.name} ({rule.manager})\n\n{rule.summary}.\n\n{rule.documentation()}"
                      for rule in rules))
    return 0
