"""What a rule is: a code, a name, its documentation, and a check over one RUN or one file.

Two kinds: a `RunRule` looks at each RUN with what is in effect for it (most rules, one per
package manager); a `FileRule` looks at the file as a whole (the `# syntax=` directive,
suppression comments). The engine asks each kind the same way, with no special cases.

A run rule that needs to know what earlier RUNs of a stage did (apt: did the file delete
`docker-clean`?) keeps it in its own `State`, which `observe` builds from what every RUN
*does*, whether or not the rule reports on it. Nothing a rule proposes, and no suppression
comment, can change what a later RUN is told.

The class docstring is the rule's documentation, in ruff's sections (*What it does*, *Why is
this bad?*, *Example*, *Use instead*, *Fix safety*): `cachefix explain CODE` prints it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from cachefix.model import Edit, Finding, Options, Position, Severity
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import TARGET_KEYS, UnsafeMount
from cachefix.rewriter.shell import Command
from cachefix.rewriter.stages import lineage
from cachefix.shown import displayable

Span = tuple[int, int]


@dataclass(frozen=True)
class NoState:
    """The state of a rule that needs nothing from earlier RUNs."""


@dataclass(frozen=True)
class FileScope:
    """What a rule looks at in one file: the parsed file, the `--syntax` asked for, the file's
    suppression comments (an object of `cachefix.suppressions`) and its RUNs in context."""

    dockerfile: Dockerfile
    syntax: str | None
    suppressions: object
    runs: Sequence[RunContext]


class Rule:
    """What every rule has: its identity and documentation, and how it words a finding."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    manager: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # Whether `# cachefix: ignore` comments can silence it (not the rule that reports on them).
    silenceable: ClassVar[bool] = True

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()

    def lint(self, scope: FileScope) -> Iterable[Finding]:
        """Every finding of the rule in one file; each kind of rule knows how to look."""
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    def finding(self, dockerfile: Dockerfile, span: Span, message: str, fix: Sequence[Edit] = (), *,
                mounts: Sequence[str] = (), title: str = "", severity: Severity = Severity.WARNING,
                related: Sequence[Span] = ()) -> Finding:
        """A finding at `span`; `mounts` are the `--mount` flags its `fix` writes, `title` says
        what the fix does in a few words (SARIF shows it on the fix)."""
        start, end = positions(dockerfile, span)
        return Finding(self.code, self.manager, message, start, end, severity, tuple(fix),
                       tuple(positions(dockerfile, r) for r in related), tuple(mounts),
                       title or (f"add {' '.join(mounts)}" if mounts and fix else ""))


class RunRule(Rule):
    """A rule over RUN instructions; subclasses set `triggers` and implement `check`."""

    # Words one of which a RUN must contain (as written, or with variables expanded) for
    # `check` to be called; empty: every RUN.
    triggers: ClassVar[tuple[str, ...]] = ()
    # Words one of which a RUN must contain for `observe` to be called; empty: never called.
    observes: ClassVar[tuple[str, ...]] = ()
    State: ClassVar[type] = NoState

    def lint(self, scope: FileScope) -> Iterator[Finding]:
        """The rule over every RUN in order. Its state is what earlier RUNs of the stage (and of the
        stages it is built from) did, observed whether or not the rule reported on them."""
        final: dict[int, object] = {}  # each stage's state after its last RUN so far
        for run in scope.runs:
            stage = run.stage
            state, parent = final.get(stage.index), stage.parent
            while state is None and parent is not None:
                state, parent = final.get(parent), run.replay.stages[parent].parent
            if state is None:  # the first RUN of a stage built FROM an image, maybe one the tree builds
                state = self._observed(run.replay.stages[lineage(run.replay.stages, stage.index)[-1]].base_runs)
            if self.observes and run.mentions(self.observes):
                state = self.observe(run, state)
            final[stage.index] = state
            if not self.triggers or run.mentions(self.triggers):
                yield from self.findings(run, state)

    def _observed(self, runs: Iterable[RunContext]) -> object:
        """The state after `runs` (the RUNs that built a base image, from its Dockerfile in the tree)."""
        state = self.State()
        for run in runs:
            if self.observes and run.mentions(self.observes):
                state = self.observe(run, state)
        return state

    def observe(self, run: RunContext, state: object) -> object:
        """The state after this RUN ran, from what it does (not from what the rule would fix).
        Called for each RUN mentioning one of `observes`, in order, before `check` of that RUN;
        a stage built FROM another starts with that stage's final state."""
        return state

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        raise NotImplementedError

    def findings(self, run: RunContext, state: object) -> list[Finding]:
        """`check`, except that a mount whose flag cannot be written safely (a cache folder with
        a space in it, say: the rest of the path would run as a command) is a finding without a
        fix, never an edit."""
        found: list[Finding] = []
        try:
            found.extend(self.check(run, state))
        except UnsafeMount as unsafe:
            subject = "the cache folder" if unsafe.key in TARGET_KEYS else f"the mount's {unsafe.key}"
            found.append(self.finding(
                run.dockerfile, run.instruction.span,
                f"{self.manager} needs a cache mount here, but {subject} `{displayable(unsafe.value)}` "
                f"{unsafe.problem}, which cachefix cannot write into a `--mount` flag safely: add the mount "
                "by hand (quoted as your builder reads it), or move the cache to a folder without it"))
        if run.stage.base_file:  # say where what the file does not show came from
            found = [f._replace(message=f"{f.message} (the base image's settings are read from {run.stage.base_file})")
                     for f in found]
        return found

    def at(self, run: RunContext, command: Command | None, message: str, fix: Sequence[Edit] = (), *,
           mounts: Sequence[str] = (), related: Sequence[Span] = ()) -> Finding:
        """A finding on one command of the RUN (on the RUN where the command has no place in the file)."""
        span = command.span if command is not None and command.span else run.instruction.span
        return self.finding(run.dockerfile, span, message, fix, mounts=mounts, related=related)


class FileRule(Rule):
    """A rule over the whole file; subclasses implement `check_file`."""

    def lint(self, scope: FileScope) -> Iterable[Finding]:
        return self.check_file(scope)

    def check_file(self, scope: FileScope) -> Iterable[Finding]:
        raise NotImplementedError


def positions(dockerfile: Dockerfile, span: Span) -> tuple[Position, Position]:
    """1-based start and end (exclusive column) of a span, as findings carry them."""
    start = Position(*dockerfile.position(span[0]))
    end = Position(*dockerfile.position(max(span[0], span[1] - 1)))
    return start, Position(end.line, end.column + 1)
