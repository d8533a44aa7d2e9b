#!/usr/bin/env python3
"""Write `cachefix/rules/catalog.py`: each built-in rule's code, name, manager, class and words.

The registry reads the catalog so that linting a file imports only the rule modules whose words
one of its RUNs mentions. Run this after adding a rule or changing a rule's `triggers`;
`--check` exits 1 when the catalog is stale (a test does the same).

    python scripts/rule_catalog.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cachefix.rules.registry import builtin_modules, builtin_rules, entry_of  # noqa: E402

CATALOG = ROOT / "cachefix" / "rules" / "catalog.py"
HEADER = '''# ruff: noqa: E501
"""The built-in rules, as the registry needs them before importing any: written by
`scripts/rule_catalog.py` (do not edit by hand; a test checks it is current).

Each row: code, name, manager, `module:Class`, and the words one of which a RUN must mention
for the rule to find anything (None: the rule looks at every file).
"""

BUILTIN_RULES = (
'''


def catalog_text() -> str:
    entries = sorted((entry_of(rule) for rule in builtin_rules(builtin_modules())), key=lambda e: e.code)
    return HEADER + "".join(f"    {tuple(entry)!r},\n" for entry in entries) + ")\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the catalog is stale")
    args = parser.parse_args()
    text = catalog_text()
    if args.check:
        current = CATALOG.read_text(encoding="utf-8") if CATALOG.exists() else ""
        if current != text:
            print(f"{CATALOG.relative_to(ROOT)} is stale: run python scripts/rule_catalog.py", file=sys.stderr)
            return 1
        return 0
    CATALOG.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
