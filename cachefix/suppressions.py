"""`# cachefix: ignore[CODE,...]` and `# cachefix: skip-file` comments in a Dockerfile.

An ignore comment silences findings on the instruction right below it (other comment lines
may sit between them, a blank line may not). A skip-file comment in the header (the comments
before the first instruction) makes cachefix leave the whole file alone: it is found by
reading lines, before parsing, so a template that does not parse can be skipped too.
A suppression that cannot work (an unknown code, nothing below it, a typo in the directive)
is reported as CF900 rather than silently doing nothing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cachefix.model import Finding, Position
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rules.registry import UnknownRule, select_rules
from cachefix.rules.rule import FileRule, FileScope
from cachefix.shown import displayable

_DIRECTIVE = re.compile(r"#\s*cachefix\s*:\s*(?P<body>.*?)\s*$", re.IGNORECASE)
# `ignore[CODES]`, `ignore [CODES]` (the same) or `skip-file`, then nothing or free text after a space.
_BODY = re.compile(r"(?P<kind>ignore|skip-file)(?:\s*\[(?P<codes>[^\[\]]*)\])?(?P<rest>.*)$", re.IGNORECASE)
_CODE_WORD = re.compile(r"[A-Za-z]+[0-9]+\b")  # `ignore CF101`: codes outside brackets
_NO_COLON = re.compile(r"#\s*cachefix[\s=.,;_-]*(?:ignore|skip[-_ ]?file)\b", re.IGNORECASE)
# Letters of `cachefix`, `ignore` and `skip-file` that other scripts draw alike (NFKC folds the rest).
_LOOKALIKES = str.maketrans("асеһіјкорѕхɡıοκ", "acehijkopsxgiok")


class InvalidSuppression(FileRule):
    """
    ## What it does
    Reports a `# cachefix:` comment that silences nothing: an unknown rule code in
    `ignore[...]`, an `ignore` with no instruction directly below it, a `skip-file` after the
    first instruction, a directive cachefix does not know, codes outside the brackets
    (`ignore CF101`), a missing colon, or look-alike letters from other scripts.

    ## Why is this bad?
    A suppression that does not work looks as if it did: the finding it was meant for comes
    back in CI, or worse, a typo hides nothing while the reader believes it does.

    This finding cannot itself be selected, ignored or suppressed: fix the comment.

    ## Example
    ```dockerfile
    # cachefix: ignore[CF110]

    RUN pip install -r requirements.txt
    ```

    ## Use instead
    ```dockerfile
    # cachefix: ignore[CF101]
    RUN pip install -r requirements.txt
    ```

    ## Fix safety
    Not fixed: only the author knows what the comment was meant to say.
    """

    code = "CF900"
    name = "invalid-suppression"
    manager = "cachefix"
    summary = "a `# cachefix:` comment that cannot work"

    silenceable = False

    def check_file(self, scope: FileScope) -> Iterable[Finding]:
        """The problems `Suppressions.read` found in the file's comments."""
        assert isinstance(scope.suppressions, Suppressions)
        return scope.suppressions.problems


@dataclass(frozen=True)
class _Directive:
    kind: str  # "ignore", "skip-file", or "" for a directive that is not one of them
    codes: tuple[str, ...] | None  # the bracketed list, None without brackets
    text: str
    problem: str | None = None  # why a malformed directive does nothing


def _directive(line: str) -> _Directive | None:
    """The `# cachefix: ...` directive on a comment line, or None for an ordinary line.

    What looks meant as one but is not written right does nothing and says so, so that no
    typo silences more, or less, than its author believes.
    """
    stripped = _stripped(line)
    match = _DIRECTIVE.match(stripped)
    if match is None:
        return _near_miss(stripped)
    body = _BODY.match(match["body"])
    rest = body["rest"] if body else ""
    if body is None or (rest and not rest[0].isspace()) or rest.lstrip().startswith(("[", "]")):
        return _Directive("", None, match["body"])
    codes = None if body["codes"] is None else tuple(c.strip() for c in body["codes"].split(",") if c.strip())
    if codes is None and body["kind"].lower() == "ignore" and (code := _CODE_WORD.match(rest.lstrip())):
        return _Directive("", None, match["body"], f"codes go in brackets: write `ignore[{code[0]}]` (as it "
                                                   "is, this comment silences nothing)")
    return _Directive(body["kind"].lower(), codes, match["body"])


def _near_miss(comment: str) -> _Directive | None:
    """A comment meant as a directive: look-alike letters from other scripts, or no colon."""
    if not comment.isascii():
        import unicodedata  # only for the rare comment with non-ASCII text

        folded = "".join(c for c in comment if unicodedata.category(c) != "Cf")
        folded = unicodedata.normalize("NFKC", folded).translate(_LOOKALIKES)
        if folded != comment and (_DIRECTIVE.match(folded) or _NO_COLON.match(folded)):
            return _Directive("", None, comment, "this `cachefix:` comment has look-alike characters from other "
                                                 "scripts or invisible ones: retype it in ASCII")
    if _NO_COLON.match(comment):
        return _Directive("", None, comment, "a colon is missing: write `# cachefix: ignore[CODE]` or "
                                             "`# cachefix: skip-file`")
    return None


def _stripped(line: str) -> str:
    return line.lstrip("\ufeff").strip()


def skips_file(text: str) -> bool:
    """A `# cachefix: skip-file` among the comments before the first instruction."""
    for line in text.split("\n"):
        stripped = _stripped(line)
        if not stripped:
            continue
        if not stripped.startswith("#"):
            return False
        found = _directive(stripped)
        if found is not None and found.kind == "skip-file" and found.codes is None and found.problem is None:
            return True
    return False


@dataclass
class Suppressions:
    """The ignore comments of one file: instruction start line → silenced codes (None: all)."""

    silenced: dict[int, frozenset[str] | None] = field(default_factory=dict)
    problems: list[Finding] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _ends: list[int] = field(default_factory=list)

    @classmethod
    def read(cls, dockerfile: Dockerfile) -> Suppressions:
        lines = dockerfile.text.split("\n")
        instructions = dockerfile.instructions
        covered = {n for i in instructions for n in range(i.start_line, i.end_line + 1)}
        starts = {i.start_line for i in instructions}
        first = min(starts, default=len(lines) + 1)
        found = cls(_starts=[i.start_line for i in instructions], _ends=[i.end_line for i in instructions])

        def comment(number: int) -> bool:
            return number <= len(lines) and number not in covered and _stripped(lines[number - 1]).startswith("#")

        for number in range(1, len(lines) + 1):
            if not comment(number) or (directive := _directive(lines[number - 1])) is None:
                continue
            problem = found._understand(directive, number, first, comment, starts)
            if problem:
                found.problems.append(_problem(lines[number - 1], number, problem))
        return found

    def _understand(self, directive: _Directive, number: int, first: int, comment: Callable[[int], bool],
                    starts: set[int]) -> str | None:
        """Record what the directive on line `number` silences; the problem with it, if any."""
        if directive.problem is not None:
            return directive.problem
        if directive.kind == "skip-file":
            if directive.codes is not None:
                return "`skip-file` takes no codes; to silence some codes in one instruction use `ignore[CODE]`"
            return None if number < first else "`skip-file` works only in the comments before the first instruction"
        if directive.kind != "ignore":
            return (f"unknown directive `cachefix: {displayable(directive.text)}`; write `# cachefix: ignore`, "
                    "`# cachefix: ignore[CODE,...]` or `# cachefix: skip-file`")
        target = number + 1
        while comment(target):
            target += 1
        if target not in starts:
            return "this `cachefix: ignore` applies to no instruction: put it on the line right above one"
        if directive.codes == ():
            return "`ignore[]` names no code; write `ignore` to silence every code, or list the codes"
        codes, unknown = _resolve(directive.codes)
        previous = self.silenced.get(target, frozenset())
        self.silenced[target] = None if codes is None or previous is None else previous | codes
        if unknown:
            listed = ", ".join(displayable(code) for code in unknown)
            return f"unknown rule code{'s' if len(unknown) > 1 else ''} {listed} (see `cachefix rules`)"
        return None

    def is_silenced(self, finding: Finding) -> bool:
        at = bisect_right(self._starts, finding.start.line) - 1
        if at < 0 or finding.start.line > self._ends[at]:
            return False
        start = self._starts[at]
        if start not in self.silenced:
            return False
        codes = self.silenced[start]
        return codes is None or finding.code in codes

    def partition(self, findings: Iterable[Finding]) -> tuple[list[Finding], list[Finding]]:
        """(findings that count, findings an ignore comment silenced)."""
        kept: list[Finding] = []
        silenced: list[Finding] = []
        for finding in findings:
            (silenced if self.is_silenced(finding) else kept).append(finding)
        return kept, silenced


def _resolve(patterns: tuple[str, ...] | None) -> tuple[frozenset[str] | None, list[str]]:
    """Codes a bracketed list names (codes, prefixes or managers, as for --select) and the unknown ones."""
    if patterns is None:
        return None, []
    codes: set[str] = set()
    unknown: list[str] = []
    for pattern in patterns:
        try:
            codes.update(rule.code for rule in select_rules([pattern], None))
        except UnknownRule:
            unknown.append(pattern)
    return frozenset(codes), unknown


def _problem(line: str, number: int, message: str) -> Finding:
    text = line.rstrip()
    return Finding(InvalidSuppression.code, InvalidSuppression.manager, message,
                   Position(number, text.index("#") + 1), Position(number, len(text) + 1))
