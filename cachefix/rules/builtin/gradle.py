"""CF504 gradle: `gradle` / `./gradlew` without locked cache mounts on the Gradle user home's caches."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env, shell_env
from cachefix.rewriter.mounts import existing_mounts, is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.after_build import needed_after_build
from cachefix.rules.calls import Invocation, invocation, option_value, system_property
from cachefix.rules.cleanup import clean_up
from cachefix.rules.placement import mount_fix_under, owned_mount
from cachefix.rules.rule import RunRule

GRADLE = frozenset({"gradle", "gradlew"})
TAKES_VALUE = frozenset({"-b", "--build-file", "-c", "--settings-file", "-g", "--gradle-user-home", "-p",
                         "--project-dir", "-x", "--exclude-task", "-I", "--init-script", "--console", "--warning-mode",
                         "--max-workers", "--priority", "--project-cache-dir", "--include-build", "-M",
                         "--write-verification-metadata", "-F", "--dependency-verification", "--update-locks"})
# Runs that start no build (a wrapper still downloads its distribution for them).
NO_BUILD = frozenset({"--version", "-v", "-h", "--help", "-?", "--stop", "--status"})
# Gradle's cross-process locks of its caches need the other process to answer on loopback,
# which another build's container cannot (gradle/gradle#851): one build at a time.
SHARING = "locked"
# The gradle image (keeganwitt/docker-gradle): user `gradle`, uid and gid 1000, whose
# /home/gradle/.gradle exists and is its own (and /root/.gradle links to it).
IMAGE_USER = ("gradle", 1000, 1000, "/home/gradle")


def gradle(command: Command) -> Invocation | None:
    """`gradle`, `./gradlew`, also `sh gradlew`."""
    return invocation(command, GRADLE, TAKES_VALUE)


def builds(call: Invocation) -> bool:
    """Any run but `gradle --version` and the like; the wrapper downloads Gradle even for those."""
    values = [w.value or "" for w in call.args]
    return call.program == "gradlew" or not values or not set(values) <= NO_BUILD


def user_home(run: RunContext, command: Command, call: Invocation, home: str | None) -> tuple[str | None, bool]:
    """The Gradle user home (`-g`; `-Dgradle.user.home` on the command line, then in JAVA_OPTS
    or GRADLE_OPTS; GRADLE_USER_HOME; `~/.gradle`), and whether it is the default one."""
    env = command_env(run, command)
    explicit = (option_value(call.args, ("-g", "--gradle-user-home"))
                or system_property([w.value or "" for w in call.args], "gradle.user.home", ("-D", "--system-prop"))
                or system_property(jvm_options(env), "gradle.user.home")
                or env.get("GRADLE_USER_HOME"))
    if explicit:
        return posixpath.join(run.stage.workdir, explicit).rstrip("/"), False
    return (None if home is None else f"{home.rstrip('/')}/.gradle"), True


def jvm_options(env: Mapping[str, str]) -> list[str]:
    """JAVA_OPTS then GRADLE_OPTS as the `gradle` and `gradlew` scripts give them to java: one
    string through `xargs -n1`, which splits it as a shell would and removes the quotes
    (`-Dgradle.user.home="/g x"` is `/g x`). xargs rejects an unmatched quote: nothing is set."""
    import shlex  # only for a RUN that runs gradle

    try:
        return shlex.split(f"{env.get('JAVA_OPTS', '')} {env.get('GRADLE_OPTS', '')}")
    except ValueError:
        return []


class GradleRule(RunRule):
    """
    ## What it does
    Finds `gradle` and `./gradlew` runs in a RUN without cache mounts on the Gradle user
    home's `caches` (and `wrapper`, for `./gradlew`), and adds them with `sharing=locked`.

    ## Why is this bad?
    Every rebuild of the layer downloads every plugin and dependency again, and `./gradlew`
    downloads Gradle itself. Gradle keeps downloads in `$GRADLE_USER_HOME/caches` and wrapper
    distributions in `$GRADLE_USER_HOME/wrapper/dists` (GRADLE_USER_HOME: `-g`,
    `-Dgradle.user.home`, the variable, else `~/.gradle`; Gradle's "Gradle Directories").
    Only those two folders are mounted: the user home also holds `gradle.properties` and
    `init.d`, which a mount would hide.

    `sharing=locked`: Gradle locks its caches across processes by asking the lock's owner to
    release it over loopback, which a build in another container cannot answer.

    A user that is not root writes the whole user home (daemon logs, native libraries), and a
    mount would create a missing user home owned by root. So for such a user the fix is made
    only where the user home is known to be its own: user `gradle` of the gradle image.

    Adding `--no-daemon` is advisable (a daemon is of no use in a one-off build) but is not
    done here: it is not about downloads.

    ## Example
    ```dockerfile
    FROM gradle:8-jdk21 AS build
    COPY . /src
    WORKDIR /src
    RUN gradle build --no-daemon
    ```

    ## Use instead
    ```dockerfile
    FROM gradle:8-jdk21 AS build
    COPY . /src
    WORKDIR /src
    RUN --mount=type=cache,target=/root/.gradle/caches,sharing=locked gradle build --no-daemon
    ```

    ## Fix safety
    Safe. `rm -rf ~/.gradle/caches` is removed from the RUN that gains the mount. Not fixed,
    and reported instead: `rm -rf ~/.gradle` (it would fail on the mount point), an image that
    runs Gradle when it starts (`./gradlew bootRun` needs the dependencies in the image), and a
    user whose Gradle user home is not known to be its own.
    """

    code = "CF504"
    name = "gradle-cache-mount"
    manager = "gradle"
    summary = "gradle without locked cache mounts on the Gradle user home's caches"
    triggers = ("gradle",)

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        calls = [(c, call) for c in run.commands if (call := gradle(c)) is not None and builds(call)]
        if not calls:
            return
        first, first_call = calls[0]
        uid, gid, home = self._user(run)
        user_home_dir, default = user_home(run, first, first_call, home)
        if uid != 0 and (uid is None or not (run.stage.image == "gradle" and uid == IMAGE_USER[1] and default)):
            yield self.at(run, first, f"gradle runs as user '{run.user}', and this file does not show a Gradle user "
                                      "home that user owns: a cache mount would create it owned by root, and Gradle "
                                      "writes all over it. Create it as that user (for example `ENV GRADLE_USER_HOME="
                                      "/home/app/.gradle` and `RUN mkdir -p $GRADLE_USER_HOME` after USER), then "
                                      "mount its `caches` with uid= and gid=")
            return
        if user_home_dir is None:
            return
        targets = [f"{user_home_dir}/caches"] + ([f"{user_home_dir}/wrapper"] if any(
            call.program == "gradlew" for _, call in calls) else [])
        needed = needed_after_build(run, targets, lambda c: gradle(c) is not None, "Gradle's dependencies")
        if needed is not None:
            yield self.at(run, first, needed)
            return
        wanted = [owned_mount(t, f"gradle-{t.rsplit('/', 1)[-1]}", uid, gid, self.options, SHARING) for t in targets]
        stale = [m for m in existing_mounts(run.instruction) if m.is_cache and m.target.rstrip("/").endswith(
            ("/.gradle/caches", "/.gradle/wrapper")) and not any(is_within(t, m.target) for t in targets)]
        mounts = mount_fix_under(run, wanted, self.options, self.manager, stale)
        if not mounts.flags:
            return
        plan = clean_up(run.commands, lambda command: False, targets, run.home, shell_env(run))
        if plan.breaker is not None:
            yield self.at(run, plan.breaker, plan.problem(" and ".join(targets)))
            return
        yield self.at(run, first, "Gradle downloads without locked cache mounts: add "
                      + " ".join(f"`{flag}`" for flag in mounts.flags), [*mounts.edits, *plan.edits],
                      mounts=mounts.flags)

    @staticmethod
    def _user(run: RunContext) -> tuple[int | None, int | None, str | None]:
        """uid, gid and home of the RUN's user, including the gradle image's own user."""
        name, uid, gid, home = IMAGE_USER
        if run.stage.image == "gradle" and (run.user == name or run.uid == uid):
            return uid, gid, run.home or home
        return run.uid, run.gid, run.home
