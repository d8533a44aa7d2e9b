"""Recognising a package manager's commands: which program runs, its subcommand, its options.

Rules describe their commands with these (`invocation(command, {"npm"}, TAKES_VALUE)`) rather
than by searching text, so `sudo npm ci`, `/usr/bin/npm ci` and `$NPM ci` (after `ENV
NPM=/usr/bin/npm`) are the same command.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from cachefix.rewriter.shell import SHELLS, Command, Word, iter_options


@dataclass(frozen=True)
class Invocation:
    """A package manager run by a command: which program, its subcommand, the words after it, and
    its operands (the static words that are not options or their values, up to a dynamic one)."""

    program: str
    subcommand: str | None
    args: tuple[Word, ...]
    operands: tuple[str, ...] = ()

    def runs(self, *phrases: str) -> bool:
        """Whether the operands start with one of `phrases` (`"cache clean"` for `npm cache clean --force`)."""
        return any(list(self.operands[:len(p.split())]) == p.split() for p in phrases)


_SUDO_VALUE_OPTIONS = frozenset({"-u", "--user", "-g", "--group", "-h", "--host", "-C", "-D", "-p", "-r", "-t"})


_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")


def invocation(command: Command, programs: Collection[str], takes_value: Collection[str] = ()) -> Invocation | None:
    """The invocation when `command` runs one of `programs`, else None: also as `sudo [-u x] prog`,
    `python3 -m prog`, or a script run by its interpreter (`sh ./mvnw`, `php composer.phar`).

    The subcommand is the first operand, skipping options and the values of `takes_value` ones
    (`apk --repository URL add x` adds).
    """
    words = list(script_command(command).words)
    if command.name == "sudo":
        words = words[1:]
        while words and (words[0].value or "").startswith("-"):
            words = words[2:] if words[0].value in _SUDO_VALUE_OPTIONS else words[1:]
    if len(words) > 2 and _PYTHON.fullmatch(words[0].value or "") and words[1].value == "-m":
        words = words[2:]
    if not words or words[0].value is None or words[0].value.rsplit("/", 1)[-1] not in programs:
        return None
    args = tuple(words[1:])
    operands: list[str] = []
    skip = False
    for word in args:
        value = word.value
        if skip:
            skip = False
        elif value is None:
            break
        elif value.startswith("-"):
            skip = value in takes_value
        else:
            operands.append(value)
    return Invocation(words[0].value.rsplit("/", 1)[-1], operands[0] if operands else None, args, tuple(operands))


def option_value(words: Sequence[Word], names: Collection[str]) -> str | None:
    """The value of the first of `names` among `words` (`--opt value` or `--opt=value`)."""
    words = list(words)
    for i, option, inline in iter_options(words):
        if option in names:
            return inline if inline is not None else (words[i + 1].value if i + 1 < len(words) else None)
    return None


def system_property(words: Sequence[str], name: str, separate: Collection[str] = ()) -> str | None:
    """The value of the last `-Dname=value` among `words`: the JVM, Maven and Gradle each keep
    the last one given. `separate`: options that take `name=value` as the next word (`mvn -D x=y`)."""
    prefix, found = f"-D{name}=", None
    for i, word in enumerate(words):
        if word in separate and i + 1 < len(words):
            word = "-D" + words[i + 1]
        if word.startswith(prefix) and len(word) > len(prefix):
            found = word[len(prefix):]
    return found


# Values that turn a boolean setting on, as uv (clap's "boolish" values) and conda read them.
TRUTHY = frozenset({"1", "true", "t", "yes", "y", "on"})


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in TRUTHY


def script_command(command: Command) -> Command:
    """The command a `sh ./mvnw package` or `php composer.phar install` runs: the script, with
    the interpreter and its options (`php -d memory_limit=-1`) left out. `sh -c '...'` is not
    one: the commands of its script are found on their own."""
    if command.name not in SHELLS and command.name != "php":
        return command
    words = command.words[1:]
    while words and (words[0].value or "").startswith("-"):
        if command.name in SHELLS and "c" in (words[0].value or ""):
            return command
        words = words[2:] if command.name == "php" and words[0].value in ("-d", "-c") else words[1:]
    return replace(command, words=words) if words else command




