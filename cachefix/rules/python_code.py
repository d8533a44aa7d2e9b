"""Calls in the Python a RUN runs (`python -c "..."`, `python - <<EOF`), read with libcst.

libcst keeps every byte of the source (comments, quotes, commas), so an argument can be
removed as an exact edit of the text, the rest untouched. It is imported only when a RUN
mentions a call worth reading: a lint of a file without one never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

Span = tuple[int, int]


@dataclass(frozen=True)
class Call:
    """A call by name (`snapshot_download`, `AutoModel.from_pretrained`): its string literal
    arguments (None where an argument is not one), and where each keyword argument is."""

    function: str
    owner: str | None
    positional: tuple[str | None, ...]
    keywords: dict[str, str | None]
    spans: dict[str, Span] = field(repr=False)  # text to delete to drop a keyword argument
    statement: bool  # the call is a statement of its own: its result is not used
    unpacked: bool  # `*args` or `**kwargs`: the arguments are not all known

    def argument(self, index: int, keyword: str) -> str | None:
        """A literal argument given by position or by keyword (None: absent or not a literal)."""
        if keyword in self.keywords:
            return self.keywords[keyword]
        return self.positional[index] if index < len(self.positional) else None

    def given(self, index: int, keyword: str) -> bool:
        return keyword in self.keywords or index < len(self.positional)


def calls(source: str, names: Iterable[str]) -> list[Call] | None:
    """The calls of these functions or methods in `source`, in order; None when it is not Python."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError:
        return None
    positions = wrapper.resolve(PositionProvider)
    starts = _line_starts(source)

    def offset(node: cst.CSTNode, end: bool) -> int:
        where = positions[node].end if end else positions[node].start
        return starts[where.line - 1] + where.column

    wanted = frozenset(names)
    found: list[Call] = []

    class Visitor(cst.CSTVisitor):
        def __init__(self) -> None:
            self.statements: set[int] = set()

        def visit_Expr(self, node: cst.Expr) -> None:
            self.statements.add(id(node.value))

        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if isinstance(func, cst.Name):
                function, owner = func.value, None
            elif isinstance(func, cst.Attribute):
                function, owner = func.attr.value, cst.Module([]).code_for_node(func.value)
            else:
                return
            if function not in wanted:
                return
            args = node.args
            spans = {arg.keyword.value: _deletion(args, i, offset) for i, arg in enumerate(args) if arg.keyword}
            found.append(Call(
                function, owner,
                tuple(_literal(a.value) for a in args if not a.keyword and not a.star),
                {a.keyword.value: _literal(a.value) for a in args if a.keyword},
                spans, id(node) in self.statements, any(a.star for a in args)))

    wrapper.visit(Visitor())
    return found


def without_keyword(source: str, call: Call, keyword: str, names: Iterable[str]) -> Span | None:
    """The span of `source` to delete to drop one keyword argument of `call`, checked: the
    result must parse, with the same calls, that one argument less (None otherwise)."""
    span = call.spans.get(keyword)
    if span is None:
        return None
    edited = source[:span[0]] + source[span[1]:]
    before, after = calls(source, names), calls(edited, names)
    if before is None or after is None or len(before) != len(after):
        return None
    index = before.index(call)
    expected = {k: v for k, v in call.keywords.items() if k != keyword}
    if after[index].keywords != expected or after[index].positional != call.positional:
        return None
    return span


def _deletion(args: tuple, index: int, offset) -> Span:  # type: ignore[no-untyped-def]
    """What to delete to drop `args[index]`: up to the next argument, or, for the last, from the
    end of the one before it (its comma goes too)."""
    arg = args[index]
    if index + 1 < len(args):
        return offset(arg, False), offset(args[index + 1], False)
    if index > 0:
        return offset(args[index - 1].value, True), offset(arg.value, True)
    return offset(arg, False), offset(arg, True)


def _literal(node: object) -> str | None:
    """The value of a plain string literal (implicit concatenation included), else None."""
    import libcst as cst

    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _line_starts(source: str) -> list[int]:
    """Offsets of the lines as libcst counts them (`\\n`, `\\r\\n` or `\\r` end one)."""
    return [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", source))]

