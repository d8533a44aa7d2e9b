"""The rule kind for a system package manager: fixed cache folders, run as root, one lock.

apt, apk and dnf cache in folders that do not depend on the user (`/var/cache/apt`,
`/var/cache/apk`, `/var/cache/dnf`), take a lock there, and are emptied by their own `clean`
commands or an `rm -rf`. A rule of this kind states the facts; the fix mounts every target
(the first with `sharing=locked`, which serialises every RUN that carries it), drops the
clean-ups that would empty the mounts, and reports those that cannot be dropped.

Hooks: `targets` (where the folders depend on the image or the command line) and
`extra_edits` (options that make the manager keep what it downloads).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from cachefix.model import Edit, Finding
from cachefix.rewriter.context import RunContext, shell_env
from cachefix.rewriter.mounts import CacheMount
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation
from cachefix.rules.cleanup import clean_up
from cachefix.rules.manager import ManagerRule
from cachefix.rules.placement import mount_fix


class SystemCacheRule(ManagerRule):
    """A rule for a manager with fixed cache folders; subclasses state the facts below."""

    folders: ClassVar[tuple[str, ...]] = ()
    locked: ClassVar[str] = ""  # the folder whose mount is `sharing=locked` (default: the first)
    # `find ... -delete` reaching into the cache leaves packages a later build installs incomplete.
    deletions_corrupt: ClassVar[bool] = False

    def calls(self, run: RunContext) -> list[tuple[Command, Invocation]]:
        """The RUN's commands that download, as root (or through sudo): installing needs root,
        and a user's run fails before it downloads anything."""
        found = super().calls(run)
        if run.uid not in (0, None) and all(c.name != "sudo" for c, _ in found):
            return []
        return found

    def targets(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                state: object) -> tuple[str, ...] | Finding:
        """The folders to mount for these calls (or a finding on why none can be), given what
        earlier RUNs did (`state`: apk's cache folder may have become a symlink)."""
        return self.folders

    def extra_edits(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                    state: object) -> tuple[list[Edit], str]:
        """Edits on the calls that make the manager keep its downloads, and a description of any
        that cannot be placed (the call is inside a quoted script), for the finding's message."""
        return [], ""

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        calls = self.calls(run)
        if not calls:
            return
        first = calls[0][0]
        targets = self.targets(run, calls, state)
        if isinstance(targets, Finding):
            yield targets
            return
        lock = self.locked if self.locked in targets else targets[0]
        wanted = [CacheMount(t, sharing="locked" if t == lock else None) for t in targets]
        mounts = mount_fix(run, wanted, self.options, self.manager)
        extra, missing = self.extra_edits(run, calls, state)
        plan = clean_up(run.commands, self.is_clean_up, targets, run.home, shell_env(run),
                        deletions_corrupt=self.deletions_corrupt)
        if not mounts.flags and not extra and not plan.edits and plan.breaker is None:
            return
        if plan.breaker is not None:
            yield self.at(run, plan.breaker, plan.problem(" and ".join(targets)))
            return
        program = calls[0][1].program
        if not mounts.flags and not extra:  # the RUN has its mounts, and empties them on every build
            yield self.at(run, first, f"this RUN mounts {program}'s cache on {' and '.join(targets)} and then empties "
                                      "it: the clean-up goes (the mount keeps the cache out of the image)", plan.edits)
            return
        where = " and ".join(mounts.targets) or "its cache"
        if missing:
            yield self.at(run, first, f"{program} downloads without cache mounts on {where}, and cachefix cannot "
                                      f"edit its command here (inside a quoted script): add {missing} to it and "
                                      f"the mounts {' '.join(f'`{f}`' for f in mounts.flags)}")
            return
        flags = " ".join(f"`{f}`" for f in mounts.flags)
        mounts_word = "a cache mount" if len(mounts.flags) == 1 else "cache mounts"
        message = f"{program} downloads without {mounts_word} on {where}: add {flags}" if flags else \
            f"{program} does not keep what it downloads in its cache mount"
        yield self.at(run, first, message + (self.note() if extra else ""), [*mounts.edits, *extra, *plan.edits],
                      mounts=mounts.flags)

    def note(self) -> str:
        """What the finding adds about `extra_edits` (apk: "; --no-cache becomes --update-cache")."""
        return ""
