"""CF503 maven: `mvn` / `./mvnw` without a locked cache mount on Maven's local repository."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence

from cachefix.model import Edit, Finding
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, command_env, shell_env
from cachefix.rewriter.mounts import CacheMount, existing_mounts, is_within
from cachefix.rewriter.shell import Command, Word
from cachefix.rules.after_build import needed_after_build
from cachefix.rules.calls import Invocation, invocation, script_command, system_property
from cachefix.rules.cleanup import clean_up
from cachefix.rules.placement import mount_fix_under
from cachefix.rules.rule import RunRule
from cachefix.rules.words import previous_words, remove_words

MAVEN = frozenset({"mvn", "mvnw", "mvnd"})
# Options whose value is the next word (so it is not a goal).
TAKES_VALUE = frozenset({"-f", "--file", "-s", "--settings", "-gs", "--global-settings", "-t", "--toolchains",
                         "-gt", "--global-toolchains", "-pl", "--projects", "-rf", "--resume-from", "-P",
                         "--activate-profiles", "-T", "--threads", "-l", "--log-file", "-b", "--builder", "-D",
                         "--define", "--color"})
PURGE = "dependency:purge-local-repository"
# Maven resolver 1.x (Maven 3.9) locks the local repository inside one JVM only by default,
# so two builds sharing a cache must not run at once (maven-resolver, "About SyncContextFactory").
SHARING = "locked"


def maven(command: Command) -> Invocation | None:
    """`mvn`, `./mvnw`, `mvnd`, also `sh mvnw`."""
    return invocation(command, MAVEN, TAKES_VALUE)


def goals(call: Invocation) -> list[Word]:
    """The goals and phases: the operands, with option values skipped."""
    found: list[Word] = []
    skip = False
    for word in call.args:
        value = word.value or ""
        if skip:
            skip = False
        elif value.startswith("-"):
            skip = value in TAKES_VALUE
        elif word.value is not None:
            found.append(word)
    return found


def purges_only(command: Command) -> bool:
    """`mvn dependency:purge-local-repository` alone: a clean-up of the repository, not a build."""
    call = maven(command)
    return call is not None and [w.value for w in goals(call)] == [PURGE]


def repository(run: RunContext, command: Command, call: Invocation) -> tuple[str | None, bool]:
    """The local repository, and whether it is Maven's default (`~/.m2/repository`).

    `-Dmaven.repo.local` on the command line (after MAVEN_ARGS, which `mvn` puts before it)
    overrides one in MAVEN_OPTS (a system property), and both override the settings'
    `localRepository`; settings files themselves are not visible to cachefix.
    """
    env = command_env(run, command)
    arguments = [*launcher_words(env.get("MAVEN_ARGS", "")), *(w.value or "" for w in call.args)]
    path = (system_property(arguments, "maven.repo.local", ("-D", "--define"))
            or system_property(launcher_words(env.get("MAVEN_OPTS", "")), "maven.repo.local"))
    if path is not None:
        return posixpath.join(run.stage.workdir, path), False
    return None if run.home is None else f"{run.home.rstrip('/')}/.m2/repository", True


def launcher_words(value: str) -> list[str]:
    """MAVEN_OPTS or MAVEN_ARGS as `mvn` and `mvnw` pass them on: unquoted (`exec "$JAVACMD"
    $MAVEN_OPTS ...`), so split at spaces, tabs and newlines, with any quotes kept as text.
    `-Dmaven.repo.local=/r x` sets `/r` (and `x` is one more argument)."""
    return [word for word in re.split("[ \t\n]+", value) if word]


def looks_like_repository(target: str) -> bool:
    """A mount someone meant for Maven: `.../.m2`, `.../.m2/repository`, or cachefix's `maven-UID`."""
    folder = target.rstrip("/")
    return folder.endswith(("/.m2", "/.m2/repository")) or re.fullmatch(r".*/maven-\d+", folder) is not None


class MavenRule(RunRule):
    """
    ## What it does
    Finds `mvn`, `./mvnw` and `mvnd` runs with goals in a RUN without a cache mount on Maven's
    local repository, and adds one with `sharing=locked`.

    ## Why is this bad?
    Every rebuild of the layer downloads every plugin and dependency again. Maven keeps them in
    its local repository, `~/.m2/repository` (`/root/.m2/repository` for root), or where
    `-Dmaven.repo.local` points.

    The mount goes on `.m2/repository`, not on `.m2`: a `settings.xml` copied into `.m2` would be
    hidden by the mount, and Maven would build without its mirrors and credentials. A mount
    already on `.m2` is moved to `.m2/repository` when the file copies something into `.m2`.

    `sharing=locked`: Maven 3.9 coordinates access to the local repository between the
    threads of one JVM only; two builds writing one cache at once could corrupt it.

    For a user that is not root the repository moves out of the home folder
    (`-Dmaven.repo.local=/var/cache/maven-UID`, a mount owned by that uid): a mount under
    `~/.m2` would leave `~/.m2` owned by root, where `./mvnw` keeps the Maven it downloads.
    A user whose uid the file does not show (`useradd -m app`) is reported instead: a cache
    mount is writable only by the uid it is made for.

    ## Example
    ```dockerfile
    FROM maven:3.9-eclipse-temurin-21 AS build
    COPY pom.xml .
    RUN mvn -B dependency:go-offline
    COPY src src
    RUN mvn -B package -DskipTests
    ```

    ## Use instead
    ```dockerfile
    FROM maven:3.9-eclipse-temurin-21 AS build
    COPY pom.xml .
    RUN --mount=type=cache,target=/root/.m2/repository,sharing=locked mvn -B dependency:go-offline
    COPY src src
    RUN --mount=type=cache,target=/root/.m2/repository,sharing=locked mvn -B package -DskipTests
    ```

    ## Fix safety
    Safe: `dependency:go-offline` only fills the repository, and every later mvn gets the same
    mount. `dependency:purge-local-repository` and `rm -rf ~/.m2/repository` are removed from
    the RUN that gains the mount. Not fixed, and reported instead: `rm -rf ~/.m2` (it would fail
    on the mount point), an image that runs Maven when it starts (`mvn spring-boot:run` needs
    the dependencies in the image), and a stage whose repository another stage copies. A
    `localRepository` set in a settings file is not visible to cachefix: the mount then caches
    nothing, and changes nothing either.
    """

    code = "CF503"
    name = "maven-cache-mount"
    manager = "maven"
    summary = "mvn without a locked cache mount on Maven's local repository"
    triggers = ("mvn",)

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        calls = [(c, call) for c in run.commands if (call := maven(c)) is not None and goals(call)
                 and not purges_only(c)]
        if not calls:
            return
        first = calls[0][0]
        target, default = repository(run, first, calls[0][1])
        if target is None:
            return
        moved = default and not run.is_root
        if run.uid is None:
            yield self.at(run, first, f"maven runs as user '{run.user}' whose uid this file does not show, so a cache "
                                      "mount cannot be made writable for it: create the user with `useradd -u UID` "
                                      "(or use a numeric USER) and run cachefix again")
            return
        if moved and not run.shell_form:
            yield self.at(run, first, "maven runs as a non-root user in an exec-form RUN; rewrite it in shell form so "
                                      "-Dmaven.repo.local can point at a cache mount outside the home folder")
            return
        mount = self._mount(run, target, moved)
        needed = needed_after_build(run, [mount.target], lambda c: maven(c) is not None, "Maven's dependencies")
        if needed is not None:
            yield self.at(run, first, needed)
            return
        stale = [m for m in existing_mounts(run.instruction)
                 if m.is_cache and looks_like_repository(m.target) and not is_within(mount.target, m.target)]
        mounts = mount_fix_under(run, [mount], self.options, self.manager, stale)
        if not mounts.flags:
            return
        plan = clean_up(run.commands, purges_only, [mount.target], run.home, shell_env(run))
        if plan.breaker is not None:
            yield self.at(run, plan.breaker, plan.problem(mount.target))
        elif moved and any(not c.words or c.words[0].span is None for c, _ in calls):
            yield self.at(run, first, f"mvn runs inside a quoted script where cachefix cannot add "
                                      f"-Dmaven.repo.local={mount.target} to it; add it there and `{mounts.flags[0]}`")
        else:
            fix = [*mounts.edits, *plan.edits, *purge_goals(calls), *(repo_local(calls, mount.target) if moved else ())]
            yield self.at(run, first, self._message(mount, mounts.flags[0], moved), fix, mounts=mounts.flags)

    @staticmethod
    def _mount(run: RunContext, target: str, moved: bool) -> CacheMount:
        """The repository's mount: root's as it is; another user's owned by it, and moved out of the
        home folder (`/var/cache/maven-UID`) unless the file chose the folder."""
        if run.is_root:
            return CacheMount(target, sharing=SHARING)
        return CacheMount(f"/var/cache/maven-{run.uid}" if moved else target, sharing=SHARING, uid=run.uid,
                          gid=run.gid)

    @staticmethod
    def _message(mount: CacheMount, flag: str, moved: bool) -> str:
        text = f"Maven downloads without a locked cache mount on {mount.target}: use `{flag}`"
        return text + (f" and -Dmaven.repo.local={mount.target}" if moved else "")


def purge_goals(calls: Sequence[tuple[Command, Invocation]]) -> Iterator[Edit]:
    """`dependency:purge-local-repository` next to other goals: the goal goes, they stay."""
    for command, call in calls:
        words = [w for w in goals(call) if w.value == PURGE]
        if words and len(words) < len(goals(call)):
            yield from remove_words(words, previous_words(command))


def repo_local(calls: Sequence[tuple[Command, Invocation]], target: str) -> Iterator[Edit]:
    """` -Dmaven.repo.local=TARGET` right after `mvn` (a user's repository moved out of home)."""
    for command, _ in calls:
        program = script_command(command).words[0]
        if program.span is not None:
            yield edits.insert(program.span[1], f" -Dmaven.repo.local={target}")
