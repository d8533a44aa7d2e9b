"""Code lines per rule module: what adding or reading a rule costs (issue 10 asks for a median of 50 or fewer).

Counts non-blank lines that are not comments, with docstrings left out, in each module of
`cachefix/rules/builtin/` (or the files given). Usage: `python scripts/rule_lines.py [FILES...]`.
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path

RULES = Path(__file__).resolve().parent.parent / "cachefix" / "rules" / "builtin"


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers taken by module, class and function docstrings."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_lines(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    skip = docstring_lines(ast.parse(text))
    return sum(1 for number, line in enumerate(text.splitlines(), 1)
               if number not in skip and line.strip() and not line.strip().startswith("#"))


def main(argv: list[str]) -> int:
    not_managers = ("__init__.py", "syntax.py")
    files = [Path(a) for a in argv] or sorted(p for p in RULES.glob("*.py") if p.name not in not_managers)
    counts = {p: code_lines(p) for p in files}
    for path, count in sorted(counts.items(), key=lambda item: item[1]):
        print(f"{count:5d}  {path.name}")
    print(f"median {statistics.median(counts.values()):.0f} over {len(counts)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
