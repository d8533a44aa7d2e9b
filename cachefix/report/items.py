"""What every report format lists: each finding with the text it points into, the path as CI
systems resolve it, and a fingerprint that survives the finding moving to another line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from cachefix.model import FileResult, Finding, LintReport
from cachefix.report.positions import LineIndex


class Item(NamedTuple):
    """One finding to report; `ignored` ones are listed only with --show-ignored."""

    result: FileResult
    finding: Finding
    index: LineIndex  # of the text the finding's positions (and its edits) refer to
    fingerprint: str
    ignored: bool = False

    @property
    def path(self) -> str:
        return display_path(self.result.path)


def display_path(path: Path) -> str:
    """Relative to the current folder when inside it, with forward slashes: what GitHub
    annotations, GitLab code quality and SARIF's %SRCROOT% resolve against the checkout."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def fingerprint(*parts: object) -> str:
    import hashlib  # fingerprints are for gitlab and sarif only: text and json never pay for it

    return hashlib.sha256("\0".join(map(str, parts)).encode("utf-8")).hexdigest()


def items(report: LintReport, *, show_ignored: bool = False) -> Iterator[Item]:
    """The findings to report, file by file, in file order.

    After a fix the remaining findings and their edits refer to the fixed text. A fingerprint
    hashes the path, the code and the flagged text with its whitespace normalised, so it stays
    the same when lines are added above; the same text flagged twice in a file is told apart by
    its occurrence number.
    """
    for result in report.files:
        text = result.fixed if report.fixing and result.fixed is not None else result.original
        index = LineIndex(text)
        path = display_path(result.path)
        groups = [(result.remaining if report.fixing else result.findings, False)]
        if show_ignored:
            groups.append((result.ignored, True))
        listed: list[Item] = []
        for findings, ignored in groups:
            seen: Counter[tuple[str, str]] = Counter()
            for finding in findings:
                flagged = " ".join(index.excerpt(finding.start, finding.end).split())
                seen[finding.code, flagged] += 1
                digest = fingerprint(path, finding.code, flagged, seen[finding.code, flagged], ignored)
                listed.append(Item(result, finding, index, digest, ignored))
        yield from sorted(listed, key=lambda i: (i.finding.start.line, i.finding.start.column, i.finding.code))
