#!/usr/bin/env python3
"""How long `cachefix check` takes on pathological Dockerfiles just under the size limit.

A pre-commit hook runs cachefix on every commit, so no input it accepts may make it hang:
each case below is generated as large as the size limit allows (or as a real builder's
limits allow: BuildKit reads lines of at most 64 KiB, so long scripts are continued over
many lines) and timed as a user runs it, in a new process. The exit status is printed too:
0 or 1 means the file was checked, 2 that it was refused with a one-line error.

    python benchmarks/worst_case_parse.py                  # every case
    python benchmarks/worst_case_parse.py nested-dollar-paren pipeline --runs 3
    python benchmarks/worst_case_parse.py --list
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cachefix.files import MAX_BYTES

LINE = 60_000  # under BuildKit's 64 KiB line limit
BUDGET = MAX_BYTES * 97 // 100  # what a script may take before it is continued over lines (+1.5 %)
HEAD = "FROM python:3.12\n"
PIP = "pip install requests"


def _fill(unit: str, budget: int) -> int:
    """How many times `unit` fits in `budget` bytes."""
    return max(1, budget // len(unit.encode()))


def _continued(text: str, width: int = 200) -> str:
    """A long shell text cut into physical lines that end in a backslash, at spaces."""
    lines, start = [], 0
    while start < len(text):
        end = min(len(text), start + width)
        if end < len(text):
            cut = text.rfind(" ", start, end)
            end = cut + 1 if cut > start else end
        lines.append(text[start:end])
        start = end
    return " \\\n".join(lines)


def _nested(opening: str, middle: str, closing: str, budget: int) -> str:
    levels = _fill(opening + closing, budget - len(middle))
    return opening * levels + middle + closing * levels


def _run(script: str) -> str:
    return HEAD + "RUN " + script + "\n"


def nested_dollar_paren() -> str:
    """The issue's case: `echo $(echo $(... pip install ...))`, continued over lines."""
    return _run(_continued("echo " + _nested("$(echo ", PIP, ")", BUDGET)))


def nested_dollar_paren_one_line() -> str:
    """As many nested `$(` as one line holds (the issue measured 10,000 levels at 63 s)."""
    return _run("echo " + _nested("$(", PIP, ")", LINE))


def nested_subshells() -> str:
    """`((((pip install x))))`: subshells (and arithmetic, where tree-sitter sees `((`)."""
    return _run(_continued(_nested("( ", PIP, " )", BUDGET)))


def nested_braces() -> str:
    """`{ { { pip install x; }; }; }`."""
    return _run(_continued(_nested("{ ", PIP + "; ", "}; ", BUDGET)))


def nested_ifs() -> str:
    """`if true; then if true; then ... fi; fi`."""
    return _run(_continued(_nested("if true; then ", PIP + "; ", "fi; ", BUDGET)))


def nested_backticks() -> str:
    """Backticks nest only by escaping (each level doubles the backslashes): as deep as fits."""
    script = PIP
    while len(script) * 2 + 16 < LINE:
        script = "echo `" + script.replace("\\", "\\\\").replace("`", "\\`") + "`"
    return _run(script)


def many_backticks() -> str:
    """`echo `a` `a` `a` ...`: flat command substitutions."""
    return _run(_continued("echo " + "`pip install a` " * _fill("`pip install a` ", BUDGET)))


def nested_sh_c() -> str:
    """`sh -c 'sh -c ...'`: each level is a string that is parsed again."""
    script = PIP
    while True:
        deeper = "sh -c " + shlex.quote(script)
        if len(deeper) > LINE:
            break
        script = deeper
    return _run(script)


def nested_heredocs() -> str:
    """RUN heredocs whose bodies feed a shell another heredoc, as deep as fits."""
    levels = _fill("bash <<E000000\n" + "E000000\n", BUDGET)
    opening = "".join(f"bash <<E{i:06d}\n" for i in range(1, levels))
    closing = "".join(f"E{i:06d}\n" for i in reversed(range(1, levels)))
    return HEAD + "RUN <<E000000\n" + opening + PIP + "\n" + closing + "E000000\n"


def many_heredocs_on_a_line() -> str:
    """`RUN cat <<A0 <<A1 ...` with a body for each: heredocs are found by a lexer on the line."""
    count = _fill(" <<A00000", LINE)
    names = [f"A{i:05d}" for i in range(count)]
    return HEAD + "RUN " + PIP + " && cat" + "".join(f" <<{n}" for n in names) + "\n" + "".join(
        f"x\n{n}\n" for n in names)


def pipeline() -> str:
    """`pip install x | pip install x | ...`: one pipeline over the whole file."""
    return _run(_continued(" | ".join([PIP] * _fill(PIP + " | ", BUDGET))))


def and_list() -> str:
    """`pip install x && pip install x && ...`: one RUN, a long `&&` list."""
    return _run(_continued(" && ".join([PIP] * _fill(PIP + " && ", BUDGET))))


def short_commands() -> str:
    """`a;a;a;...` with a pip install: the most commands a RUN can hold."""
    return _run(_continued(PIP + ";" + "a;" * _fill("a;", BUDGET)))


def long_line() -> str:
    """One RUN line just under BuildKit's 64 KiB line limit."""
    return _run(PIP + " " + "a" * (LINE - len(PIP)))


def four_mib_line() -> str:
    """One 4 MiB RUN line: BuildKit refuses lines over 64 KiB, so cachefix must too."""
    return _run(PIP + " " + "a" * (BUDGET))


def long_word_with_heredoc() -> str:
    """A 4 MiB word continued over lines, on a line with `<<`: heredoc words are lexed."""
    word = "a" * BUDGET
    return HEAD + "RUN " + PIP + " <<EOF " + "\\\n".join(word[i:i + 200] for i in range(0, len(word), 200)) + (
        "\nx\nEOF\n")


def many_continuations() -> str:
    """A RUN continued over a hundred thousand lines, with comments between them."""
    line = "  && " + PIP + " \\\n# a comment inside the continuation\n"
    return HEAD + "RUN " + PIP + " \\\n" + line * _fill(line, BUDGET) + "  && true\n"


def many_instructions() -> str:
    """A RUN per line: over a hundred thousand instructions."""
    return HEAD + ("RUN " + PIP + "\n") * _fill("RUN " + PIP + "\n", BUDGET)


def many_stages() -> str:
    """`FROM ... AS sN` + RUN, repeated: stages inherit from each other."""
    unit = "FROM s{0:06d} AS s{1:06d}\nRUN " + PIP + "\n"
    count = _fill(unit.format(0, 0), BUDGET)
    return HEAD.replace("\n", " AS s000000\n") + "".join(unit.format(i, i + 1) for i in range(count))


def many_flags() -> str:
    """RUN with thousands of `--mount` flags, continued over lines."""
    flag = "--mount=type=cache,target=/root/.cache/x \\\n"
    return HEAD + "RUN " + flag * _fill(flag, BUDGET) + PIP + "\n"


def many_env() -> str:
    """ENV with a hundred thousand variables, then a pip install that reads them."""
    pair = "V{0:06d}=$V{1:06d} \\\n"
    count = _fill(pair.format(0, 0), BUDGET)
    return HEAD + "ENV " + "".join(pair.format(i + 1, i) for i in range(count)) + "  W=1\nRUN " + PIP + "\n"


CASES: dict[str, Callable[[], str]] = {
    name.replace("_", "-"): function for name, function in list(globals().items())
    if callable(function) and function.__doc__ and function.__module__ == __name__
    and name not in ("main",) and not name.startswith("_")
}


def timed(path: Path, runs: int, timeout: float) -> tuple[float | None, int | None]:
    """Median seconds of `runs` runs of `cachefix check --quiet PATH`, and the last exit status."""
    times, status = [], None
    for _ in range(runs):
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "cachefix", "check", "--quiet", str(path)],
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, None
        times.append(time.perf_counter() - start)
        status = done.returncode
    return statistics.median(times), status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help="cases to run (default: all)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a run counts as hung")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()
    if args.list:
        for name, function in CASES.items():
            print(f"{name:28} {function.__doc__.splitlines()[0]}")
        return 0
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    print(f"{'case':28} {'bytes':>9} {'lines':>7} {'seconds':>8} exit")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.cases or CASES:
            text = CASES[name]()
            size = len(text.encode())
            if size > MAX_BYTES:
                raise SystemExit(f"{name}: {size} bytes is over the limit of {MAX_BYTES}: fix the generator")
            path = Path(folder, "Dockerfile")
            path.write_text(text, encoding="utf-8")
            seconds, status = timed(path, args.runs, args.timeout)
            shown = f"{seconds:8.2f}" if seconds is not None else f"{'>' + str(int(args.timeout)):>8}"
            print(f"{name:28} {size:9d} {text.count(chr(10)):7d} {shown} {'-' if status is None else status}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
