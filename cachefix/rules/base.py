"""What a rule is: a code, a name, its documentation, and a check over one RUN.

A rule knows one package manager: where it caches for a given user and environment, what
defeats its cache, and what the fix is. Dockerfile syntax and shell parsing come from
`cachefix.rewriter`; a rule never searches raw text.

The class docstring is the rule's documentation, in ruff's sections (*What it does*, *Why is
this bad?*, *Example*, *Use instead*, *Fix safety*): `cachefix explain CODE` prints it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from cachefix.model import Edit, Finding, Position, Severity
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, command_env, expand, run_contexts
from cachefix.rewriter.dockerfile import Dockerfile, Instruction
from cachefix.rewriter.mounts import (
    TARGET_KEYS,
    CacheMount,
    ExistingMount,
    UnsafeMount,
    existing_mounts,
    is_within,
    mount_flag,
    same_path,
)
from cachefix.rewriter.shell import (
    SHELLS,
    Assignment,
    Command,
    Word,
    exec_form_commands,
    iter_options,
    removal_spans,
)
from cachefix.rewriter.shell import commands as shell_commands

Span = tuple[int, int]

# Where a per-user cache goes for a user that is not root: outside the home folder, so the
# mount point left behind does not make `~/.cache` root-owned (buildkit#2682, #3153).
NON_ROOT_CACHE = "/var/cache/{name}-{uid}"


@dataclass(frozen=True)
class UserCache:
    """Where a per-user cache is mounted for a RUN's user, and how commands are pointed at it.

    `env_var` is set when the cache was moved out of the home folder: each command then gets
    `ENV_VAR=target` as a prefix (for that command only, so the image's environment is kept).
    """

    target: str
    uid: int | None = None
    gid: int | None = None
    env_var: str | None = None

    def mount(self, sharing: str | None = None) -> CacheMount:
        return CacheMount(self.target, sharing=sharing, uid=self.uid, gid=self.gid)


@dataclass(frozen=True)
class Options:
    """Settings a rule may honour (from the command line or the configuration file)."""

    id_prefix: str = ""
    sharing: str | None = None


class Rule:
    """Base class: subclasses set the class attributes and implement `check`."""

    code: str = ""
    name: str = ""
    manager: str = ""
    summary: str = ""
    # Words one of which a RUN must contain for `check` to be worth calling (empty: always).
    triggers: tuple[str, ...] = ()

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()

    def check(self, run: RunContext, dockerfile: Dockerfile) -> Iterable[Finding]:
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    def findings(self, run: RunContext, dockerfile: Dockerfile) -> list[Finding]:
        """`check`, except that a mount whose flag cannot be written safely (a cache folder with
        a space in it, say: the rest of the path would run as a command) is a finding without a
        fix, never an edit."""
        found: list[Finding] = []
        try:
            found.extend(self.check(run, dockerfile))
        except UnsafeMount as unsafe:
            from cachefix.suppressions import displayable  # imports this module: import when needed

            subject = "the cache folder" if unsafe.key in TARGET_KEYS else f"the mount's {unsafe.key}"
            found.append(self.finding(
                dockerfile, run.instruction.span,
                f"{self.manager} needs a cache mount here, but {subject} `{displayable(unsafe.value)}` "
                f"{unsafe.problem}, which cachefix cannot write into a `--mount` flag safely: add the mount "
                "by hand (quoted as your builder reads it), or move the cache to a folder without it"))
        return found

    # Helpers shared by every rule.

    def finding(self, dockerfile: Dockerfile, span: Span, message: str, fix: Sequence[Edit] = (),
                severity: Severity = Severity.WARNING, related: Sequence[Span] = ()) -> Finding:
        start, end = _positions(dockerfile, span)
        return Finding(self.code, self.manager, message, start, end, severity, tuple(fix),
                       tuple(_positions(dockerfile, r) for r in related))

    def switch_finding(self, dockerfile: Dockerfile, run: RunContext, command: Command, variable: str,
                       turned_off: Callable[[RunContext], bool], what: str) -> Finding | None:
        """The finding for a stage-wide switch (the ENV or ARG that sets `variable`) that turns the
        manager's cache off for every RUN: on that line, where the cause is, with the RUNs it turns
        the cache off for (`turned_off`) as related locations; made once, by the first of them
        (None for the others). `what` says what the variable does ("PIP_NO_CACHE_DIR disables ...")."""
        origin = run.origins.get(variable)
        if origin is None:
            return self.finding(dockerfile, command_span(run, command), f"{what}; remove it so a cache mount can work")
        affected = [r.instruction for r in run_contexts(dockerfile) if r.origins.get(variable) is origin
                    and turned_off(r)]
        if affected and affected[0] is not run.instruction:
            return None
        lines = ", ".join(str(i.start_line) for i in affected) or str(run.instruction.start_line)
        runs = "the RUN on line" if len(affected) < 2 else "the RUNs on lines"
        return self.finding(dockerfile, origin.span, f"{origin.keyword} {what}, so {runs} {lines} cannot use a "
                                                     f"cache mount; remove {variable} here",
                            related=[i.span for i in affected] or [run.instruction.span])

    def mount_edits(self, run: RunContext, wanted: Sequence[CacheMount], stale: Sequence[ExistingMount] = (),
                    *, several: bool = False) -> tuple[list[Edit], list[CacheMount]]:
        """Edits that put `wanted` mounts on the RUN: add the missing, correct the near misses,
        and replace `stale` mounts (ones meant for this manager that cache nothing, such as
        `/root/.cache/pip` for another user) rather than leave them beside the right one.
        `several`: the rule puts other mounts on the RUN too (in other calls), see `_with_options`.

        Returns the edits and the mounts that were missing or wrong (empty: nothing to do).
        """
        stale = list(stale)
        wanted = one_lock(wanted)
        written = existing_mounts(run.instruction)
        # BuildKit expands ARG and ENV values in mount options (`target=$POETRY_CACHE_DIR`).
        present = [ExistingMount(m.flag, {k: expand(v, run.env) for k, v in m.options.items()}) for m in written]
        out: list[Edit] = []
        changed: list[CacheMount] = []
        for mount in wanted:
            mount = self._with_options(mount, several=several or len(wanted) > 1)
            if any(mount.satisfied_by(m) for m in present):
                continue
            changed.append(mount)
            near = next((w for w, m in zip(written, present, strict=True)
                         if m.is_cache and same_path(m.target, mount.target)), None)
            if near is not None:
                out.append(edits.replace_flag(near.flag, spelled(run, _merge(near, mount))))
            elif stale:
                out.append(edits.replace_flag(stale.pop(0).flag, spelled(run, mount.render())))
            else:
                out.append(edits.add_flag(run.instruction, spelled(run, mount.render())))
        return out, changed

    def user_cache(self, run: RunContext, dockerfile: Dockerfile, command: Command, target: str | None,
                   default: str | None, env_var: str, name: str | None = None) -> UserCache | Finding | None:
        """Where a cache that defaults to the home folder is mounted for the RUN's user.

        Root keeps `target`. Another user whose cache is still the default one gets a folder
        of its own outside the home (`/var/cache/<manager>-<uid>`, owned by it) with `env_var`
        pointing there: a mount under the home would leave root-owned folders in it. A user
        whose uid the file does not show, or an exec-form RUN (no place for the variable),
        gets a finding instead. None: the manager's cache is not known for this user. `name`
        tells a manager's caches apart in that folder's name (`go-build`, `go-mod`).
        """
        if run.uid is None:
            return self.finding(dockerfile, command_span(run, command),
                                f"{self.manager} runs as user '{run.user}' whose uid this file does not show, so a "
                                "cache mount cannot be made writable for it: create the user with `useradd -u UID` "
                                "(or use a numeric USER) and run cachefix again")
        if run.is_root or target != default:
            return None if target is None else UserCache(target, *((None, None) if run.is_root else (run.uid, run.gid)))
        if not run.shell_form:
            return self.finding(dockerfile, command_span(run, command),
                                f"{self.manager} runs as a non-root user in an exec-form RUN; rewrite it in shell "
                                f"form so {env_var} can point at a cache mount outside the home folder")
        return UserCache(NON_ROOT_CACHE.format(name=name or self.manager, uid=run.uid), run.uid, run.gid, env_var)

    def stale_mounts(self, run: RunContext, target: str, cache_name: str,
                     in_home: str | None = None) -> list[ExistingMount]:
        """Cache mounts on the RUN meant for this manager's per-user cache that do not hold
        `target`: `.../.cache/<cache_name>` (or `.../<in_home>`: root's, for another user) or
        cachefix's own `/var/cache/<manager>-<uid>` for another uid. They get replaced, not kept beside."""
        own = re.compile(re.escape(self.manager) + r"-\d+")
        return [m for m in existing_mounts(run.instruction)
                if m.is_cache and not is_within(target, m.target)
                and (m.target.rstrip("/").endswith("/" + (in_home or f".cache/{cache_name}"))
                     or own.fullmatch(m.target.rstrip("/").rsplit("/", 1)[-1]) is not None)]

    def user_cache_fix(self, run: RunContext, dockerfile: Dockerfile, commands: Sequence[Command],
                       placed: UserCache | Finding | None, is_clean_up: Callable[[Command], bool], *,
                       sharing: str | None = None, stale_in_home: str | None = None,
                       replacing: ExistingMount | None = None, label: str = "", problem: str = "",
                       mount: CacheMount | None = None, extra: Iterable[Edit] = (), note: str = "",
                       deletions_corrupt: bool = False) -> Iterator[Finding]:
        """The finding for a per-user cache that `user_cache` placed, used by `commands`: the
        mount (over `replacing`, a mount that defeats it, when given; over a stale mount on
        `~/<stale_in_home>` or another uid's folder), the clean-ups that would empty it dropped,
        and the moved cache's variable set on each command. `mount` replaces the one `placed`
        makes; `extra` edits (the manager's own cache-defeating flags dropped) and `note` (the
        end of the message) go with it; `deletions_corrupt` as in `clean_up`."""
        first = commands[0]
        if isinstance(placed, Finding):
            yield placed
            return
        if placed is None:
            return
        home = {"HOME": run.home} if run.home else {}
        plan = clean_up([r for _, r in programs_resolved(run)], is_clean_up, [placed.target], run.home,
                        {**run.env, **home}, deletions_corrupt=deletions_corrupt)
        if plan.breaker is not None:
            yield self.finding(dockerfile, command_span(run, plan.breaker), plan.problem(placed.target))
            return
        mount = mount or placed.mount(sharing)
        if replacing is not None:  # keep the user's options, move the target
            options = {k: (placed.target if k in ("target", "dst", "destination") else v)
                       for k, v in replacing.options.items()}
            options.update({k: str(v) for k, v in (("uid", placed.uid), ("gid", placed.gid)) if v is not None})
            fix = [edits.replace_flag(replacing.flag, spelled(run, _flag(options)))]
            changed = [mount]
        else:
            stale = [] if stale_in_home is None else self.stale_mounts(run, placed.target, "", stale_in_home)
            fix, changed = self.mount_edits(run, [mount], stale)
        if not changed:
            return
        if placed.env_var and any(not c.words or c.words[0].span is None for c in commands):
            yield self.finding(dockerfile, command_span(run, first),
                               f"{label or self.manager} runs inside a quoted script where cachefix cannot set "
                               f"{placed.env_var}={placed.target} for it; set it there and add `{changed[0].render()}`")
            return
        fix.extend(plan.edits)
        fix.extend(env_prefixes(commands, placed))
        fix.extend(extra)
        yield self.finding(dockerfile, command_span(run, first),
                           f"{problem}{label or self.manager} downloads without a cache mount on {placed.target}: "
                           f"add `{spelled(run, changed[0].render())}`"
                           + (f" and {placed.env_var}={placed.target}" if placed.env_var else "") + note, fix)

    def mount_edits_under(self, dockerfile: Dockerfile, run: RunContext, wanted: Sequence[CacheMount],
                          stale: Sequence[ExistingMount] = ()) -> tuple[list[Edit], list[CacheMount]]:
        """`mount_edits` for caches inside a folder of settings (`~/.m2/repository`, `~/.gradle/caches`).

        A cache mount the user put on the folder itself is kept, with the options `wanted`
        needs, unless the file copies files into that folder (`settings.xml`,
        `gradle.properties`): the mount hides them, so it is replaced by the `wanted` mounts.
        """
        present = [m for m in existing_mounts(run.instruction) if m.is_cache]
        above = next((m for m in present if all(is_within(w.target, m.target) and not same_path(w.target, m.target)
                                                for w in wanted)), None)
        if above is None:
            return self.mount_edits(run, wanted, stale)
        if not copied_into(dockerfile, run, above.target):
            return self.mount_edits(run, [wanted[0]._replace(target=above.target)])
        first, *rest = [self._with_options(w, several=len(wanted) > 1) for w in wanted]
        return ([edits.replace_flag(above.flag, spelled(run, first.render())),
                 *(edits.add_flag(run.instruction, spelled(run, m.render())) for m in rest)], list(wanted))

    def mounts_finding(self, dockerfile: Dockerfile, run: RunContext, span: Span, fix: Sequence[Edit],
                       changed: Sequence[CacheMount], cache_dirs: Sequence[str], what: str,
                       is_clean_up: Callable[[Command], bool] = lambda command: False,
                       env: Mapping[str, str] | None = None) -> Finding:
        """The finding for a RUN that gains the `changed` mounts (`fix`), with the clean-ups that
        would empty `cache_dirs` removed; or, where one cannot be, a finding that says why.
        `what` starts the message ("cargo downloads crates without cache mounts")."""
        plan = clean_up(run.commands, is_clean_up, cache_dirs, run.home, {**shell_env(run), **(env or {})})
        if plan.breaker is not None:
            return self.finding(dockerfile, command_span(run, plan.breaker), plan.problem(" and ".join(cache_dirs)))
        mounts = " ".join(f"`{m.render()}`" for m in changed)
        return self.finding(dockerfile, span, f"{what}: add {mounts}", [*fix, *plan.edits])

    def home_not_writable(self, dockerfile: Dockerfile, run: RunContext, command: Command, variable: str,
                          home: str, writable: bool) -> Finding | None:
        """For a user that is not root, the finding when a cache inside `home` (CARGO_HOME,
        GEM_HOME: folders the manager writes more into than its cache) cannot be mounted: the
        uid is not known, or `home` is not known to be `writable` by the user, and a mount would
        create it owned by root."""
        if run.is_root:
            return None
        if run.uid is None:
            found = self.user_cache(run, dockerfile, command, home, None, variable)
            return found if isinstance(found, Finding) else None
        if writable:
            return None
        return self.finding(dockerfile, command_span(run, command),
                            f"{self.manager} runs as user '{run.user}' with {variable}={home}, which this file does "
                            "not show to be writable by it: a cache mount inside it would create it owned by root. "
                            f"Make it the user's, then mount the cache there with uid={run.uid},gid={run.gid}")

    def owned_mount(self, target: str, name: str, uid: int | None, gid: int | None,
                    sharing: str | None = None) -> CacheMount:
        """A mount at a fixed place (one the manager cannot be pointed away from) for a user.
        A user that is not root gets its uid on it and an id of its own: BuildKit applies
        uid/gid only when it creates a cache, so sharing the default id (the target) with root's
        builds could hand this user a root-owned cache it cannot write."""
        if not uid:
            return CacheMount(target, sharing=sharing)
        return CacheMount(target, f"{self.options.id_prefix}{name}-{uid}", sharing, uid, gid)

    def _with_options(self, mount: CacheMount, several: bool = False) -> CacheMount:
        """Apply --id-prefix and --sharing; a rule with several mounts gets one id for each
        (`<prefix>go-mod`, `<prefix>go-go-build`), or they would all share one cache."""
        prefix = self.options.id_prefix
        if prefix and mount.id is None:
            name = f"{prefix}{self.manager}" + (f"-{mount.target.rstrip('/').rsplit('/', 1)[-1]}" if several else "")
            mount = CacheMount(mount.target, name, mount.sharing, mount.uid, mount.gid)
        if self.options.sharing and mount.sharing is None:
            mount = CacheMount(mount.target, mount.id, self.options.sharing, mount.uid, mount.gid)
        return mount


def one_lock(mounts: Sequence[CacheMount]) -> list[CacheMount]:
    """Keep `sharing=locked` on the first of a rule's mounts only.

    BuildKit holds a locked mount for the whole RUN, so one lock already serialises every RUN
    that carries the rule's mounts; and buildah before 1.29 (Debian bookworm has 1.28) releases
    only the lock of a RUN's last mount, so the next RUN waits forever on another (buildah#4349;
    the engine puts the locked mount last).
    """
    out, locked = [], False
    for mount in mounts:
        if mount.sharing == "locked":
            if locked:
                mount = mount._replace(sharing=None)
            locked = True
        out.append(mount)
    return out


_ID_OPTION = re.compile(r"\b(uid|gid)=(\d+)\b")


def spelled(run: RunContext, flag: str) -> str:
    """A mount flag with each uid/gid the file took from a build ARG written as that ARG (`uid=${UID}`)."""
    return _ID_OPTION.sub(lambda m: f"{m.group(1)}={run.id_spelling(m.group(1), int(m.group(2)))}", flag)


def _merge(existing: ExistingMount, wanted: CacheMount) -> str:
    """Correct an existing mount in place, keeping options the user chose (id, mode, ...)."""
    options = dict(existing.options)
    for key in ("sharing", "uid", "gid"):
        value = getattr(wanted, key)
        if value is not None:
            options[key] = str(value)
    return _flag({"type": "cache", **options})


def _flag(options: Mapping[str, str]) -> str:
    """A parsed mount written back (`parse_mount` reads a bare key as "true")."""
    return mount_flag((k, None if v == "true" else v) for k, v in options.items())


def remove_words(words: Iterable[Word], previous: dict[int, Word]) -> Iterator[Edit]:
    """Delete words together with the whitespace before them (continuations kept intact)."""
    for word in words:
        before = previous.get(id(word))
        if word.span is None or before is None or before.span is None:
            continue
        yield edits.delete((before.span[1], word.span[1]))


def previous_words(command: Command) -> dict[int, Word]:
    """For each word, the word before it (the deletion of a word starts after its predecessor)."""
    return {id(w): command.words[i - 1] for i, w in enumerate(command.words) if i > 0}


def _positions(dockerfile: Dockerfile, span: Span) -> tuple[Position, Position]:
    """1-based start and end (exclusive column) of a span, as findings carry them."""
    start = Position(*dockerfile.position(span[0]))
    end = Position(*dockerfile.position(max(span[0], span[1] - 1)))
    return start, Position(end.line, end.column + 1)


def command_span(run: RunContext, command: Command) -> Span:
    """Where to point a finding: the command, or the instruction when the command has no span."""
    return command.span or run.instruction.span


def env_prefixes(commands: Iterable[Command], cache: UserCache) -> Iterator[Edit]:
    """`VAR=target ` before each command that does not set VAR itself (a moved per-user cache)."""
    if cache.env_var is None:
        return
    for command in commands:
        start = command.words[0].span if command.words else None
        if start is not None and not any(a.name == cache.env_var for a in command.assignments):
            yield edits.insert(start[0], f"{cache.env_var}={cache.target} ")


@dataclass(frozen=True)
class Invocation:
    """A package manager run by a command: which program, its subcommand, the words after it."""

    program: str
    subcommand: str | None
    args: tuple[Word, ...]


_SUDO_VALUE_OPTIONS = frozenset({"-u", "--user", "-g", "--group", "-h", "--host", "-C", "-D", "-p", "-r", "-t"})


def invocation(command: Command, programs: Collection[str], takes_value: Collection[str] = ()) -> Invocation | None:
    """The invocation when `command` runs one of `programs` (also as `sudo [-u x] prog`), else None.

    The subcommand is the first operand, skipping options and the values of `takes_value` ones
    (`apk --repository URL add x` adds).
    """
    words = list(command.words)
    if command.name == "sudo":
        words = words[1:]
        while words and (words[0].value or "").startswith("-"):
            words = words[2:] if words[0].value in _SUDO_VALUE_OPTIONS else words[1:]
    if not words or words[0].value is None or words[0].value.rsplit("/", 1)[-1] not in programs:
        return None
    args = tuple(words[1:])
    skip, subcommand = False, None
    for word in args:
        value = word.value
        if skip:
            skip = False
        elif value is None:
            break
        elif value.startswith("-"):
            skip = value in takes_value
        else:
            subcommand = value
            break
    return Invocation(words[0].value.rsplit("/", 1)[-1], subcommand, args)


def delete_assignment(command: Command, assignment: Assignment) -> Edit | None:
    """Delete a `NAME=value ` prefix of a command, with the space after it."""
    if assignment.span is None:
        return None
    after = assignment.span[1]
    starts = [a.span[0] for a in command.assignments if a.span and a.span[0] >= after]
    starts += [w.span[0] for w in command.words if w.span and w.span[0] >= after]
    return edits.delete((assignment.span[0], min(starts, default=after)))


def option_value(words: Sequence[Word], names: Collection[str]) -> str | None:
    """The value of the first of `names` among `words` (`--opt value` or `--opt=value`)."""
    words = list(words)
    for i, option, inline in iter_options(words):
        if option in names:
            return inline if inline is not None else (words[i + 1].value if i + 1 < len(words) else None)
    return None


def resolve_program(command: Command, env: Mapping[str, str], home: str | None) -> Command:
    """The command with its program word expanded where the file sets the variables in it:
    `$CONDA_DIR/bin/conda install` runs `/opt/conda/bin/conda` after `ENV CONDA_DIR=/opt/conda`."""
    if not command.words or command.words[0].value is not None:
        return command
    program = word_path(command.words[0], env, home)
    if program is None:
        return command
    return replace(command, words=(command.words[0]._replace(value=program), *command.words[1:]))


def programs_resolved(run: RunContext) -> list[tuple[Command, Command]]:
    """Each command of the RUN, with a copy whose program word is resolved (`resolve_program`).
    The original is the one `command_env` knows; the copy is the one to recognise."""
    return [(c, resolve_program(c, command_env(run, c), run.home)) for c in run.commands]


def system_property(words: Sequence[str], name: str, separate: Collection[str] = ()) -> str | None:
    """The value of the last `-Dname=value` among `words`: the JVM, Maven and Gradle each keep
    the last one given. `separate`: options that take `name=value` as the next word (`mvn -D x=y`)."""
    prefix, found = f"-D{name}=", None
    for i, word in enumerate(words):
        if word in separate and i + 1 < len(words):
            word = "-D" + words[i + 1]
        if word.startswith(prefix) and len(word) > len(prefix):
            found = word[len(prefix):]
    return found


# Values that turn a boolean setting on, as uv (clap's "boolish" values) and conda read them.
TRUTHY = frozenset({"1", "true", "t", "yes", "y", "on"})


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in TRUTHY


_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def word_path(word: Word, env: Mapping[str, str], home: str | None) -> str | None:
    """The path a word names once the shell has expanded it: `~`, and `$VAR`/`${VAR}` that the
    file sets (`rm -rf $POETRY_CACHE_DIR`). None when it depends on what the file does not show."""
    path = word.value
    if path is None:
        raw = word.raw.replace('"', "")
        if any(c in raw for c in "'`\\") or "$(" in raw or "$" in _VARIABLE.sub("", raw):
            return None
        if any((m.group("braced") or m.group("plain")) not in env for m in _VARIABLE.finditer(raw)):
            return None
        path = expand(raw, env)
    if home and (path == "~" or path.startswith("~/")):
        path = home.rstrip("/") + path[1:]
    return path


@dataclass
class CleanUp:
    """What a RUN does to caches that are about to be mounted.

    `edits` drop what only empties them: whole clean-up commands, `rm` of paths inside them.
    `breaker` is a command that would break the build or the cache once they are mounts and
    that cannot be dropped: an `rm` of a folder holding a cache fails on the mount point
    ("Device or resource busy"), a clean-up joined by `||` or in a pipeline, and (when asked)
    a `find ... -delete` that reaches into a cache, deleting files a later build links from.
    """

    edits: list[Edit]
    breaker: Command | None = None
    why: str = ""

    def block(self, command: Command, why: str) -> None:
        if self.breaker is None:
            self.breaker, self.why = command, why

    def problem(self, cache: str) -> str:
        """The finding's message for a RUN that cannot gain a mount on `cache` as it is."""
        text = " ".join(w.raw for w in self.breaker.words) if self.breaker else ""
        return (f"a cache mount on {cache} is needed, but `{text}` in this RUN {self.why}: "
                "remove or narrow it, then run cachefix again")


def clean_up(commands: Iterable[Command], is_clean_up: Callable[[Command], bool], cache_dirs: Sequence[str],
             home: str | None = None, env: Mapping[str, str] | None = None, *,
             deletions_corrupt: bool = False) -> CleanUp:
    """Plan the removal of cache clean-ups from a RUN that gains mounts on `cache_dirs`."""
    env = env or {}

    def place(word: Word) -> tuple[bool, bool]:
        """(inside a cache, holding a cache) for an `rm` or `find` operand."""
        path = word_path(word, env, home)
        if path is None:
            return False, False
        path = path.rstrip("*").rstrip("/") or "/"
        if not path.startswith("/"):
            return False, False
        inside = any(is_within(path, folder) for folder in cache_dirs)
        return inside, not inside and any(is_within(folder, path) for folder in cache_dirs)

    plan = CleanUp([])
    doomed: list[Command] = []
    for command in commands:
        if is_clean_up(command):
            doomed.append(command)
        elif command.name == "rm":
            paths = [w for w in command.args if not (w.value or "?").startswith("-")]
            places = [place(w) for w in paths]
            inside = [w for w, (within, _) in zip(paths, places, strict=True) if within]
            if any(holds for _, holds in places):
                plan.block(command, "removes a folder that holds the cache, and fails on the mount point "
                                    "(Device or resource busy)")
            elif any(w.span is None for w in inside):
                plan.block(command, "empties the cache where cachefix cannot edit it (inside a quoted script)")
            if inside and len(inside) == len(paths):
                doomed.append(command)
            elif inside:
                plan.edits.extend(remove_words(inside, previous_words(command)))
        elif deletions_corrupt and _find_deletes(command) and any(any(place(w)) for w in _find_starts(command)):
            plan.block(command, "deletes files inside the cache, and a later build would install the packages "
                                "from there incomplete (add -xdev, or prune the cache folder)")
    spans = removal_spans(doomed) if doomed else []
    if spans is None:
        plan.block(next((c for c in doomed if not c.removable or c.span is None), doomed[0]),
                   "empties the cache, and cannot be removed on its own (it is joined by `||`, piped or quoted)")
    plan.edits.extend(edits.delete(span) for span in spans or ())
    return plan


def _find_deletes(command: Command) -> bool:
    """`find ... -delete` or `find ... -exec rm ...`, unless it stays on one file system
    (`-xdev`: a cache mount is another one) or prunes something."""
    if command.name != "find":
        return False
    values = [w.value for w in command.args]
    if "-xdev" in values or "-mount" in values or "-prune" in values:
        return False
    return "-delete" in values or any(
        v in ("-exec", "-execdir") and i + 1 < len(values) and (values[i + 1] or "").endswith("rm")
        for i, v in enumerate(values))


def _find_starts(command: Command) -> list[Word]:
    """The starting points of a `find`: the operands before its first expression word."""
    starts: list[Word] = []
    for word in command.args:
        value = word.value or ""
        if value in ("-H", "-L", "-P"):
            continue
        if value.startswith(("-", "(", "!")):
            break
        starts.append(word)
    return starts


def image_name(run: RunContext) -> str:
    """The stage's base image as Docker Hub names it, without registry, tag or digest (`golang`
    for `docker.io/library/golang:1.22-alpine`), so a rule can know what that image sets."""
    image = run.stage.base_image.split("@", 1)[0].lower()
    name, colon, tag = image.rpartition(":")
    if not colon or "/" in tag:  # `registry:5000/x` has a port, not a tag
        name = image
    return name.removeprefix("docker.io/").removeprefix("index.docker.io/").removeprefix("library/")


def image_env(run: RunContext, command: Command, defaults: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The environment a command sees, over what its base image sets (`defaults[image]`, such as
    GOPATH=/go in `golang`): a Dockerfile does not show its base image's ENV."""
    return {**defaults.get(image_name(run), {}), **command_env(run, command)}


@dataclass(frozen=True)
class _StageOutline:
    name: str | None
    parent: int | None  # the stage it is built FROM, when that is a stage of the file
    instructions: list[Instruction]


def _outline(dockerfile: Dockerfile) -> list[_StageOutline]:
    stages: list[_StageOutline] = []
    names: dict[str, int] = {}
    for instruction in dockerfile.instructions:
        if instruction.keyword == "FROM":
            values = instruction.value
            base = values[0].lower() if values else ""
            parent = names.get(base, int(base) if base.isdigit() and int(base) < len(stages) else None)
            name = values[2].lower() if len(values) >= 3 and values[1].upper() == "AS" else None
            if name:
                names[name] = len(stages)
            stages.append(_StageOutline(name, parent, []))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def _runs(instruction: Instruction, uses: Callable[[Command], bool]) -> bool:
    if instruction.json:
        return any(uses(c) for c in exec_form_commands(instruction.value))
    return any(uses(c) for c in shell_commands(" ".join(instruction.value)))


def _lineage(stages: list[_StageOutline], index: int) -> list[int]:
    """The stage and the stages it is built from, nearest first."""
    found, parent = {index: None}, stages[index].parent  # a dict: ordered, and a linear walk
    while parent is not None and parent not in found:
        found[parent] = None
        parent = stages[parent].parent
    return list(found)


def copied_into(dockerfile: Dockerfile, run: RunContext, folder: str) -> bool:
    """Whether a COPY or ADD before this RUN (in its stage or one it is built from) puts files
    into `folder`: a cache mount there would hide them, as one on `~/.m2` hides `settings.xml`."""
    stages = _outline(dockerfile)
    if run.stage.index >= len(stages):
        return False
    for index in _lineage(stages, run.stage.index):
        for instruction in stages[index].instructions:
            if instruction is run.instruction:
                break
            destination = instruction.value[-1] if instruction.value else ""
            copies = instruction.keyword in ("COPY", "ADD") and destination.startswith("/")
            if copies and is_within(destination, folder):
                return True
    return False


def kept_after_build(dockerfile: Dockerfile, run: RunContext, folders: Sequence[str],
                     uses: Callable[[Command], bool], what: str) -> str | None:
    """The finding's message when `what` this RUN downloads into `folders` must stay in the
    image (`what`: "go's modules"), or None.

    A cache mount keeps the downloads out of the image. That is the point for a cache, but
    not where the cache is also where the tool reads its dependencies from later: an image
    whose CMD or ENTRYPOINT runs the tool (`go run .`, `mvn spring-boot:run`; `uses` says which
    commands do) would download everything again at each start, or fail offline, and a
    `COPY --from=` of the folder into another stage would copy an empty one.
    """
    stages = _outline(dockerfile)
    if run.stage.index >= len(stages):
        return None
    family = {run.stage.index}
    for index, stage in enumerate(stages):
        if stage.parent in family:
            family.add(index)
    for index in sorted(family | set(_lineage(stages, run.stage.index))):
        for instruction in stages[index].instructions:
            if instruction.keyword in ("CMD", "ENTRYPOINT") and _runs(instruction, uses):
                return _needed(what, folders, f"the image runs `{' '.join(instruction.value)}` when it starts")
    sources = {str(i) for i in family} | {stages[i].name for i in family if stages[i].name}
    for stage in stages:
        for instruction in stage.instructions:
            source = next((v for v in instruction.flag_values("from") if v), None)
            if instruction.keyword in ("COPY", "ADD") and source is not None and source.lower() in sources:
                for path in instruction.value[:-1]:
                    if any(is_within(path, folder) for folder in folders):
                        copy = f"{instruction.keyword} --from={source} {path}"
                        return _needed(what, folders, f"`{copy}` copies them into another stage")
    return None


def script_command(command: Command) -> Command:
    """The command a `sh ./mvnw package` or `php composer.phar install` runs: the script, with
    the interpreter and its options (`php -d memory_limit=-1`) left out. `sh -c '...'` is not
    one: the commands of its script are found on their own."""
    if command.name not in SHELLS and command.name != "php":
        return command
    words = command.words[1:]
    while words and (words[0].value or "").startswith("-"):
        if command.name in SHELLS and "c" in (words[0].value or ""):
            return command
        words = words[2:] if command.name == "php" and words[0].value in ("-d", "-c") else words[1:]
    return replace(command, words=words) if words else command


def _needed(what: str, folders: Sequence[str], reason: str) -> str:
    return (f"{what} in {folders[0]} must stay in the image ({reason}): a cache mount would leave them out, and "
            "they would be downloaded again where they are used; keep this RUN as it is, or use what it builds")


def shell_env(run: RunContext) -> dict[str, str]:
    """What the RUN's shell expands `$VAR` with: ENV, ARG and HOME."""
    return {**run.env, **({"HOME": run.home} if run.home else {})}
