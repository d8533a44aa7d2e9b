"""Bandwidth on real builders: bytes each scenario downloads, before and after `cachefix fix`.

For every scenario under tests/integration/scenarios and every engine (dockerd with BuildKit,
buildah), build the Dockerfile twice with the install steps' layer cache busted in between,
once as written and once as rewritten, and print what the local package servers sent.
Needs root, like the integration tests (it uses the same harness):

    sudo python3 benchmarks/bandwidth.py [--engine dockerd] [--scenario apt-get] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.harness import ORIGINAL, REWRITTEN, SCENARIOS, Lab, Measurement, Scenario, open_lab

ENGINES = ("dockerd", "buildah")


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 10_000 else f"{n} B"


Row = tuple[str, str, Measurement | str, Measurement | str]


def _cells(m: Measurement | str) -> tuple[str, str]:
    if isinstance(m, str):
        return m, m
    return _mb(m.first.body_bytes), _mb(m.second.body_bytes)


def table(rows: list[Row]) -> str:
    """A Markdown table: one row per scenario and engine; a failed build shows as such."""
    lines = [
        "| scenario | engine | before: 1st build | before: 2nd build | after: 1st build | after: 2nd build "
        "| saved on a rebuild | rebuild requests before → after (of them 200 OK) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for scenario, engine, before, after in rows:
        if isinstance(before, Measurement) and isinstance(after, Measurement):
            saved_bytes = before.second.body_bytes - after.second.body_bytes
            share = saved_bytes / before.second.body_bytes if before.second.body_bytes else 0.0
            saved = f"{_mb(saved_bytes)} ({share:.1%})"
            requests = (f"{before.second.requests} ({before.second.full_responses}) → "
                        f"{after.second.requests} ({after.second.full_responses})")
        else:
            saved = requests = "—"
        lines.append(f"| {scenario} | {engine} | {' | '.join(_cells(before))} | {' | '.join(_cells(after))} "
                     f"| {saved} | {requests} |")
    return "\n".join(lines)


def _measure(lab: Lab, scenario: Scenario, engine: str, variant: str) -> Measurement | str:
    try:
        return lab.measure(scenario, engine, variant)
    except AssertionError as exc:  # a failed or hung build, or a rewrite that added no mount
        print(f"{scenario.name} {variant} on {engine}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return "build hung" if "killed after" in str(exc) else "build failed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", choices=ENGINES, help="only this engine (repeatable)")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS],
                        help="only this scenario (repeatable)")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)
    engines = tuple(args.engine or ENGINES)
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]

    start = time.monotonic()
    rows: list[Row] = []
    with open_lab(engine_names=engines) as lab:
        for scenario in scenarios:
            for engine in engines:
                rows.append((scenario.name, engine, _measure(lab, scenario, engine, ORIGINAL),
                             _measure(lab, scenario, engine, REWRITTEN)))
                print(f"measured {scenario.name} on {engine}", file=sys.stderr, flush=True)
    print(table(rows))
    print(f"\n{len(rows)} scenario/engine pairs, {time.monotonic() - start:.0f}s", file=sys.stderr)
    if args.json:
        measured = [m for row in rows for m in row[2:] if isinstance(m, Measurement)]
        args.json.write_text(json.dumps([asdict(m) for m in measured], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
