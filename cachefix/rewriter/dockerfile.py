"""Lossless Dockerfile parser with exact source spans and BuildKit's semantics.

Why our own parser: the rewriter must change only the bytes it means to change (add
``--mount=...`` after ``RUN``, drop ``--no-cache-dir``, drop an apt-lists clean-up) and keep
everything else byte for byte.  No Python package gives both exact offsets and BuildKit's
behaviour (heredocs, blank and comment lines inside continuations, ``# escape=``), so this module
re-implements BuildKit's ``frontend/dockerfile/parser`` (v0.12, the version wrapped by the
``dockerfile`` PyPI package that the tests use as an oracle) while remembering, for every
character BuildKit sees, where it came from in the file.

Deliberate differences from that oracle, both matching current BuildKit:

* ``# check=`` is a parser directive (BuildKit >= 0.14), so ``# check=...`` followed by
  ``# escape=`` honours the escape;
* an empty or comment-only file parses to zero instructions instead of failing with
  "file with no instructions" (that error is a build-time concern, not a syntax one).

Where v0.12 and current BuildKit otherwise disagree we follow v0.12, so the project's
oracle-based checks stay consistent: text after a JSON array is ignored (``RUN ["a"] x`` is
exec form), ``${v#p}``/``${v%p}``/``${v/p/r}`` on a line make BuildKit miss its heredocs, and
flags are always unescaped with ``\\`` even under ``# escape=```.

Like BuildKit's next step (``instructions.Parse``), :func:`parse` rejects an unknown top-level
instruction (``unknown instruction: X``).  Other checks of that step (flag names, argument
counts, stage order) are left to the caller.

Offsets are ``str`` indices into :attr:`Dockerfile.text`; spans are ``[start, end)``.
Stdlib only, because a pre-commit hook parses on every commit.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from cachefix.rewriter.errors import DockerfileSyntaxError

if TYPE_CHECKING:
    import json

__all__ = [
    "INSTRUCTIONS",
    "Directive",
    "Dockerfile",
    "DockerfileSyntaxError",
    "Flag",
    "Heredoc",
    "Instruction",
    "Span",
    "parse",
]

Span = tuple[int, int]

# Go's unicode.IsSpace, which BuildKit uses to trim lines and split words (not str.isspace:
# that also takes \x1c-\x1f).
_GO_SPACES = "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
_GO_SPACE = frozenset(_GO_SPACES)
# unicode.IsSpace(rune(b)) for one byte b: BuildKit's flag scanner walks bytes, not runes.
_BYTE_SPACE = frozenset("\t\n\v\f\r \x85\xa0")
_WS_RUN = re.compile(r"[\t\v\f\r ]+")  # BuildKit's reWhitespace
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_HEREDOC_WORD = re.compile(r"([0-9]*)<<(-?)([^<]*)\Z")
_VALID_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_CMDS = frozenset({"run", "copy", "add"})
_MAX_LINE_BYTES = 65535  # bufio.Scanner's limit (64 KiB token, newline included)

INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
        "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip
"""Instructions BuildKit knows; anything else makes :func:`parse` raise."""


class Directive(NamedTuple):
    """A parser directive in the file header (``# syntax=``, ``# escape=``, ``# check=``)."""

    name: str
    value: str
    span: Span  # the whole directive line from ``#``, without its newline
    line: int


class Flag(NamedTuple):
    """An instruction flag such as ``--mount=type=cache,target=/x`` or a bare ``--link``."""

    name: str
    value: str | None  # after BuildKit's quote/escape processing; None for a bare flag
    span: Span  # exactly the flag token in the file (may cross a line continuation)


class Heredoc(NamedTuple):
    """A heredoc body attached to RUN/COPY/ADD."""

    name: str
    chomp: bool
    expand: bool
    content: str
    body_span: Span
    span: Span


@dataclass(frozen=True)
class Instruction:
    """One instruction with BuildKit's view of it and exact spans into the file."""

    keyword: str
    keyword_span: Span
    flags: tuple[Flag, ...]
    args_span: Span
    value: tuple[str, ...]
    json: bool
    heredocs: tuple[Heredoc, ...]
    span: Span
    start_line: int
    end_line: int
    inner: Instruction | None = None
    # Private: the file text and where each piece of the joined line comes from.
    _text: str = field(default="", repr=False, compare=False)
    _segs: tuple[tuple[int, int, int], ...] = field(default=(), repr=False, compare=False)
    _args: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)

    @property
    def unwrapped(self) -> Instruction:
        """The instruction itself, or the one an ONBUILD wraps: what a build step will run.
        The one place ONBUILD is seen through, so no caller can forget it."""
        return self.inner or self

    def shell_source(self) -> tuple[str, tuple[int, ...]]:
        """The args as BuildKit hands them to the shell, plus each char's offset in the file.

        Continuations (escape, trailing blanks, newline) and the comment and blank lines
        inside them are gone; leading and trailing whitespace is trimmed as BuildKit does, so
        for a shell-form RUN the string equals ``value[0]``.  The offsets let a rewrite found
        in the script be applied to the file without disturbing its layout.
        """
        lo, hi = self._args
        chars: list[str] = []
        offsets: list[int] = []
        for log, start, length in self._segs:
            a, b = max(lo, log), min(hi, log + length)
            if a < b:
                chars.append(self._text[start + a - log : start + b - log])
                offsets.extend(range(start + a - log, start + b - log))
        return "".join(chars), tuple(offsets)

    def flag_values(self, name: str) -> tuple[str | None, ...]:
        """Values of every ``--name`` flag, in order (``None`` for a bare flag)."""
        return tuple(f.value for f in self.flags if f.name == name)

    def has_flag(self, name: str) -> bool:
        """Whether a ``--name`` flag is present."""
        return any(f.name == name for f in self.flags)


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile; ``text`` is kept verbatim so spans can be spliced back."""

    text: str
    escape: str
    directives: tuple[Directive, ...]
    instructions: tuple[Instruction, ...]
    newline: str
    _line_starts: tuple[int, ...] = field(default=(0,), repr=False, compare=False)

    def line_of(self, offset: int) -> int:
        """1-based line of ``offset`` (lines end at ``\\n`` only, as in BuildKit)."""
        return bisect_right(self._line_starts, offset)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of ``offset``; columns count characters."""
        line = bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1


# --------------------------------------------------------------------------- helpers


def _lstrip_len(s: str) -> int:
    """Length of the leading Go-whitespace run of ``s``."""
    return len(s) - len(s.lstrip(_GO_SPACES)) if s and s[0] in _GO_SPACE else 0


def _trim(s: str, lo: int, hi: int) -> tuple[int, int]:
    """``strings.TrimSpace`` on ``s[lo:hi]``, as new bounds."""
    if lo < hi and s[lo] in _GO_SPACE:
        lo = hi - len(s[lo:hi].lstrip(_GO_SPACES))
    if hi > lo and s[hi - 1] in _GO_SPACE:
        hi = lo + len(s[lo:hi].rstrip(_GO_SPACES))
    return lo, hi


def _continues(s: str, esc: str) -> int:
    """Length of ``s`` without its line continuation, or -1 if it does not continue.

    BuildKit: ``([^E])E[ \\t]*$|^E[ \\t]*$``, so an escaped escape char (``\\\\``) at the end
    does not continue the line.
    """
    t = s.rstrip(" \t")
    if t and t[-1] == esc and (len(t) == 1 or t[-2] != esc):
        return len(t) - 1
    return -1


def _go_quote(s: str) -> str:
    """Go's ``%q`` for the few messages that quote user text."""
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c in "\a\b\f\n\r\t\v":
            out.append(repr(c)[1:-1])
        elif c < " " or c == "\x7f":
            out.append(f"\\x{ord(c):02x}")
        elif not c.isprintable():
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


class _NotStrings(Exception):
    """A JSON array with a non-string element: BuildKit fails instead of falling back."""


def _no_constant(name: str) -> float:
    raise ValueError(name)  # Go's encoding/json has no NaN/Infinity


def _go_float(s: str) -> float:
    f = float(s)
    if f in (float("inf"), float("-inf")):
        raise ValueError(s)  # out of float64 range: a decode error in Go
    return f


@functools.cache
def _decoder() -> json.JSONDecoder:
    """Go's decoder, made for the first exec form (`CMD ["app"]`): a file without one needs no json."""
    import json

    return json.JSONDecoder(parse_constant=_no_constant, parse_float=_go_float, parse_int=_go_float)


def _parse_json(rest: str) -> tuple[str, ...] | None:
    """BuildKit's parseJSON: the first JSON value if it is an array of strings, else None.

    Like Go's ``json.Decoder.Decode`` (v0.12), text after the array is ignored.
    """
    rest = rest.lstrip(_GO_SPACES)
    if not rest.startswith("["):
        return None
    try:
        arr, _ = _decoder().raw_decode(rest)
    except (ValueError, RecursionError):
        return None
    if not all(isinstance(x, str) for x in arr):
        raise _NotStrings
    return tuple(arr)


def _maybe_json(rest: str) -> tuple[tuple[str, ...], bool]:
    """parseMaybeJSON (RUN, CMD, ENTRYPOINT, SHELL): JSON array, else the whole string."""
    if not rest:
        return (), False
    arr = _parse_json(rest)
    return (arr, True) if arr is not None else ((rest,), False)


def _maybe_json_list(rest: str) -> tuple[tuple[str, ...], bool]:
    """parseMaybeJSONToList (ADD, COPY, VOLUME): JSON array, else whitespace-split words."""
    arr = _parse_json(rest)
    if arr is not None:
        return arr, True
    return (tuple(_WS_RUN.split(rest)) if rest else ()), False


def _words(rest: str, esc: str) -> list[str]:
    """BuildKit's parseWords (ENV, LABEL, ARG): split on blanks, quotes and escapes kept."""
    words: list[str] = []
    buf: list[str] = []
    phase = 0  # 0 spaces, 1 word, 2 quote
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while True:
        if phase == 0:
            while pos < n and rest[pos] in _GO_SPACE:
                pos += 1
            if pos == n:
                break
            phase = 1
        if pos >= n:
            if blank_ok or buf:
                words.append("".join(buf))
            break
        ch = rest[pos]
        if phase == 1:
            if ch in _GO_SPACE:
                phase = 0
                if blank_ok or buf:
                    words.append("".join(buf))
                buf = []
                blank_ok = False
                pos += 1
                continue
            if ch in "'\"":
                quote = ch
                blank_ok = True
                phase = 2
            if ch == esc:
                if pos + 1 == n:
                    pos += 1
                    continue
                buf.append(ch)
                pos += 1
                ch = rest[pos]
            buf.append(ch)
            pos += 1
            continue
        if ch == quote:
            phase = 1
        if ch == esc and quote != "'":
            if pos + 1 == n:
                phase = 1
                pos += 1
                continue
            pos += 1
            buf.append(ch)
            ch = rest[pos]
        buf.append(ch)
        pos += 1
    return words


def _name_val(rest: str, key: str, esc: str) -> tuple[str, ...]:
    """parseNameVal (ENV, LABEL): old ``KEY name value`` or new ``KEY a=b c=d`` form."""
    words = _words(rest, esc)
    if not words:
        return ()
    if "=" not in words[0]:
        parts = _WS_RUN.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ValueError(f"{key} must have two arguments")
        return tuple(parts)
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise ValueError(f"Syntax error - can't find = in {_go_quote(word)}. Must be of the form: name=value")
        out.extend(word.split("=", 1))
    return tuple(out)


def _healthcheck(rest: str) -> tuple[tuple[str, ...], bool]:
    """parseHealthConfig: a type word (NONE/CMD), then parseMaybeJSON of the remainder."""
    sep = 0
    n = len(rest)
    while sep < n and rest[sep] not in _BYTE_SPACE:
        sep += 1
    if sep == 0:
        return (), False
    nxt = sep
    while nxt < n and rest[nxt] in _BYTE_SPACE:
        nxt += 1
    cmd, is_json = _maybe_json(rest[nxt:])
    return (rest[:sep], *cmd), is_json


def _flag_scan(s: str) -> tuple[int | None, list[tuple[str, int, int]]]:
    """BuildKit's extractBuilderFlags on ``s``: (start of the args or None, flag words).

    Each word is (processed text, start, end) in ``s``.  BuildKit always treats ``\\`` as the
    escape here (even with ``# escape=```) and quotes/escapes are removed from the word.
    """
    words: list[tuple[str, int, int]] = []
    buf: list[str] = []
    phase = 0  # 0 spaces, 1 word, 2 quote
    quote = ""
    blank_ok = False
    start = 0
    pos = 0
    n = len(s)
    while True:
        if phase == 0:
            while pos < n and s[pos] in _BYTE_SPACE:
                pos += 1
            if pos == n:
                return None, words
            if s[pos] != "-" or pos + 1 == n or s[pos + 1] != "-":
                return pos, words
            phase = 1
            start = pos
        if pos >= n:
            w = "".join(buf)
            if w != "--" and (blank_ok or w):
                words.append((w, start, n))
            return None, words
        ch = s[pos]
        if phase == 1:
            if ch in _BYTE_SPACE:
                w = "".join(buf)
                phase = 0
                if w == "--":
                    return pos, words
                if blank_ok or w:
                    words.append((w, start, pos))
                buf = []
                blank_ok = False
                pos += 1
                continue
            if ch in "'\"":
                quote = ch
                blank_ok = True
                phase = 2
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = s[pos]
            buf.append(ch)
            pos += 1
            continue
        if ch == quote:
            phase = 1
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                phase = 1
                pos += 1
                continue
            pos += 1
            ch = s[pos]
        buf.append(ch)
        pos += 1


class _LexError(Exception):
    pass


_PLAIN = re.compile(r"[^$'\"\\]+")
_PLAIN_IN_BRACES = re.compile(r"[^$'\"\\}]+")
_PLAIN_IN_QUOTES = re.compile(r'[^$"\\]+')
_BLANKS_OR_NOT = re.compile(f"[{re.escape(_GO_SPACES)}]+|[^{re.escape(_GO_SPACES)}]+")


class _TooDeep(ValueError):
    """``${a:-${b:-...}}`` nested deeper than cachefix follows (BuildKit has no limit)."""


_MAX_NESTING = 16  # for ${...} and ONBUILD: each level copies the text inside it, a limit keeps it linear


def _shell_words(s: str, raw_quotes: bool, raw_escapes: bool) -> list[str]:
    """BuildKit's shell.Lex.ProcessWords (escape ``\\``, empty env, SkipUnsetEnv), v0.12.

    Only used to find heredoc words; raises _LexError where BuildKit's lexer errors.
    """
    n = len(s)
    pos = 0
    depth = 0

    def name() -> str:
        nonlocal pos
        out = []
        while pos < n:
            ch = s[pos]
            if not out and ch.isdecimal():
                while pos < n and s[pos].isdecimal():
                    out.append(s[pos])
                    pos += 1
                return "".join(out)
            if not out and ch in "@*#?-$!0":
                pos += 1
                return ch
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(ch)
            pos += 1
        return "".join(out)

    def dollar() -> str:
        nonlocal pos
        pos += 1
        if pos >= n or s[pos] != "{":
            nm = name()
            return "$" + nm
        pos += 1
        if pos >= n:
            raise _LexError("syntax error: missing '}'")
        if s[pos] in "{}:":
            raise _LexError("syntax error: bad substitution")
        nm = name()
        ch = s[pos] if pos < n else ""
        pos += 1
        if ch == "}":
            return "${" + nm + "}"
        chs = ch
        if ch == ":":  # BuildKit takes any char after ':' as the modifier
            chs += s[pos] if pos < n else ""
            pos += 1
        elif ch not in ("+", "-", "?"):  # v0.12 has no #, %, / modifiers
            raise _LexError(f"unsupported modifier ({chs}) in substitution")
        nonlocal depth
        depth += 1
        if depth > _MAX_NESTING:
            raise _TooDeep(f"variable substitutions nested more than {_MAX_NESTING} deep: cachefix does not "
                           "analyse this line")
        word, _ = stop_on("}")
        depth -= 1
        return "${" + nm + chs + word + "}"

    def single() -> str:
        nonlocal pos
        end = s.find("'", pos + 1)
        if end < 0:
            pos = n
            raise _LexError("unexpected end of statement while looking for matching single-quote")
        text = s[pos : end + 1] if raw_quotes else s[pos + 1 : end]
        pos = end + 1
        return text

    def double() -> str:
        nonlocal pos
        out = ['"'] if raw_quotes else []
        pos += 1
        while True:
            if pos >= n:
                raise _LexError("unexpected end of statement while looking for matching double-quote")
            ch = s[pos]
            if ch == '"':
                pos += 1
                if raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(dollar())
                continue
            plain = _PLAIN_IN_QUOTES.match(s, pos)
            if plain:  # a run of characters that are themselves
                out.append(plain.group())
                pos = plain.end()
                continue
            pos += 1
            if ch == "\\":
                if raw_escapes:
                    out.append(ch)
                if pos >= n:
                    continue
                if s[pos] in '"$\\':
                    ch = s[pos]
                    pos += 1
            out.append(ch)

    def stop_on(stop: str) -> tuple[str, list[str]]:
        nonlocal pos
        result: list[str] = []
        words: list[str] = []
        word: list[str] = []  # pieces of the current word, none of them empty
        in_word = False

        def add(piece: str, split: bool) -> None:
            nonlocal word, in_word
            if not split:
                if piece:
                    word.append(piece)
                in_word = True
                return
            for run in _BLANKS_OR_NOT.findall(piece):
                if run[0] not in _GO_SPACE:
                    word.append(run)
                    in_word = True
                elif in_word and word:
                    words.append("".join(word))
                    word = []
                    in_word = False

        while True:
            if pos >= n:
                if stop:
                    raise _LexError(f"unexpected end of statement while looking for matching {stop}")
                break
            ch = s[pos]
            if stop and ch == stop:
                pos += 1
                break
            plain = (_PLAIN_IN_BRACES if stop else _PLAIN).match(s, pos)
            if plain:  # a run of characters that are themselves
                result.append(plain.group())
                add(plain.group(), True)
                pos = plain.end()
            elif ch == "$":
                tmp = dollar()
                result.append(tmp)
                add(tmp, True)
            elif ch in "'\"":
                tmp = single() if ch == "'" else double()
                result.append(tmp)
                add(tmp, False)
            else:
                pos += 1
                if ch == "\\":
                    if raw_escapes:
                        add(ch, False)
                        result.append(ch)
                    if pos >= n:
                        if stop:
                            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
                        break
                    ch = s[pos]
                    pos += 1
                    add(ch, False)
                else:
                    add(ch, True)
                result.append(ch)
        if word:
            words.append("".join(word))
        return "".join(result), words

    return stop_on("")[1]


def _heredoc_specs(line: str) -> list[tuple[str, bool, bool]]:
    """heredocsFromLine: (name, chomp, expand) for each ``<<WORD`` in the joined line."""
    try:
        words = _shell_words(line, True, True)
    except _LexError:
        return []  # BuildKit ignores the lexer's error here: no heredocs at all
    specs = []
    for w in words:
        m = _HEREDOC_WORD.match(w)
        if not m or not m.group(3):
            continue
        rest = m.group(3)
        try:
            plain = _shell_words(rest, False, False)
            if len(plain) != 1:
                continue
            raw = _shell_words(rest, True, False)
        except _LexError as e:
            raise ValueError(f"failed to process {_go_quote(rest)}: {e}") from None
        if len(raw) != 1:
            raise ValueError(f"internal lexing of heredoc produced inconsistent results: {rest}")
        quotes = plain[0].count("'") + plain[0].count('"')
        raw_quotes = raw[0].count("'") + raw[0].count('"')
        specs.append((plain[0], m.group(2) == "-", quotes == raw_quotes))
    return specs


# --------------------------------------------------------------------------- the parser


@dataclass
class _Node:
    """One instruction as BuildKit's newNodeFromLine sees it, in joined-line indices."""

    cmd: str
    cmd_lo: int
    cmd_hi: int
    flags: list[tuple[str, int, int]]
    args_lo: int
    args_hi: int
    chain: tuple[str, ...]  # the values of BuildKit's node.Next chain
    json: bool
    child: _Node | None


def _node(line: str, lo: int, hi: int, esc: str, depth: int = 0) -> _Node:
    """newNodeFromLine on ``line[lo:hi]``; raises ValueError with BuildKit's message."""
    lo, hi = _trim(line, lo, hi)
    m = _WS_RUN.search(line, lo, hi)
    flags: list[tuple[str, int, int]] = []
    if m is None:
        cmd_hi = args_lo = args_hi = hi
    else:
        cmd_hi = m.start()
        rest_lo = m.end()
        seg = line[rest_lo:hi]
        if seg.isascii():
            at, words = _flag_scan(seg)
            flags = [(w, rest_lo + a, rest_lo + b) for w, a, b in words]
            at = hi if at is None else rest_lo + at
        else:  # BuildKit scans flags byte by byte: reproduce it on the UTF-8 bytes
            units: list[str] = []
            index: list[int] = []
            for j, c in enumerate(seg, rest_lo):
                if c < "\x80":
                    units.append(c)
                    index.append(j)
                else:
                    b = c.encode("utf-8", "surrogatepass")
                    units.extend(map(chr, b))
                    index.extend([j] * len(b))
            index.append(hi)
            at, words = _flag_scan("".join(units))
            flags = [(w, index[a], index[b - 1] + 1) for w, a, b in words]
            at = hi if at is None else index[at]
        args_lo, args_hi = _trim(line, at, hi)
    cmd = line[lo:cmd_hi]
    rest = line[args_lo:args_hi]
    kind = cmd.lower()
    child = None
    is_json = False
    try:
        if kind in ("run", "cmd", "entrypoint", "shell"):
            chain, is_json = _maybe_json(rest)
        elif kind in ("add", "copy", "volume"):
            chain, is_json = _maybe_json_list(rest)
        elif kind in ("from", "expose"):
            chain = tuple(_WS_RUN.split(rest)) if rest else ()
        elif kind in ("maintainer", "stopsignal", "user", "workdir"):
            chain = (rest,) if rest else ()
        elif kind == "arg":
            chain = tuple(_words(rest, esc))
        elif kind == "env":
            chain = _name_val(rest, "ENV", esc)
        elif kind == "label":
            chain = _name_val(rest, "LABEL", esc)
        elif kind == "healthcheck":
            chain, is_json = _healthcheck(rest)
        elif kind == "onbuild":
            if rest and depth >= _MAX_NESTING:  # each level copies the rest of the line
                raise ValueError(f"ONBUILD chained more than {_MAX_NESTING} deep (and BuildKit refuses "
                                 "`ONBUILD ONBUILD` when it builds)")
            if rest:
                child = _node(line, args_lo, args_hi, esc, depth + 1)
                chain = ("",)
            else:
                chain = ()
        else:
            chain = ("",)  # parseIgnore: unknown instructions keep no arguments
    except _NotStrings:
        raise ValueError("when using JSON array syntax, arrays must be comprised of strings only") from None
    return _Node(cmd, lo, cmd_hi, flags, args_lo, args_hi, chain, is_json, child)


class _Parser:
    """One pass over the physical lines, following BuildKit's Parse loop."""

    def __init__(self, text: str) -> None:
        self.text = text
        pieces = text.split("\n")
        starts = [0]
        acc = 0
        for p in pieces[:-1]:
            acc += len(p) + 1
            starts.append(acc)
        if pieces[-1] == "":  # text ends with a newline (or is empty): no last line
            pieces.pop()
        self.pieces = pieces
        self.starts = starts
        self.esc = "\\"
        # Go's bufio.Scanner stops at a line over 64 KiB: parse what comes before, then fail.
        self.too_long: int | None = None
        if pieces and max(map(len, pieces)) > _MAX_LINE_BYTES // 4:
            for i, p in enumerate(pieces):
                if len(p) > _MAX_LINE_BYTES // 4 and len(p.encode("utf-8", "surrogatepass")) > _MAX_LINE_BYTES:
                    self.too_long = i
                    break
        self.nlines = len(pieces) if self.too_long is None else self.too_long

    def fail(self, line: int, message: str) -> DockerfileSyntaxError:
        return DockerfileSyntaxError(line, message)

    def run(self) -> Dockerfile:
        text = self.text
        pieces = self.pieces
        starts = self.starts
        nlines = self.nlines
        directives: list[Directive] = []
        seen: set[str] = set()
        done = False
        out: list[Instruction] = []
        i = 0
        while i < nlines:
            raw = pieces[i].rstrip("\r")  # BuildKit's trimNewline
            first = starts[i]
            if i == 0 and raw.startswith("\ufeff"):
                raw = raw[1:]
                first += 1
            k = _lstrip_len(raw)
            stripped = raw[k:] if k else raw
            first += k
            i += 1
            if not done:
                done = self.directive(stripped, first, i, directives, seen)
            if stripped.startswith("#"):
                continue
            cut = _continues(stripped, self.esc)
            if cut < 0 and not stripped:
                continue
            start_line = i
            segs = [(first, cut if cut >= 0 else len(stripped))]
            own_end = first + len(stripped)
            while cut >= 0 and i < nlines:
                raw = pieces[i].rstrip("\r")
                at = starts[i]
                i += 1
                own_end = at + len(raw)
                k = _lstrip_len(raw)
                if k == len(raw) or raw[k] == "#":
                    continue  # comment or blank line inside a continuation: dropped
                cut = _continues(raw, self.esc)
                segs.append((at, cut if cut >= 0 else len(raw)))
            i = self.instruction(segs, own_end, start_line, i, out)
        if self.too_long is not None:  # BuildKit blames the line before; the long one is more useful
            raise self.fail(self.too_long + 1, f"dockerfile line greater than max allowed size of {_MAX_LINE_BYTES}")
        for ins in out:  # BuildKit's next step (instructions.Parse) rejects unknown keywords
            if ins.keyword not in INSTRUCTIONS:
                raise self.fail(ins.start_line, f"unknown instruction: {_keyword_text(ins)}")
        crlf = text.count("\r\n")
        return Dockerfile(
            text=text,
            escape=self.esc,
            directives=tuple(directives),
            instructions=tuple(out),
            newline="\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n",
            _line_starts=tuple(starts),
        )

    def directive(self, line: str, at: int, lineno: int, found: list[Directive], seen: set[str]) -> bool:
        """possibleParserDirective; returns True once directives are over."""
        if not line.startswith("#"):
            return True
        body = line[1:]
        body = body[_lstrip_len(body) :]
        m = _DIRECTIVE.match(body)
        if not m:
            return True
        key = m.group(1).lower()
        if key not in _VALID_DIRECTIVES:
            return True
        if key in seen:
            raise self.fail(lineno, f"only one {key} parser directive can be used")
        seen.add(key)
        value = m.group(2)
        if key == "escape":
            if value not in ("`", "\\"):
                raise self.fail(lineno, f"invalid escape token '{value}' does not match ` or \\")
            self.esc = value
        found.append(Directive(key, value, (at, at + len(line)), lineno))
        return False

    def instruction(
        self, segs: list[tuple[int, int]], own_end: int, start_line: int, i: int, out: list[Instruction]
    ) -> int:
        """Build the instruction for one joined line, read its heredocs; returns the next line."""
        text = self.text
        if len(segs) == 1:
            a, n = segs[0]
            line = text[a : a + n]
            table = ((0, a, n),)
        else:
            parts = []
            rows = []
            log = 0
            for a, n in segs:
                parts.append(text[a : a + n])
                rows.append((log, a, n))
                log += n
            line = "".join(parts)
            table = tuple(rows)
        logs = [r[0] for r in table]

        def at(j: int) -> int:
            r = table[bisect_right(logs, j) - 1]
            return r[1] + j - r[0]

        def end(j: int) -> int:
            return at(j - 1) + 1 if j > 0 else at(0)

        try:
            node = _node(line, 0, len(line), self.esc)
        except ValueError as e:
            raise self.fail(start_line, str(e)) from None

        target = node.child if node.cmd.lower() == "onbuild" and node.child else node
        docs: list[Heredoc] = []
        span_end = own_end
        if target.cmd.lower() in _HEREDOC_CMDS and not target.json and "<<" in line:
            try:
                specs = _heredoc_specs(line)
            except ValueError as e:
                raise self.fail(start_line, str(e)) from None
            for name, chomp, expand in specs:
                body = self.starts[i] if i < len(self.pieces) else len(text)
                while True:
                    if i >= self.nlines:
                        raise self.fail(start_line, "unterminated heredoc")
                    raw = self.pieces[i].rstrip("\r")
                    cand = raw.lstrip("\t") if chomp else raw
                    i += 1
                    if cand == name:
                        term = self.starts[i - 1]
                        span_end = term + len(raw)
                        docs.append(Heredoc(name, chomp, expand, text[body:term], (body, term), (body, span_end)))
                        break
        heredocs = tuple(docs)

        def build(nd: _Node) -> Instruction:
            inner = build(nd.child) if nd.child is not None else None
            if nd.cmd.lower() == "onbuild":  # BuildKit reports the wrapped instruction's values
                value = nd.child.chain if nd.child else ()
                is_json = nd.child.json if nd.child else False
            else:
                value, is_json = nd.chain, nd.json
            flags = []
            for w, a, b in nd.flags:
                name, eq, val = w[2:].partition("=")
                flags.append(Flag(name, val if eq else None, (at(a), end(b))))
            key_lo = at(nd.cmd_lo) if line else segs[0][0]
            args_lo = at(nd.args_lo) if nd.args_lo < nd.args_hi else own_end
            return Instruction(
                keyword=nd.cmd.upper(),
                keyword_span=(key_lo, end(nd.cmd_hi) if nd.cmd_hi > nd.cmd_lo else key_lo),
                flags=tuple(flags),
                args_span=(args_lo, own_end),
                value=value,
                json=is_json,
                heredocs=heredocs,
                span=(key_lo, span_end),
                start_line=start_line,
                end_line=i,
                inner=inner,
                _text=text,
                _segs=table,
                _args=(nd.args_lo, nd.args_hi),
            )

        out.append(build(node))
        return i


def _keyword_text(ins: Instruction) -> str:
    """The keyword as written, continuation-joined (BuildKit's error quotes it that way)."""
    lo, hi = ins.keyword_span
    return "".join(ins._text[max(lo, a) : min(hi, a + n)] for _, a, n in ins._segs)


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile ``text`` like BuildKit; raise DockerfileSyntaxError where it would fail."""
    return _Parser(text).run()
