"""BuildKit's own parser (the `dockerfile` package) as a judge of what a fix changed.

Independent of cachefix's parser and shell analysis on purpose: a bug there must not hide
itself here. A fix may add or change cache mounts (any options: target, id, sharing, uid, mode)
and otherwise change only what a package manager's `fixtures/<manager>/oracle.toml` allows;
nothing else. Each of those files may hold these keys, every pattern a Python regex that must
match a whole word or command:

- `plumbing`: simple commands whose only effect is on package caches (`apt-get clean`);
- `words`: words a fix may drop or add anywhere (`--no-cache-dir`, `PIP_CACHE_DIR=/x`);
- `fragments`: literal text a fix may drop from inside a word (an `sh -c '...'` string) or an
  ONBUILD line;
- `paths`: cache folders (and what is under them) an `rm` may stop removing;
- `option_values`: values of `-o` a fix may add to apt (`Dir::Cache::Archives=/x`);
- `unset`: variable names a fix may unset for one command, `env -u NAME` before its program
  (`words` may be set there too: `env NAME=value program`, as in exec form);
- `program_words`: a table, program name → words a fix may drop from that program's commands.

A new manager needs only its own oracle.toml: this module reads every one (`allowances`).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import dockerfile

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KEYS = {"plumbing", "words", "fragments", "paths", "option_values", "unset", "program_words"}


@dataclass(frozen=True)
class Allowances:
    """What every manager's oracle.toml allows a fix to change, combined."""

    files: tuple[Path, ...]
    plumbing: tuple[re.Pattern[str], ...]
    words: re.Pattern[str]
    fragments: tuple[str, ...]
    paths: re.Pattern[str]
    option_values: re.Pattern[str]
    unset: frozenset[str]
    program_words: dict[str, re.Pattern[str]]


def _either(patterns: list[str], suffix: str = "") -> re.Pattern[str]:
    """One regex for a whole word matching any of `patterns` (none: one that matches nothing)."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("(?:" + "|".join(f"(?:{p})" for p in patterns) + ")" + suffix)


def read_allowances(files: list[Path]) -> Allowances:
    """Combine oracle.toml files; an unknown key is an error, so a misspelt one cannot allow nothing quietly."""
    found: dict[str, list] = {key: [] for key in KEYS - {"program_words"}}
    program_words: dict[str, list[str]] = {}
    for path in files:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        unknown = set(table) - KEYS
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(KEYS)}")
        for key, values in table.items():
            if key == "program_words":
                for program, words in values.items():
                    program_words.setdefault(program, []).extend(words)
            else:
                found[key].extend(values)
    return Allowances(
        files=tuple(files),
        plumbing=tuple(re.compile(p) for p in found["plumbing"]),
        words=_either(found["words"]),
        fragments=tuple(found["fragments"]),
        paths=_either(found["paths"], r"(?:/\S*)?"),
        option_values=_either(found["option_values"]),
        unset=frozenset(found["unset"]),
        program_words={program: _either(words) for program, words in program_words.items()},
    )


@lru_cache(maxsize=1)
def allowances() -> Allowances:
    """Every fixtures/<manager>/oracle.toml, read once."""
    return read_allowances(sorted(FIXTURES.glob("*/oracle.toml")))


OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


def parse(text: str):
    """BuildKit's parse plus its next step's check for unknown instructions; raises on error."""
    commands = dockerfile.parse_string(text)
    for command in commands:
        if command.cmd.upper() not in INSTRUCTIONS:
            raise ValueError(f"line {command.start_line}: unknown instruction: {command.cmd}")
    return commands


def _simple_commands(text: str, mounted: tuple[str, ...] = ()) -> list[str]:
    """The simple commands, split at shell operators outside quotes, cache plumbing dropped
    (an `rm` of what the fixed RUN mounts as a cache is plumbing too)."""
    # newlines separate commands (heredoc scripts): `;` keeps the words on each side of one whole
    lexer = shlex.shlex(text.replace("\\\n", " ").replace("\n", " ; "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""  # `${#rev}` is a length, not a comment (the shell reads `#` as one only after a blank)
    allowed = allowances()
    out: list[str] = []
    current: list[str] = []
    for token in [*lexer, ";"]:
        if token not in OPERATORS:
            current.append(token)
            continue
        kept = _kept(current, mounted, allowed)
        if kept and not any(p.fullmatch(kept) for p in allowed.plumbing):
            out.append(kept)
        current = []
    return out


def _kept(command: list[str], mounted: tuple[str, ...], allowed: Allowances) -> str:
    """A simple command's words less those a fix may add or drop, joined ("" when nothing is left)."""
    command = _without_env_prefix(command, allowed)
    words = [w for i, w in enumerate(command) if not allowed.words.fullmatch(w)
             and not (w == "-o" and i + 1 < len(command) and allowed.option_values.fullmatch(command[i + 1]))
             and not (i and command[i - 1] == "-o" and allowed.option_values.fullmatch(w))]
    if words and words[0] in allowed.program_words:
        words = [w for w in words if not allowed.program_words[words[0]].fullmatch(w)]
    if words and words[0] == "rm":
        words = [w for w in words if not allowed.paths.fullmatch(w)
                 and not any(w.rstrip("*").rstrip("/") in (m, m + "/") for m in mounted)]
        if all(w.startswith("-") for w in words[1:]):
            return ""  # only caches were removed: the whole command was plumbing
    return " ".join(_without_fragments(w, allowed) for w in words)


def _without_fragments(text: str, allowed: Allowances) -> str:
    for fragment in allowed.fragments:
        text = text.replace(fragment, "")
    return text


def _without_env_prefix(words: list[str], allowed: Allowances) -> list[str]:
    """The words less what a fix may put between `env` and a program: `-u NAME` for the NAMEs in
    `unset`, and cache settings (`env npm_config_cache=/x npm ci`, exec form's prefix assignment);
    less that `env` too when nothing else is left of its arguments."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] == "env":
            kept, end = _env_arguments(words, i + 1, allowed)
            if end < len(words) and len(kept) < end - i - 1:  # a program follows, and something was dropped
                out.extend(["env", *kept] if kept else [])
                i = end
                continue
        out.append(words[i])
        i += 1
    return out


def _env_arguments(words: list[str], start: int, allowed: Allowances) -> tuple[list[str], int]:
    """`env`'s options and assignments from `start`, less those a fix may add, and where they end."""
    kept: list[str] = []
    i = start
    while i < len(words) and (words[i].startswith("-") or "=" in words[i]):
        if words[i] == "-u" and i + 1 < len(words):
            if words[i + 1] not in allowed.unset:
                kept += words[i:i + 2]
            i += 2
            continue
        if words[i].startswith("-") or not allowed.words.fullmatch(words[i]):
            kept.append(words[i])
        i += 1
    return kept, i


def _run_text(command) -> str:
    return " ".join(command.value) + "".join("\n" + h.content for h in command.heredocs)


def non_cache_changes(before: str, after: str) -> list[str]:
    """What differs between two files beyond cache mounts and cache plumbing."""
    b, a = parse(before), parse(after)
    if [c.cmd.upper() for c in b] != [c.cmd.upper() for c in a]:
        return ["the sequence of instructions changed"]
    problems = []
    for old, new in zip(b, a, strict=True):
        where = f"line {old.start_line} {old.cmd.upper()}"
        if old.cmd.upper() == "ONBUILD":
            old_text, new_text = (re.sub(r"--mount=type=cache\S*\s+", "", c.original) for c in (old, new))
            if _without_fragments(old_text, allowances()) != _without_fragments(new_text, allowances()):
                problems.append(f"{where}: changed")
            continue
        if old.cmd.upper() != "RUN":
            if (old.flags, old.value, old.json, old.heredocs) != (new.flags, new.value, new.json, new.heredocs):
                problems.append(f"{where}: changed")
            continue
        if [f for f in old.flags if "type=cache" not in f] != [f for f in new.flags if "type=cache" not in f]:
            problems.append(f"{where}: flags other than cache mounts changed")
        mounted = tuple(re.sub(r".*\btarget=([^,]*).*", r"\1", f).rstrip("/") for f in new.flags if "type=cache" in f)
        if _simple_commands(_run_text(old), mounted) != _simple_commands(_run_text(new), mounted):
            problems.append(f"{where}: commands changed: {_simple_commands(_run_text(old), mounted)} -> "
                            f"{_simple_commands(_run_text(new), mounted)}")
    return problems
