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
from cachefix.rewriter.context import RunContext, command_env, expand
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.mounts import CacheMount, ExistingMount, existing_mounts, is_within, same_path
from cachefix.rewriter.shell import Assignment, Command, Word, iter_options, removal_spans

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

    # Helpers shared by every rule.

    def finding(self, dockerfile: Dockerfile, span: Span, message: str, fix: Sequence[Edit] = (),
                severity: Severity = Severity.WARNING) -> Finding:
        start = Position(*dockerfile.position(span[0]))
        end = Position(*dockerfile.position(max(span[0], span[1] - 1)))
        return Finding(self.code, self.manager, message, start, Position(end.line, end.column + 1),
                       severity, tuple(fix))

    def mount_edits(self, run: RunContext, wanted: Sequence[CacheMount],
                    stale: Sequence[ExistingMount] = ()) -> tuple[list[Edit], list[CacheMount]]:
        """Edits that put `wanted` mounts on the RUN: add the missing, correct the near misses,
        and replace `stale` mounts (ones meant for this manager that cache nothing, such as
        `/root/.cache/pip` for another user) rather than leave them beside the right one.

        Returns the edits and the mounts that were missing or wrong (empty: nothing to do).
        """
        stale = list(stale)
        written = existing_mounts(run.instruction)
        # BuildKit expands ARG and ENV values in mount options (`target=$POETRY_CACHE_DIR`).
        present = [ExistingMount(m.flag, {k: expand(v, run.env) for k, v in m.options.items()}) for m in written]
        out: list[Edit] = []
        changed: list[CacheMount] = []
        for mount in wanted:
            mount = self._with_options(mount)
            if any(mount.satisfied_by(m) for m in present):
                continue
            changed.append(mount)
            near = next((w for w, m in zip(written, present, strict=True)
                         if m.is_cache and same_path(m.target, mount.target)), None)
            if near is not None:
                out.append(edits.replace_flag(near.flag, _merge(near, mount)))
            elif stale:
                out.append(edits.replace_flag(stale.pop(0).flag, mount.render()))
            else:
                out.append(edits.add_flag(run.instruction, mount.render()))
        return out, changed

    def user_cache(self, run: RunContext, dockerfile: Dockerfile, command: Command, target: str | None,
                   default: str | None, env_var: str) -> UserCache | Finding | None:
        """Where a cache that defaults to the home folder is mounted for the RUN's user.

        Root keeps `target`. Another user whose cache is still the default one gets a folder
        of its own outside the home (`/var/cache/<manager>-<uid>`, owned by it) with `env_var`
        pointing there: a mount under the home would leave root-owned folders in it. A user
        whose uid the file does not show, or an exec-form RUN (no place for the variable),
        gets a finding instead. None: the manager's cache is not known for this user.
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
        return UserCache(NON_ROOT_CACHE.format(name=self.manager, uid=run.uid), run.uid, run.gid, env_var)

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
            fix = [edits.replace_flag(replacing.flag, "--mount=" + ",".join(
                k if v == "true" else f"{k}={v}" for k, v in options.items()))]
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
                           f"add `{changed[0].render()}`"
                           + (f" and {placed.env_var}={placed.target}" if placed.env_var else "") + note, fix)

    def _with_options(self, mount: CacheMount) -> CacheMount:
        prefix = self.options.id_prefix
        if prefix and mount.id is None:
            mount = CacheMount(mount.target, f"{prefix}{self.manager}", mount.sharing, mount.uid, mount.gid)
        if self.options.sharing and mount.sharing is None:
            mount = CacheMount(mount.target, mount.id, self.options.sharing, mount.uid, mount.gid)
        return mount


def _merge(existing: ExistingMount, wanted: CacheMount) -> str:
    """Correct an existing mount in place, keeping options the user chose (id, mode, ...)."""
    options = dict(existing.options)
    for key in ("sharing", "uid", "gid"):
        value = getattr(wanted, key)
        if value is not None:
            options[key] = str(value)
    ordered = ["type=cache"] + [f"{k}={v}" if v != "true" else k for k, v in options.items() if k != "type"]
    return "--mount=" + ",".join(ordered)


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
    return replace(command, words=(replace(command.words[0], value=program), *command.words[1:]))


def programs_resolved(run: RunContext) -> list[tuple[Command, Command]]:
    """Each command of the RUN, with a copy whose program word is resolved (`resolve_program`).
    The original is the one `command_env` knows; the copy is the one to recognise."""
    return [(c, resolve_program(c, command_env(run, c), run.home)) for c in run.commands]


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


def clean_up_edits(commands: Iterable[Command], is_clean_up: Callable[[Command], bool], cache_dirs: Sequence[str],
                   home: str | None = None) -> Iterator[Edit]:
    """Edits that drop what only empties the mounted caches: commands `is_clean_up` names, and
    `rm` of paths inside `cache_dirs` (an `rm` that also removes other paths keeps those)."""
    yield from clean_up(commands, is_clean_up, cache_dirs, home).edits


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
