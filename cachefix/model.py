"""What a lint run produces: findings, their fixes as text edits, and per-file results.

Everything here is plain data, shared by the rules (which make findings), the engine (which
applies edits) and the reporters (which print them in text, JSON, SARIF, GitHub, GitLab).
None of it is a dataclass: a check answered from the result cache imports this, and importing
dataclasses (it imports inspect) and making a dataclass cost about a fifth of such a run. The
immutable records are NamedTuples (a changed copy is `record._replace(...)`), the two that a run
fills in are plain classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from cachefix.rules.registry import DeferredRule
    from cachefix.rules.rule import Rule


class Severity(str, Enum):
    """How bad a finding is; `fail-on` in the configuration picks which fail `check`."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Edit(NamedTuple):
    """Replace text[start:end] with `replacement` (offsets into the decoded file text)."""

    start: int
    end: int
    replacement: str


class Position(NamedTuple):
    """A 1-based line and column, as editors and SARIF count them."""

    line: int
    column: int


class Finding(NamedTuple):
    """One problem in one file, with the edits that fix it when a fix is known."""

    code: str
    manager: str
    message: str
    start: Position
    end: Position
    severity: Severity = Severity.WARNING
    edits: tuple[Edit, ...] = ()
    # Other places the finding concerns, as (start, end): the RUNs a stage-wide ENV affects.
    related: tuple[tuple[Position, Position], ...] = ()
    # The `--mount=type=cache,...` flags the edits write, as written: the engine orders and
    # checks mounts by these, never by reading edit text.
    mounts: tuple[str, ...] = ()
    fix_title: str = ""  # what the fix does, in a few words ("add --mount=...")

    @property
    def fixable(self) -> bool:
        return bool(self.edits)


class Options(NamedTuple):
    """Settings a rule may honour (from the command line or the configuration file)."""

    id_prefix: str = ""
    sharing: str | None = None
    id_scope: str | None = None  # "distro" or "arch": see cachefix.rules.id_scope


class Settings(NamedTuple):
    """What a run was asked to do, independent of any one file. (This and Outcome are NamedTuples:
    a dataclass costs about 0.3 ms more to create, paid on every run, a cached check included.)"""

    rules: Sequence[Rule | DeferredRule]
    syntax: str | None = None  # None: the default frontend; "none": never write one
    images: Mapping[str, str] = MappingProxyType({})  # private base image → the image it is built like


class Outcome(NamedTuple):
    """Findings on the original text, the fixed text, and what the fixed text still has.

    `ignored` and `still_ignored` are what ignore comments silenced in the original and in the
    fixed text; `skipped` is a file with `# cachefix: skip-file`, neither parsed nor changed.
    """

    findings: list[Finding]
    fixed: str
    remaining: list[Finding]
    ignored: list[Finding]
    still_ignored: list[Finding]
    skipped: bool = False


class FileError(NamedTuple):
    """A file that could not be read, parsed or written; it is left untouched."""

    path: Path
    message: str
    line: int | None = None


class FileResult:
    """What happened to one file: what was found, what is left, and whether it changed."""

    __slots__ = ("declined", "findings", "fixed", "ignored", "original", "path", "remaining", "skipped", "was_changed")

    def __init__(self, path: Path, findings: list[Finding] | None = None, remaining: list[Finding] | None = None,
                 ignored: list[Finding] | None = None, original: str = "", fixed: str | None = None,
                 skipped: bool = False, declined: str = "") -> None:
        self.path = path
        self.findings = findings if findings is not None else []
        self.remaining = remaining if remaining is not None else []
        self.ignored = ignored if ignored is not None else []
        self.original = original
        self.fixed = fixed
        self.skipped = skipped  # `# cachefix: skip-file`: not parsed, not changed
        self.declined = declined  # why a fix was not written although it could have been (hard links)
        self.was_changed: bool | None = None  # `changed`, remembered when the texts are released

    @property
    def changed(self) -> bool:
        if self.was_changed is not None:
            return self.was_changed
        return self.fixed is not None and self.fixed != self.original

    def release_texts(self, fixing: bool) -> None:
        """Forget the texts no report reads: a file with findings to list keeps the one their
        positions refer to (the fixed text after a fix), any other keeps none. A run over a large
        tree then holds little more per file than its findings."""
        self.was_changed = self.changed
        listed = bool(self.remaining if fixing else self.findings) or bool(self.ignored)
        kept = (self.fixed if fixing and self.fixed is not None else self.original) if listed else ""
        self.original, self.fixed = kept, None


class LintReport:
    """A whole run: every file looked at and every error met."""

    __slots__ = ("errors", "files", "fixing")

    def __init__(self, files: list[FileResult] | None = None, errors: list[FileError] | None = None,
                 fixing: bool = False) -> None:
        self.files = files if files is not None else []
        self.errors = errors if errors is not None else []
        self.fixing = fixing

    @property
    def checked(self) -> int:
        """How many files were looked at: a file with findings that could not be written counts once."""
        return len({r.path for r in self.files} | {e.path for e in self.errors})

    @property
    def findings(self) -> list[Finding]:
        """What is still wrong: after a fix, only what could not be fixed."""
        return [f for r in self.files for f in (r.remaining if self.fixing else r.findings)]
