"""The simple commands inside a RUN, found by a real shell parser (tree-sitter-bash).

A rule must see `cd /app && python3 -m pip install -r r.txt` as a pip install and
`echo "pip install x"` as an echo, so commands are read from a syntax tree, never from a
regex on the raw text. Every word keeps its span in the Dockerfile (through the offset map
of the shell source), so a fix can delete `--no-cache-dir` or `rm -rf /var/lib/apt/lists/*`
and leave every other byte, continuation and comment where it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, NamedTuple

from cachefix.rewriter.dockerfile import DockerfileSyntaxError

if TYPE_CHECKING:
    import tree_sitter

Span = tuple[int, int]

SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh"})
# Operators after which the next command runs only if the previous one succeeded (or always):
# a command joined by one of these can be removed without changing the meaning of the rest.
REMOVABLE_JOINS = frozenset({"&&", ";", "\n", ""})


class Word(NamedTuple):
    """One argument of a command.

    `value` is the word after quote removal when it is static (no `$`, no backticks), else
    None: a rule must not guess what `$PIP_FLAGS` holds. `span` is the word's place in the
    Dockerfile, or None where the text was re-quoted (inside `sh -c "..."` with escapes).
    """

    raw: str
    value: str | None
    span: Span | None


class Assignment(NamedTuple):
    """`NAME=value` before a command: it sets NAME for that command only."""

    name: str
    value: str | None
    span: Span | None


@dataclass(frozen=True)
class Command:
    """A simple command: `[NAME=value ...] word word ...`, with where it sits in the file."""

    assignments: tuple[Assignment, ...]
    words: tuple[Word, ...]
    span: Span | None
    joined_before: str  # the operator joining it to the previous command ("" when first)
    joined_after: str  # the operator joining it to the next command ("" when last)
    removable: bool = False  # in a plain list, joined by `&&`, `;` or newlines only
    previous_end: int | None = None  # file offset just after the command before it
    next_start: int | None = None  # file offset of the command after it
    in_pipeline: bool = False
    substituted: bool = False  # runs inside `$(...)`: its output is used by another command
    unsets: tuple[str, ...] = ()  # variables `env -u NAME` removes for this command (see `through_env`)

    @cached_property
    def name(self) -> str:
        """The program's base name (`/usr/bin/pip3` → `pip3`), or "" when not static."""
        if not self.words or self.words[0].value is None:
            return ""
        return os.path.basename(self.words[0].value)

    @property
    def args(self) -> tuple[Word, ...]:
        return self.words[1:]

    def values(self) -> list[str | None]:
        return [w.value for w in self.words]

    def arg_values(self) -> list[str]:
        """The static arguments (dynamic ones left out)."""
        return [w.value for w in self.words[1:] if w.value is not None]

    @property
    def start(self) -> int | None:
        return self.span[0] if self.span else None


@lru_cache(maxsize=1)
def load_parser() -> tree_sitter.Parser:
    """The parser, imported on the first parse: a file whose RUNs mention no rule's words is linted
    without it (a run over a large tree loads it before forking its workers)."""
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


class _Source:
    """Shell source text with a map from its characters to offsets in the Dockerfile."""

    def __init__(self, text: str, offsets: Sequence[int] | None) -> None:
        self.text = text
        self.data = text.encode()
        self.offsets = offsets
        if len(self.data) == len(text):
            self._char_of: list[int] | None = None
        else:
            char_of: list[int] = []
            for i, ch in enumerate(text):
                char_of.extend([i] * len(ch.encode()))
            char_of.append(len(text))
            self._char_of = char_of

    def char(self, byte: int) -> int:
        return byte if self._char_of is None else self._char_of[byte]

    def node_text(self, node: tree_sitter.Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode()

    def file_span(self, start_byte: int, end_byte: int) -> Span | None:
        """Map [start, end) of this source to the Dockerfile; None when unmapped or empty."""
        if self.offsets is None or end_byte <= start_byte:
            return None
        start, end = self.char(start_byte), self.char(end_byte)
        return (self.offsets[start], self.offsets[end - 1] + 1)


def _static_value(node: tree_sitter.Node, src: _Source) -> str | None:
    """The word after quote removal, or None when it depends on the environment."""
    kind = node.type
    if kind in ("export", "variable_name"):  # the words of `export NAME ...`
        return src.node_text(node)
    if kind == "variable_assignment":  # `NAME=value` after `export`
        name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
        static = "" if value is None else _static_value(value, src)
        return None if name is None or static is None else f"{src.node_text(name)}={static}"
    if kind in ("word", "number"):
        text = src.node_text(node)
        if "$" in text or "`" in text:
            return None
        if "\\" not in text:
            return text
        out, escaped = [], False
        for ch in text:
            if escaped or ch != "\\":
                out.append(ch)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    if kind == "raw_string":
        return src.node_text(node)[1:-1]
    if kind == "string":
        parts = []
        for child in node.named_children:
            if child.type != "string_content":
                return None
            parts.append(child)
        text = src.node_text(node)[1:-1]
        if "\\" in text:
            for esc in ('\\"', "\\\\", "\\$", "\\`"):
                text = text.replace(esc, esc[1])
        return text
    if kind == "concatenation":
        values = [_static_value(child, src) for child in node.children]
        return None if any(v is None for v in values) else "".join(v for v in values if v)
    return None


def _word(node: tree_sitter.Node, src: _Source) -> Word:
    return Word(src.node_text(node), _static_value(node, src), src.file_span(node.start_byte, node.end_byte))


def _inner_script(command: Command, nodes: Sequence[tree_sitter.Node], src: _Source) -> _Source | None:
    """The script of `sh -c '...'`, mapped back into the file where the quoting allows."""
    if command.name not in SHELLS:
        return None
    names = command.values()
    for i, flag in enumerate(names[1:-1], start=1):
        if flag and flag.startswith("-") and not flag.startswith("--") and "c" in flag:
            script_node = nodes[i + 1]
            value = names[i + 1]
            if value is None:
                return None
            raw = src.node_text(script_node)
            quoted = script_node.type in ("raw_string", "string")
            if src.offsets is not None and (raw[1:-1] if quoted else raw) == value:
                first = src.char(script_node.start_byte) + (1 if quoted else 0)
                return _Source(value, [src.offsets[first + k] for k in range(len(value))])
            return _Source(value, None)
    return None


class _Place(NamedTuple):
    """Where a node sits: its parent's place, its parent's children, its index among them.

    tree-sitter's `parent`, `next_sibling` and `prev_sibling` search down from the root, so
    asking them for every command costs time in the square of the nesting depth (3,000 nested
    `$(...)` took seconds). The walk remembers each node's parent and siblings instead.
    """

    up: _Place | None
    siblings: Sequence[tree_sitter.Node]
    index: int
    depth: int  # how many `$(...)`, `<(...)` or `sh -c` strings it is in

    @property
    def node(self) -> tree_sitter.Node:
        return self.siblings[self.index]

    @property
    def parent_type(self) -> str:
        return self.up.node.type if self.up is not None else ""


def _neighbour(place: _Place, forward: bool) -> _Place | None:
    """The next (or previous) node in the flattened and-or list, skipping comments.

    tree-sitter nests `a && b && c` as `((a && b) && c)`; climbing out of `list` parents
    makes the operator after `b` visible.
    """
    step = 1 if forward else -1
    current = place
    while True:
        siblings = current.siblings
        i = current.index + step
        while 0 <= i < len(siblings) and (siblings[i].type == "comment" or siblings[i].is_missing):
            i += step  # a MISSING node is one the parser made up: no text joins anything there
        if 0 <= i < len(siblings):
            return _Place(current.up, siblings, i, current.depth)
        if current.parent_type != "list":
            return None
        current = current.up


def _join(place: _Place, forward: bool) -> str:
    """The operator on one side of a command: `&&`, `||`, `;`, `|`, "\n", or "" at an end."""
    sibling = _neighbour(place, forward)
    if sibling is None:
        return ""
    return "\n" if sibling.node.is_named else sibling.node.type


def _operand(place: _Place, forward: bool) -> tree_sitter.Node | None:
    """The command or list on the other side of the joining operator."""
    sibling = _neighbour(place, forward)
    if sibling is not None and not sibling.node.is_named:
        sibling = _neighbour(sibling, forward)
    return sibling.node if sibling is not None else None


SUBSTITUTIONS = ("command_substitution", "process_substitution")  # backticks are command_substitution too
_WRAPPERS = ("redirected_statement", "negated_command")  # a command's status passes through these
# Every level of `$(...)` holds the text of the levels inside it, and each level's words are read
# in full: the work grows with depth times size. Real scripts nest two or three deep.
MAX_DEPTH = 50


class ShellTooDeep(DockerfileSyntaxError):
    """A RUN nested deeper than MAX_DEPTH: it is reported and the file left alone, rather than
    analysed in time and memory that grow with the square of its size."""

    def __init__(self, line: int | None = None, message: str = "") -> None:
        super().__init__(line, message or (f"shell nested more than {MAX_DEPTH} levels deep (command "
                                           "substitutions or `sh -c` strings): cachefix does not analyse it"))


class _Walker:
    """Collects simple commands in source order: in lists, pipelines, subshells, compound
    statements, control flow and command substitutions, and in `sh -c` strings (parsed in
    turn; each level of quoting at least doubles the escapes, so they nest only a few deep).

    One pass over the tree with an explicit stack: time is linear in the script's size and
    no nesting depth reaches Python's recursion limit.
    """

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def walk(self, src: _Source, depth: int = 0) -> None:
        root = load_parser().parse(src.data).root_node
        stack = [_Place(None, (root,), 0, depth)]
        while stack:
            place = stack.pop()
            node = place.siblings[place.index]
            kind = node.type
            if kind == "command" or (kind == "declaration_command" and node.children[0].type == "export"):
                self._command(node, place, src)
            inner = place.depth + 1 if kind in SUBSTITUTIONS else place.depth
            if inner > MAX_DEPTH:
                raise ShellTooDeep
            children = node.children
            stack.extend([_Place(place, children, i, inner)  # leaves hold no command: not visited
                          for i in range(len(children) - 1, -1, -1) if children[i].child_count])

    def _command(self, node: tree_sitter.Node, place: _Place, src: _Source) -> None:
        assignments: list[Assignment] = []
        words: list[tree_sitter.Node] = []
        exporting = node.type == "declaration_command"  # `export A=/c B`: words `export`, `A=/c`, `B`
        if exporting:
            words.append(node.children[0])
        for child in node.named_children:
            kind = child.type
            if kind == "variable_assignment" and not exporting:
                name = child.child_by_field_name("name")
                value = child.child_by_field_name("value")
                assignments.append(Assignment(
                    src.node_text(name) if name else "",
                    _static_value(value, src) if value is not None else "",
                    src.file_span(child.start_byte, child.end_byte),
                ))
            elif kind == "command_name":
                words.append(child.named_children[0] if child.named_children else child)
            elif kind not in ("file_redirect", "herestring_redirect", "comment"):
                words.append(child)
        # A command's position in its list decides whether it can be removed on its own.
        anchor = place
        while anchor.parent_type in _WRAPPERS:
            anchor = anchor.up
        parent = anchor.parent_type
        in_pipeline = parent == "pipeline"
        before, after = _join(anchor, forward=False), _join(anchor, forward=True)
        command = Command(
            assignments=tuple(assignments),
            words=tuple(_word(w, src) for w in words),
            span=src.file_span(anchor.node.start_byte, anchor.node.end_byte),
            joined_before=before,
            joined_after=after,
            removable=not in_pipeline and _removable(parent, before, after),
            previous_end=_edge(_operand(anchor, forward=False), src, end=True),
            next_start=_edge(_operand(anchor, forward=True), src, end=False),
            in_pipeline=in_pipeline,
            substituted=place.depth > 0,
        )
        self.commands.append(command)
        inner = _inner_script(command, words, src)
        if inner is not None:
            self.walk(inner, place.depth + 1)


def _removable(parent: str, before: str, after: str) -> bool:
    """A command joined by `||` or in a pipeline is not removable: its exit status matters."""
    return (before in REMOVABLE_JOINS and after in REMOVABLE_JOINS and bool(before or after)
            and parent in ("program", "list", "compound_statement", "subshell"))


def _edge(node: tree_sitter.Node | None, src: _Source, *, end: bool) -> int | None:
    if node is None:
        return None
    span = src.file_span(node.end_byte - 1, node.end_byte) if end else src.file_span(node.start_byte,
                                                                                       node.start_byte + 1)
    if span is None:
        return None
    return span[1] if end else span[0]


def removal_spans(doomed: Sequence[Command]) -> list[Span] | None:
    """File ranges that delete these commands, each with one joining operator; None if unsafe.

    Consecutive commands go together. Which operator goes decides what joins the neighbours
    afterwards: in `a && rm x; b` the `&&` goes (`a; b`), in `a; rm x && b` the `&&` goes too
    (`a; b`), so `b` runs exactly when it ran before.
    """
    groups: list[list[Command]] = []
    for command in doomed:
        if not command.removable or command.span is None:
            return None
        if groups and groups[-1][-1].next_start == command.span[0]:
            groups[-1].append(command)
        else:
            groups.append([command])
    spans: list[Span] = []
    for group in groups:
        first, last = group[0], group[-1]
        before, after = first.joined_before, last.joined_after
        backward = not after or (before and after in (";", "\n"))
        if backward and first.previous_end is not None and last.span is not None:
            spans.append((first.previous_end, last.span[1]))
        elif not backward and last.next_start is not None and first.span is not None:
            spans.append((first.span[0], last.next_start))
        else:
            return None
    return spans


def commands(script: str, offsets: Sequence[int] | None = None) -> list[Command]:
    """Every simple command in `script`, in order; spans are mapped through `offsets`."""
    walker = _Walker()
    walker.walk(_Source(script, offsets))
    return walker.commands


def exec_form_commands(argv: Sequence[str], source: str = "", offsets: Sequence[int] | None = None) -> list[Command]:
    """A JSON-form RUN runs one program with no shell; `["sh", "-c", "..."]` still has one.

    With the JSON text and its offsets, each element keeps its span (quotes included), so a
    fix can drop `"--no-cache-dir"` from the array.
    """
    spans = _json_string_spans(source, offsets) if offsets is not None else []
    if len(spans) != len(argv):
        spans = [None] * len(argv)
    words = tuple(Word(a, a, span) for a, span in zip(argv, spans, strict=True))
    found = [Command((), words, None, "", "")]
    if len(argv) >= 3 and os.path.basename(argv[0]) in SHELLS and argv[1].startswith("-") and "c" in argv[1]:
        found.extend(commands(argv[2]))
    return found


def _json_string_spans(source: str, offsets: Sequence[int]) -> list[Span | None]:
    """File spans of the string elements of a JSON array, in order."""
    spans: list[Span | None] = []
    i = 0
    while i < len(source):
        if source[i] == '"':
            j = i + 1
            while j < len(source) and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            if j >= len(source):
                return []
            spans.append((offsets[i], offsets[j] + 1))
            i = j
        i += 1
    return spans


def iter_options(words: Sequence[Word]) -> Iterator[tuple[int, str, str | None]]:
    """(index, option, inline value) for each `--opt`, `--opt=value` or `-o` word."""
    for i, word in enumerate(words):
        value = word.value
        if value is None or not value.startswith("-") or value == "-":
            continue
        if value.startswith("--") and "=" in value:
            name, _, inline = value.partition("=")
            yield i, name, inline
        else:
            yield i, value, None


_ENV_VALUE_OPTIONS = frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"})


def through_env(command: Command) -> Command:
    """`env [-i] [-u NAME]... [NAME=value]... prog args` seen as the command it runs: `prog args`,
    with env's `NAME=value` words as its assignments and `-u NAME` as `unsets`. Rules then see
    the package manager, and a fix can edit its words; GNU's and BusyBox's env read these the same.
    Unchanged when env's options are not static or it runs nothing (`env` alone prints the environment).
    """
    if command.name != "env":
        return command
    words, unsets, assignments = list(command.words[1:]), list(command.unsets), list(command.assignments)
    while words:
        value = words[0].value
        if value is None:
            return command
        if value in ("-u", "--unset") and len(words) > 1 and words[1].value:
            unsets.append(words[1].value)
            words = words[2:]
        elif value.startswith("--unset="):
            unsets.append(value.partition("=")[2])
            words = words[1:]
        elif value.startswith("-") and value not in _ENV_VALUE_OPTIONS and value != "-":
            words = words[1:]  # -i, -0, --ignore-environment: nothing a cache depends on
        elif "=" in value and not value.startswith("="):
            name, _, assigned = value.partition("=")
            assignments.append(Assignment(name, assigned, words[0].span))
            words = words[1:]
        else:
            break
    if not words or (words[0].value or "").startswith("-"):
        return command
    return replace(command, assignments=tuple(assignments), words=tuple(words), unsets=tuple(unsets))
