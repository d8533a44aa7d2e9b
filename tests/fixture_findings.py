"""The `findings` file of each fixture case: what `check` reports on its Dockerfile, one finding a line.

Each line reads `LINE CODE fixable|unfixable MESSAGE`, in the order `check` reports them; a newline
inside a message is written as the two characters `\\n`, so each finding stays on one line. A case
whose Dockerfile `check` finds nothing wrong in has an empty file; a case with an `error` file (a
Dockerfile BuildKit rejects) has none. tests/test_fixtures.py holds every case to its file.

After changing what a rule reports (its wording, a finding's line, whether it is fixable), rewrite
every file from the current code and review the change as a diff:

    python -m tests.fixture_findings --update   # prints each file it wrote or removed
    git diff fixtures/

Without `--update` it only lists the files that are out of date (exit status 1 if any), e.g. to
check a branch before committing. Run it from the repository's root.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from cachefix.engine import Settings, lint
from cachefix.model import Finding
from cachefix.rewriter.dockerfile import parse
from cachefix.rules.registry import all_rules

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SETTINGS = Settings(rules=[rule() for rule in all_rules()])
UPDATE_COMMAND = "python -m tests.fixture_findings --update"


def cases() -> list[Path]:
    """Every fixture case folder: fixtures/<manager>/<case>/ with a Dockerfile."""
    return sorted(p.parent for p in FIXTURES.glob("*/*/Dockerfile"))


def line(finding: Finding) -> str:
    """One finding as its `findings` line."""
    state = "fixable" if finding.fixable else "unfixable"
    message = finding.message.replace("\r", "\\r").replace("\n", "\\n")
    return f"{finding.start.line} {finding.code} {state} {message}"


def render(findings: Iterable[Finding]) -> str:
    """The whole file: one line per finding, each ending in a newline."""
    return "".join(line(f) + "\n" for f in findings)


def expected_text(case: Path) -> str | None:
    """What the case's `findings` file must hold now, or None for a case that must have none (an `error` case)."""
    if (case / "error").exists():
        return None
    dockerfile = (case / "Dockerfile").read_bytes().decode("utf-8")
    return render(lint(parse(dockerfile), SETTINGS))


def current_text(case: Path) -> str | None:
    """The case's `findings` file as it is, or None when it has none."""
    path = case / "findings"
    return path.read_bytes().decode("utf-8") if path.exists() else None


def update(case: Path) -> str | None:
    """Rewrite (or remove) the case's `findings` file if it is out of date; say what was done, or None."""
    want, have = expected_text(case), current_text(case)
    if want == have:
        return None
    path = case / "findings"
    if want is None:
        path.unlink()
        return "removed"
    path.write_bytes(want.encode("utf-8"))
    return "wrote" if have is not None else "created"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fixture_findings", description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the findings files that are out of date")
    args = parser.parse_args(argv)
    stale = failed = 0
    for case in cases():
        relative = (case / "findings").relative_to(FIXTURES.parent)
        try:  # one case the code cannot check must not stop the others from being rewritten
            if args.update:
                done = update(case)
                if done:
                    print(f"{done} {relative}")
            elif expected_text(case) != current_text(case):
                stale += 1
                print(f"out of date: {relative}")
        except Exception as error:  # reported, and the exit status says so
            failed += 1
            print(f"failed {relative}: {type(error).__name__}: {error}", file=sys.stderr)
    if stale:
        print(f"{stale} findings file(s) out of date; rewrite them with: {UPDATE_COMMAND}", file=sys.stderr)
    return 1 if stale or failed else 0


if __name__ == "__main__":
    sys.exit(main())
