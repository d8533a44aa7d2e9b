"""`--statistics`: how many findings of each code, and how many of them `cachefix fix` can fix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from cachefix.report.items import Item


def statistics_lines(listed: Iterable[Item]) -> list[str]:
    """A table, most frequent code first; empty when there is nothing to count."""
    counts: Counter[str] = Counter()
    fixable: Counter[str] = Counter()
    for item in listed:
        if not item.ignored:
            counts[item.finding.code] += 1
            fixable[item.finding.code] += item.finding.fixable
    if not counts:
        return []
    from cachefix.report.rule_docs import documented_rules  # imports every rule: only when counting

    names = {rule.code: rule.name for rule in documented_rules()}
    width = max(len("count"), *(len(str(n)) for n in counts.values()))
    lines = [f"{'count':>{width}}  code   fixable  rule"]
    for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"{count:>{width}}  {code:<5}  {fixable[code]:>7}  {names.get(code, '')}")
    return lines
