"""Putting cache mounts on a RUN: add what is missing, correct near misses, replace stale ones.

A `MountFix` is the result: the edits and the flags they write, as written. A finding carries
those flags, so the engine and the guard know what a fix mounts without reading its edits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cachefix.model import Edit
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, expand
from cachefix.rewriter.mounts import CacheMount, ExistingMount, existing_mounts, is_within, mount_flag, same_path
from cachefix.rewriter.stages import copied_into
from cachefix.rules.id_scope import scoped
from cachefix.rules.rule import Options


@dataclass
class MountFix:
    """Edits that put mounts on a RUN, and the `--mount` flags they write (empty: nothing to do)."""

    edits: list[Edit] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # the folder each flag mounts

    def add(self, edit: Edit, flag: str, target: str) -> None:
        self.edits.append(edit)
        self.flags.append(flag)
        self.targets.append(target)


def mount_fix(run: RunContext, wanted: Sequence[CacheMount], options: Options, manager: str,
              stale: Sequence[ExistingMount] = (), *, several: bool = False) -> MountFix:
    """Put `wanted` mounts on the RUN: add the missing, correct the near misses (keeping the
    user's other options), and replace `stale` mounts (ones meant for this manager that cache
    nothing, such as `/root/.cache/pip` for another user) rather than leave them beside the
    right one. `several`: the rule puts other mounts on the RUN too, see `with_options`."""
    stale = list(stale)
    wanted = one_lock(wanted)
    written = existing_mounts(run.instruction)
    # BuildKit expands ARG and ENV values in mount options (`target=$POETRY_CACHE_DIR`).
    present = [ExistingMount(m.flag, {k: expand(v, run.env) for k, v in m.options.items()}) for m in written]
    fix = MountFix()
    for mount in wanted:
        mount, declarations = scoped(run, with_options(mount, options, manager, several=several or len(wanted) > 1),
                                     options.id_scope)
        if any(mount.satisfied_by(m) for m in present):
            continue
        near = next((w for w, m in zip(written, present, strict=True)
                     if m.is_cache and same_path(m.target, mount.target)), None)
        if near is not None:
            flag = spelled(run, _merge(near, mount))
            fix.add(edits.replace_flag(near.flag, flag), flag, mount.target)
            continue  # the user's id stays
        fix.edits.extend(declarations)
        if stale:
            flag = spelled(run, mount.render())
            fix.add(edits.replace_flag(stale.pop(0).flag, flag), flag, mount.target)
        else:
            flag = spelled(run, mount.render())
            fix.add(edits.add_flag(run.instruction, flag), flag, mount.target)
    return fix


def mount_fix_under(run: RunContext, wanted: Sequence[CacheMount], options: Options, manager: str,
                    stale: Sequence[ExistingMount] = ()) -> MountFix:
    """`mount_fix` for caches inside a folder of settings (`~/.m2/repository`, `~/.gradle/caches`).

    A cache mount the user put on the folder itself is kept, with the options `wanted` needs,
    unless the file copies files into that folder (`settings.xml`, `gradle.properties`): the
    mount hides them, so it is replaced by the `wanted` mounts.
    """
    present = [m for m in existing_mounts(run.instruction) if m.is_cache]
    above = next((m for m in present if all(is_within(w.target, m.target) and not same_path(w.target, m.target)
                                            for w in wanted)), None)
    if above is None:
        return mount_fix(run, wanted, options, manager, stale)
    if not copied_into(run, above.target):
        return mount_fix(run, [wanted[0]._replace(target=above.target)], options, manager)
    placed = [scoped(run, with_options(w, options, manager, several=len(wanted) > 1), options.id_scope)
              for w in wanted]
    (first, _), *rest = placed
    fix = MountFix(edits=[edit for _, declarations in placed for edit in declarations])
    flag = spelled(run, first.render())
    fix.add(edits.replace_flag(above.flag, flag), flag, first.target)
    for mount, _ in rest:
        flag = spelled(run, mount.render())
        fix.add(edits.add_flag(run.instruction, flag), flag, mount.target)
    return fix


def retarget(run: RunContext, existing: ExistingMount, mount: CacheMount) -> MountFix:
    """Move an existing mount to `mount`'s target and owner, keeping the user's other options
    (an `id`, a `sharing`): for a mount that defeats the cache it is meant to hold."""
    options = {k: (mount.target if k in ("target", "dst", "destination") else v) for k, v in existing.options.items()}
    options.update({k: str(v) for k, v in (("uid", mount.uid), ("gid", mount.gid), ("mode", mount.mode))
                    if v is not None})
    fix = MountFix()
    flag = spelled(run, _flag(options))
    fix.add(edits.replace_flag(existing.flag, flag), flag, mount.target)
    return fix


def stale_mounts(run: RunContext, target: str, manager: str, in_home: str) -> list[ExistingMount]:
    """Cache mounts on the RUN meant for this manager's per-user cache that do not hold `target`:
    on `.../<in_home>` (root's, for another user) or cachefix's own `/var/cache/<manager>-<who>`
    for another user. They get replaced, not kept beside."""
    own = re.compile(re.escape(manager) + r"-[\w.-]+")
    return [m for m in existing_mounts(run.instruction)
            if m.is_cache and not is_within(target, m.target)
            and (m.target.rstrip("/").endswith("/" + in_home.strip("/"))
                 or own.fullmatch(m.target.rstrip("/").rsplit("/", 1)[-1]) is not None)]


def owned_mount(target: str, name: str, uid: int | None, gid: int | None, options: Options,
                sharing: str | None = None) -> CacheMount:
    """A mount at a fixed place (one the manager cannot be pointed away from) for a user.
    A user that is not root gets its uid on it and an id of its own: BuildKit applies uid/gid
    only when it creates a cache, so sharing the default id (the target) with root's builds
    could hand this user a root-owned cache it cannot write."""
    if not uid:
        return CacheMount(target, sharing=sharing)
    return CacheMount(target, f"{options.id_prefix}{name}-{uid}", sharing, uid, gid)


def with_options(mount: CacheMount, options: Options, manager: str, several: bool = False) -> CacheMount:
    """Apply --id-prefix and --sharing; a rule with several mounts gets one id for each
    (`<prefix>go-mod`, `<prefix>go-go-build`), or they would all share one cache."""
    if options.id_prefix and mount.id is None:
        name = f"{options.id_prefix}{manager}" + (f"-{mount.target.rstrip('/').rsplit('/', 1)[-1]}" if several else "")
        mount = mount._replace(id=name)
    if options.sharing and mount.sharing is None:
        mount = mount._replace(sharing=options.sharing)
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
    for key in ("sharing", "uid", "gid", "mode"):
        value = getattr(wanted, key)
        if value is not None:
            options[key] = str(value)
    return _flag({"type": "cache", **options})


def _flag(options: Mapping[str, str]) -> str:
    """A parsed mount written back (`parse_mount` reads a bare key as "true")."""
    return mount_flag((k, None if v == "true" else v) for k, v in options.items())


def home_not_writable(run: RunContext, manager: str, variable: str, home: str, writable: bool) -> str | None:
    """For a user that is not root, why a cache inside `home` (CARGO_HOME, GEM_HOME: folders the
    manager writes more into than its cache, so the cache cannot be moved out) cannot be mounted,
    as a finding's message: the uid is not known, or `home` is not known to be `writable` by the
    user, and a mount would create it owned by root. None when the mount can be made."""
    if run.is_root or (writable and run.uid is not None):
        return None
    if run.uid is None:
        return (f"{manager} runs as user '{run.user}' whose uid this file does not show, so a cache mount cannot be "
                "made writable for it: create the user with `useradd -u UID` (or use a numeric USER) and run "
                "cachefix again")
    return (f"{manager} runs as user '{run.user}' with {variable}={home}, which this file does not show to be "
            "writable by it: a cache mount inside it would create it owned by root. Make it the user's, then mount "
            f"the cache there with uid={run.uid},gid={run.gid}")
