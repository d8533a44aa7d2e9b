"""What the two kinds of package-manager rule share: the manager's programs, which of their
commands download, and which empty the cache.

Commands are matched on their operands (`"cache clean"` for `npm --loglevel warn cache clean
--force`), after `sudo`, `python -m` and script interpreters are seen through (`calls.invocation`).
"""

from __future__ import annotations

from typing import ClassVar

from cachefix.rewriter.context import RunContext
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation, invocation
from cachefix.rules.rule import RunRule


class ManagerRule(RunRule):
    """A rule for one package manager; subclasses state its commands as class attributes."""

    programs: ClassVar[frozenset[str]] = frozenset()
    takes_value: ClassVar[frozenset[str]] = frozenset()  # options whose value is the next word
    downloading: ClassVar[frozenset[str]] = frozenset()  # operand phrases that download ("pip install"); empty: any
    clean_ups: ClassVar[tuple[str, ...]] = ()  # operand phrases that empty the cache ("cache clean")

    def call(self, command: Command) -> Invocation | None:
        """How the command runs the manager, or None when it does not."""
        return invocation(command, self.programs, self.takes_value)

    def calls(self, run: RunContext) -> list[tuple[Command, Invocation]]:
        """The RUN's commands that download, with how they run the manager."""
        return [(c, call) for c in run.commands if (call := self.call(c))
                and (not self.downloading or call.runs(*self.downloading))]

    def is_clean_up(self, command: Command) -> bool:
        call = self.call(command)
        return call is not None and call.runs(*self.clean_ups)
