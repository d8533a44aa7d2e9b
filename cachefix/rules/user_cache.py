"""The rule kind for a package manager that caches per user, in or under the home folder.

Most managers (pip, uv, npm, yarn, pnpm, bun, poetry, composer, ...) differ only in facts:
which commands download, where the cache lives (variables that move it, the home default),
what turns it off, what empties it. A rule of this kind states those facts as class
attributes and inherits the fix:

- root keeps the cache where the manager puts it;
- another user whose cache is in the home folder gets a folder of its own outside it
  (`/var/cache/<name>-<uid>`, owned by it), and the variable that moves the cache is set for
  each command: a mount under the home would leave root-owned folders there (buildkit#2682);
- a user whose uid neither the file nor its base image shows is reported, not guessed: a cache
  mount is writable only by the uid it is made for (`mode=0777` is not a way out: dockerd's
  built-in BuildKit and buildah apply their umask to it, moby#47415, buildah#4811);
- a stage-wide switch that turns the cache off (`ENV PIP_NO_CACHE_DIR=1`) stays in the image
  and is undone for each command that gets the mount (`env -u PIP_NO_CACHE_DIR pip ...`);
- clean-ups that would empty the mount are dropped from that RUN; ones that cannot be are
  reported; options that defeat the cache are dropped.

Hooks (`calls`, `environment`, `refusal`, `extra_edits`) cover the real special cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from cachefix.model import Edit, Finding
from cachefix.rewriter.context import RunContext, command_env, image_name, shell_env
from cachefix.rewriter.mounts import CacheMount, ExistingMount, is_within
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation, option_value
from cachefix.rules.cleanup import clean_up
from cachefix.rules.manager import ManagerRule
from cachefix.rules.placement import mount_fix, stale_mounts
from cachefix.rules.words import delete_assignment, previous_words, remove_words, set_for_command

# Where a per-user cache goes for a user that is not root: outside the home folder, so the
# mount point left behind does not make `~/.cache` root-owned (buildkit#2682, #3153).
# Porting note: a user whose uid is unknown is reported (no `mode=0777` mounts: umask defeats them).
MOVED = "/var/cache/{name}-{uid}"


@dataclass(frozen=True)
class Cache:
    """Where one cache of a manager lives: `locations` are tried in order, the first that the
    environment determines wins. `$VAR/rest` needs VAR set and not empty, `~/rest` the home
    folder, `/path` is a fixed default. A location from the manager's own variable (not `~`,
    not `$XDG_...`) is the user's choice and is kept for every user; the others are moved out
    for non-root users. `option` is a command-line option that chooses the folder
    (`--cache-dir`), tried first.
    `name` tells a manager's caches apart in a moved folder's name (`go-mod`)."""

    locations: tuple[str, ...]
    option: tuple[str, ...] = ()
    sharing: str | None = None
    name: str = ""

    @property
    def variable(self) -> str:
        """The variable that points the manager at a moved cache: the one the first location reads."""
        return self.locations[0].lstrip("$").split("/", 1)[0]

    @property
    def in_home(self) -> str:
        """The default place, relative to the home folder (`.cache/pip`)."""
        return next((loc[2:] for loc in self.locations if loc.startswith("~/")), "")

    def resolve(self, call: Invocation | None, env: Mapping[str, str], home: str | None) -> tuple[str | None, bool]:
        """(the folder, whether the user chose it); None when the file does not show where it is.
        `call` is the command whose `option` may choose the folder (None: no command line)."""
        chosen = option_value(call.args, self.option) if self.option and call is not None else None
        if chosen is not None:  # a relative folder is reported when the mount is written (UnsafeMount)
            return chosen, True
        for location in self.locations:
            head, _, rest = location.partition("/")
            if not head:  # a fixed default (conda's `<root prefix>/pkgs`)
                return location, False
            if head == "~":
                return (None if home is None else f"{home.rstrip('/')}/{rest}"), False
            value = env.get(head.lstrip("$"))
            if value:
                path = f"{value.rstrip('/')}/{rest}" if rest else value
                return path, not head.startswith("$XDG_")
        return None, False


@dataclass(frozen=True)
class Switch:
    """A variable that turns the manager's cache off for every command that sees it; `off`
    says which values do (pip: any value, even 0)."""

    variable: str
    off: Callable[[str], bool] = lambda value: True


@dataclass(frozen=True)
class Placed:
    """A cache placed for the RUN's user: which cache, its mount, and the variable set on each
    command when the cache was moved out of the home folder."""

    cache: Cache
    mount: CacheMount
    variable: str | None = None


class UserCacheRule(ManagerRule):
    """A rule for a manager that caches per user; subclasses state the facts below."""

    caches: ClassVar[tuple[Cache, ...]] = ()
    switches: ClassVar[tuple[Switch, ...]] = ()
    defeating: ClassVar[frozenset[str]] = frozenset()  # options that make the command skip the cache
    destinations: ClassVar[frozenset[str]] = frozenset()  # options naming where a command puts its result
    # Variables set for the commands that run a phrase (`"python install"`), unless set already;
    # `{cache}` is the cache folder: uv keeps Python archives only where UV_PYTHON_CACHE_DIR points.
    sets: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    image_env: ClassVar[Mapping[str, Mapping[str, str]]] = {}  # what base images set (GOPATH in golang)
    label: ClassVar[str] = ""  # how messages name the manager (default: `manager`)
    # `find ... -delete` reaching into the cache leaves packages a later build installs incomplete.
    deletions_corrupt: ClassVar[bool] = False

    # Hooks for the special cases.

    def environment(self, run: RunContext, command: Command) -> dict[str, str]:
        """What the command sees: ENV, ARG, exports and prefixes, over what its base image sets."""
        return {**self.image_env.get(run.stage.image, {}), **command_env(run, command)}

    def caches_for(self, run: RunContext, state: object) -> tuple[Cache, ...]:
        """The caches this RUN's commands use: `caches`, unless which version of the manager runs
        decides (yarn v1's cache or berry's global folder, by what the stage shows)."""
        return self.caches

    def pinned(self, run: RunContext, cache: Cache) -> str | None:
        """Where root's cache goes when the file does not show where the manager puts it (composer:
        the image's XDG setup decides), with `cache.variable` set to it for each command; None: no fix."""
        return None

    def stale(self, run: RunContext, cache: Cache, target: str) -> list[ExistingMount]:
        """Cache mounts on the RUN meant for this cache that do not hold `target`: replaced, not kept beside."""
        return stale_mounts(run, target, cache.name or self.manager, cache.in_home)

    def refusal(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                placed: Sequence[Placed]) -> Finding | None:
        """A reason not to mount, as a finding: by default, a command that puts its result inside
        the cache (`pip install --target`), where the mount would keep it out of the image."""
        for command, call in calls:
            for result in self.results(run, command, call):
                cache = next((p.mount.target for p in placed if result.startswith("/")
                              and is_within(result, p.mount.target)), None)
                if cache is not None:
                    return self.at(run, command, f"{call.program} puts what it installs in {result}, inside its "
                                                 f"cache {cache}: a cache mount there would keep it out of the image; "
                                                 "install elsewhere")
        return None

    def results(self, run: RunContext, command: Command, call: Invocation) -> list[str]:
        """Where the command puts what it installs or downloads (`destinations` options)."""
        return [value for name in self.destinations if (value := option_value(call.args, {name}))]

    def extra_edits(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]],
                    placed: Sequence[Placed]) -> Iterable[Edit]:
        return ()

    # The fix every rule of this kind shares.

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        calls = self.calls(run)
        if not calls:
            return
        first, call = calls[0]
        env = self.environment(run, first)
        switched = [s.variable for s in self.switches if s.variable in env and s.off(env[s.variable])]
        for variable in switched:
            env.pop(variable)
        if run.uid is None:
            yield self.at(run, first, f"{self.label or call.program} runs as user '{run.user}' whose uid this file "
                                      "does not show, so a cache mount cannot be made writable for it: create the "
                                      "user with `useradd -u UID` (or use a numeric USER) and run cachefix again")
            return
        caches = self.caches_for(run, state)
        placed = [p for cache in caches if (p := self._place(run, cache, *cache.resolve(call, env, run.home)))]
        if not placed:
            return
        refused = self.refusal(run, calls, placed)
        if refused is not None:
            yield refused
            return
        yield from self._fix(run, calls, placed, switched)

    def _place(self, run: RunContext, cache: Cache, target: str | None, chosen: bool) -> Placed | None:
        """Where the cache is mounted for the RUN's user (see the module's docstring)."""
        if run.is_root and target is None and not chosen and (pin := self.pinned(run, cache)):
            return Placed(cache, CacheMount(pin, sharing=cache.sharing), cache.variable)
        if (run.is_root or chosen) and target is None:  # a relative folder, or an unknown home for root
            return None
        if run.is_root:
            return Placed(cache, CacheMount(target, sharing=cache.sharing))
        if chosen and target is not None:
            return Placed(cache, CacheMount(target, sharing=cache.sharing, uid=run.uid, gid=run.gid))
        moved = MOVED.format(name=cache.name or self.manager, uid=run.uid)
        return Placed(cache, CacheMount(moved, sharing=cache.sharing, uid=run.uid, gid=run.gid), cache.variable)

    def _fix(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]], placed: Sequence[Placed],
             switched: Sequence[str]) -> Iterable[Finding]:
        first = calls[0][0]
        targets = [p.mount.target for p in placed]
        plan = clean_up(run.commands, self.is_clean_up, targets, run.home, shell_env(run),
                        deletions_corrupt=self.deletions_corrupt)
        if plan.breaker is not None:
            yield self.at(run, plan.breaker, plan.problem(" and ".join(targets)))
            return
        stale = [m for p in placed for m in self.stale(run, p.cache, p.mount.target)]
        mounts = mount_fix(run, [p.mount for p in placed], self.options, self.manager, stale)
        assign = {p.variable: p.mount.target for p in placed if p.variable}
        prefixes, assign = self._per_command(run, calls, assign, switched, targets[0])
        defeaters = list(self._defeaters(calls, switched))
        name = self.label or calls[0][1].program
        if not mounts.flags and not prefixes:  # mounted already: what still empties or skips the cache goes
            if plan.edits or defeaters:
                yield self.at(run, first, f"this RUN mounts {name}'s cache on {' and '.join(targets)}, then empties "
                                          "or skips it: the clean-up and cache-skipping options go (the mount "
                                          "already keeps the cache out of the image)", [*plan.edits, *defeaters])
            return
        if (assign or switched) and any(not c.words or c.words[0].span is None for c, _ in calls):
            needs = ", ".join([*(f"{k}={v}" for k, v in assign.items()), *(f"unset {v}" for v in switched)])
            yield self.at(run, first, f"{name} runs inside a quoted script where cachefix cannot set {needs} for "
                                      f"it; do that there and add `{' '.join(p.mount.render() for p in placed)}`")
            return
        fix = [*mounts.edits, *plan.edits, *prefixes, *defeaters, *self.extra_edits(run, calls, placed)]
        inline = {a.name for command, _ in calls for a in command.assignments}
        stage_wide = [v for v in switched if v not in inline and v in run.origins]  # set by ENV or ARG
        yield self.at(run, first, self._message(name, mounts.flags, placed, assign, stage_wide, run), fix,
                      mounts=mounts.flags, related=[run.origins[v].span for v in stage_wide])

    def variables(self, run: RunContext, command: Command, call: Invocation, cache: str) -> dict[str, str]:
        """What to set for this command besides a moved cache's variable (`sets`), unless it is set."""
        env = self.environment(run, command)
        return {name: value.format(cache=cache.rstrip("/")) for phrase, wanted in self.sets.items()
                if call.runs(phrase) for name, value in wanted.items() if not env.get(name)}

    def _per_command(self, run: RunContext, calls: Sequence[tuple[Command, Invocation]], assign: Mapping[str, str],
                     switched: Sequence[str], cache: str) -> tuple[list[Edit], dict[str, str]]:
        """Each command's prefix, and every variable set: the moved cache's variable, `variables`,
        the switches undone (a prefix `VAR=...` on the command itself is deleted instead, see
        `_defeaters`; a switch that is the variable set needs no undoing: the command's own
        setting wins over the ENV)."""
        out, everything = [], dict(assign)
        for command, call in calls:
            wanted = {**assign, **self.variables(run, command, call, cache)}
            everything.update(wanted)
            # The stage's own setting (ENV, ARG, an export) is undone; a prefix on the command is
            # deleted instead (`_defeaters`), which uncovers the stage's, if any.
            stage_wide = run.exported_before(command)
            unset = [s.variable for s in self.switches if s.variable in switched and s.variable not in wanted
                     and s.variable in stage_wide and s.off(stage_wide[s.variable])]
            edit = set_for_command(command, run.shell_form, wanted, unset)
            if edit is not None:
                out.append(edit)
        return out, everything

    def _defeaters(self, calls: Sequence[tuple[Command, Invocation]], switched: Sequence[str]) -> Iterable[Edit]:
        """The options that skip the cache, and `SWITCH=...` prefixes, dropped from each command."""
        for command, call in calls:
            yield from remove_words((w for w in call.args if w.value in self.defeating), previous_words(command))
            for assignment in command.assignments:
                if assignment.name in switched and (edit := delete_assignment(command, assignment)):
                    yield edit

    @staticmethod
    def _message(name: str, flags: Sequence[str], placed: Sequence[Placed], assign: Mapping[str, str],
                 switched: Sequence[str], run: RunContext) -> str:
        where = " and ".join(p.mount.target for p in placed)
        if flags:
            text = f"{name} downloads without a cache mount on {where}: add " + " ".join(f"`{f}`" for f in flags)
        else:
            text = (f"{name} keeps less than it could in its cache mount on {where}: set "
                    + ", ".join(f"{k}={v}" for k, v in assign.items()) + " for it")
        if assign and flags:
            text += " and " + ", ".join(f"{k}={v}" for k, v in assign.items())
        for variable in switched:
            origin = run.origins[variable]
            how = "is set to the mount for it" if variable in assign else f"is unset for it (`env -u {variable}`)"
            text += (f"; {variable} ({origin.keyword} on line {origin.start_line}) turns the cache off, so it "
                     f"{how} and the image keeps the setting")
        account = run.stage.accounts.get(run.user)
        if account is not None and account.allocated:
            image = image_name(run.stage.base_image)
            like = "" if image == run.stage.image else f", built like {run.stage.image} as configured,"
            text += (f" (uid {run.uid} is the one the {image} image's tools{like} give user '{run.user}', "
                     "created without `-u`)")
        return text
