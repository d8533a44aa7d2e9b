#!/usr/bin/env python3
"""How long `cachefix check` takes on pathological Dockerfiles just under its limits.

A pre-commit hook runs cachefix on every commit, so no input it accepts may make it hang:
each case below is generated as large as cachefix's limits (cachefix/limits.py: bytes, lines,
instructions, bytes of shell, variables) allow, or as a real builder's limits allow (BuildKit
reads lines of at most 64 KiB, so long scripts are continued over many lines), and timed as a
user runs it, in a new process. The exit status is printed too: 0 or 1 means the file was
checked, 2 that it was refused with a one-line error. Every case that is checked should take
well under a second; `--over` makes each case sized by a cachefix limit a tenth past it
instead, to show the refusal is quick too.

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

from cachefix.limits import (
    MAX_BYTES,
    MAX_HEREDOCS,
    MAX_INSTRUCTIONS,
    MAX_LINES,
    MAX_RUNS,
    MAX_SEPARATORS,
    MAX_SHELL_BYTES,
    MAX_VALUE_BYTES,
    MAX_VARIABLES,
    SEPARATORS,
)

LINE = 60_000  # under BuildKit's 64 KiB line limit
FILE = MAX_BYTES * 97 // 100  # what a file may take, with room for its head and line ends
BUDGET = MAX_SHELL_BYTES * 97 // 100  # what a RUN's script may take (continuations add ~1.5 %)
OVER = False  # --over: each case one step past the limit it is sized by
HEAD = "FROM python:3.12\n"
PIP = "pip install requests"


def _fill(unit: str, budget: int, most: int | None = None, *, shell: bool = True) -> int:
    """How many times `unit` fits in `budget` bytes, at most `most` times and, for `shell`, within
    MAX_SEPARATORS (with room for the rest of the file); with --over, a tenth more."""
    count = min(budget // len(unit.encode()), most if most is not None else budget)
    separators = sum(unit.count(c) for c in SEPARATORS) if shell else 0
    if separators:
        count = min(count, (MAX_SEPARATORS - 8) // separators)
    count = max(1, count)
    return count * 11 // 10 + 1 if OVER else count


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
    levels = _fill("bash <<E000000\n" + "E000000\n", BUDGET, (MAX_LINES - 4) // 2)
    opening = "".join(f"bash <<E{i:06d}\n" for i in range(1, levels))
    closing = "".join(f"E{i:06d}\n" for i in reversed(range(1, levels)))
    return HEAD + "RUN <<E000000\n" + opening + PIP + "\n" + closing + "E000000\n"


def many_heredocs_on_a_line() -> str:
    """`RUN cat <<A0 <<A1 ...` with a body for each: heredocs are found by a lexer on the line."""
    count = _fill(" <<A00000" + "x\nA00000\n", BUDGET, MAX_HEREDOCS)
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


def line_of_size_limit() -> str:
    """One RUN line of the size limit: BuildKit refuses lines over 64 KiB, so cachefix must too."""
    return _run(PIP + " " + "a" * FILE)


def long_word_with_heredoc() -> str:
    """A word of all the shell allowed, continued over lines, on a line with `<<`: heredoc words are lexed."""
    word = "a" * _fill("a", BUDGET, shell=False)
    return HEAD + "RUN " + PIP + " <<EOF " + "\\\n".join(word[i:i + 200] for i in range(0, len(word), 200)) + (
        "\nx\nEOF\n")


def many_continuations() -> str:
    """A RUN continued over as many lines as allowed, with comments between them."""
    line = "  && " + PIP + " \\\n# a comment inside the continuation\n"
    return HEAD + "RUN " + PIP + " \\\n" + line * _fill("  && " + PIP, BUDGET, (MAX_LINES - 3) // 2) + "  && true\n"


def many_instructions() -> str:
    """A RUN per line, as many as allowed, and COPYs up to the instruction limit."""
    runs = _fill(PIP + " ", BUDGET, MAX_RUNS)
    return HEAD + ("RUN " + PIP + "\n") * runs + "COPY a /a\n" * _fill("COPY a /a\n", FILE, MAX_INSTRUCTIONS - 1 - runs)


def many_stages() -> str:
    """`FROM ... AS sN` + RUN, repeated: stages inherit from each other."""
    unit = "FROM s{0:06d} AS s{1:06d}\nRUN " + PIP + "\n"
    count = _fill(PIP + " ", BUDGET, min(MAX_RUNS, (MAX_INSTRUCTIONS - 1) // 2))
    return HEAD.replace("\n", " AS s000000\n") + "".join(unit.format(i, i + 1) for i in range(count))


def many_flags() -> str:
    """RUN with as many `--mount` flags as the size limit holds, on lines of BuildKit's limit."""
    flag = "--mount=type=cache,target=/root/.cache/x "
    return HEAD + "RUN " + _continued(flag * _fill(flag, FILE, shell=False), LINE) + PIP + "\n"


def many_env() -> str:
    """ENV with as many variables as allowed, then a pip install that reads them."""
    pair = "V{0:06d}=$V{1:06d} \\\n"
    count = _fill(pair.format(0, 0), FILE, MAX_VARIABLES - 2, shell=False)
    return HEAD + "ENV " + "".join(pair.format(i + 1, i) for i in range(count)) + "  W=1\nRUN " + PIP + "\n"


def env_and_runs() -> str:
    """ENV with as many variables as allowed, then as many RUNs as allowed: each RUN gets them all."""
    pair = "V{0:06d}=" + "v" * 40 + " \\\n"
    count = _fill(pair.format(0), FILE // 2, MAX_VARIABLES - 2, shell=False)
    runs = _fill("RUN " + PIP + " $V000001\n", BUDGET, min(MAX_RUNS, MAX_INSTRUCTIONS - 3))
    return (HEAD + "ENV " + "".join(pair.format(i) for i in range(count)) + "  W=1\n"
            + ("RUN " + PIP + " $V000001\n") * runs)


def doubling_env() -> str:
    """`ENV A1=$A0$A0 A2=$A1$A1 ...`: each value twice the last, as long as the limit allows."""
    top = MAX_VALUE_BYTES.bit_length() - 1 + OVER  # A<n> is 2**n bytes
    pairs = " ".join(f"A{i}=$A{i - 1}$A{i - 1}" for i in range(1, top + 1))
    return HEAD + "ENV A0=x " + pairs + "\nRUN " + PIP + " $A" + str(top) + "\n"


def comment_lines() -> str:
    """As many comment lines as allowed, as long as the size limit allows."""
    count = _fill("#\n", FILE, MAX_LINES - 3, shell=False)
    width = max(1, FILE // count - 2)
    return HEAD + ("#" + "c" * width + "\n") * count + "RUN " + PIP + "\n"


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
    parser.add_argument("--over", action="store_true", help="make each case just over the limit it is sized by")
    args = parser.parse_args()
    global OVER
    OVER = args.over
    if args.list:
        for name, function in CASES.items():
            print(f"{name:28} {function.__doc__.splitlines()[0]}")
        return 0
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "Dockerfile")
        path.write_text(_run(PIP), encoding="utf-8")
        start_up, _ = timed(path, max(3, args.runs), args.timeout)  # Python and cachefix starting, on this machine
        print(f"start-up (a two-line file): {start_up:.2f} s; 'more' is each case's time over it")
        print(f"{'case':28} {'bytes':>9} {'lines':>7} {'seconds':>8} {'more':>6} exit")
        for name in args.cases or CASES:
            text = CASES[name]()
            size = len(text.encode())
            if size > MAX_BYTES and not args.over:
                raise SystemExit(f"{name}: {size} bytes is over the limit of {MAX_BYTES}: fix the generator")
            path.write_text(text, encoding="utf-8")
            seconds, status = timed(path, args.runs, args.timeout)
            shown = (f"{seconds:8.2f} {seconds - (start_up or 0):6.2f}" if seconds is not None
                     else f"{'>' + str(int(args.timeout)):>8} {'':6}")
            print(f"{name:28} {size:9d} {text.count(chr(10)):7d} {shown} {'-' if status is None else status}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
