"""What is in effect when a RUN executes: stage, base image, USER, HOME, WORKDIR, ENV, ARG.

A cache mount is right only for the user and environment of the RUN it is on: pip run by
`app` caches under `/home/app/.cache/pip`, unless `PIP_CACHE_DIR` moves it. This module
replays the Dockerfile's instructions in order (with `FROM <stage>` inheriting everything the
parent stage set) and hands each RUN a `RunContext`. It knows Dockerfile semantics only;
what each package manager makes of the environment is the rules' business.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import NamedTuple

from cachefix.limits import MAX_VALUE_BYTES, OverLimit
from cachefix.rewriter.dockerfile import Dockerfile, Heredoc, Instruction
from cachefix.rewriter.shell import Command, Word, commands, exec_form_commands, through_env

_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?[-+](?P<default>[^}]*))?\}"
                  r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")

# Base images whose default user is not root: (image name, user, uid, gid, home).
_IMAGE_USERS = (
    ("mambaorg/micromamba", "mambauser", 57439, 57439, "/home/mambauser"),
)
# Users that exist in well-known images (so `USER node` has a known uid).
_IMAGE_ACCOUNTS = (
    ("", "nobody", 65534, 65534, "/nonexistent"),  # every Debian, Ubuntu, Alpine and Fedora image
    ("node", "node", 1000, 1000, "/home/node"),
    ("mambaorg/micromamba", "mambauser", 57439, 57439, "/home/mambauser"),
    ("oven/bun", "bun", 1000, 1000, "/home/bun"),
)
# The uid and gid that useradd/adduser give the first regular account a Dockerfile creates without
# `-u`, in images whose accounts are known: UID_MIN and GID_MIN are 1000 in Debian's, Ubuntu's and
# BusyBox's tools, and these images have no regular account yet, or one (uid 1000) in `node`,
# `oven/bun` and Ubuntu from 23.04. An image not listed here leaves such an account's uid unknown.
_FIRST_FREE_IDS = {name: 1000 for name in ("debian", "python", "golang", "rust", "ruby", "php", "perl", "alpine",
                                           "buildpack-deps", "pypy", "haskell", "erlang", "elixir", "julia",
                                           "r-base", "swift", "clojure")}
_FIRST_FREE_IDS |= {name: 1000 for name in ("fedora", "rockylinux", "almalinux", "amazonlinux")}  # UID_MIN 1000
_FIRST_FREE_IDS |= {"node": 1001, "oven/bun": 1001}
_UBUNTU_WITHOUT_USER = ("14.04", "16.04", "18.04", "20.04", "22.04", "trusty", "xenial", "bionic", "focal", "jammy")
_UBUNTU_WITH_USER = ("23.04", "23.10", "24.04", "24.10", "25.04", "25.10", "lunar", "mantic", "noble", "oracular",
                     "plucky", "questing", "latest", "rolling")


class Account(NamedTuple):
    """A user known from the file (useradd/adduser) or from a well-known base image."""

    name: str
    uid: int | None
    gid: int | None
    home: str | None
    allocated: bool = False  # created without a uid: the uid is the one the image's tools give


@dataclass
class Stage:
    """Everything a stage has set so far; a child stage starts from a copy."""

    index: int
    name: str | None
    base_image: str
    user: str = "root"
    group: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    accounts: dict[str, Account] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    # ids that useradd/adduser/groupadd took from a build ARG (`--uid "${UID}"`): ("uid"|"gid", id) → ARG name
    id_args: dict[tuple[str, int], str] = field(default_factory=dict)
    origins: dict[str, Instruction] = field(default_factory=dict)  # the ENV or ARG that set each variable
    windows: bool = False  # a Windows base image: Linux cache paths mean nothing there
    parent: int | None = None  # the stage of this file it is built FROM
    base_file: str | None = None  # the Dockerfile of the tree that builds its base image, when read
    base_runs: tuple[RunContext, ...] = ()  # that file's RUNs that built the base image, in order
    # The next uid and gid a new regular account gets, where the image's accounts are known.
    next_ids: tuple[int, int] | None = None
    instructions: list[Instruction] = field(default_factory=list)  # after its FROM, in order

    # The base image as Docker Hub names it (`golang` for `docker.io/library/golang:1.22`), or the
    # well-known image the configuration says a private one is built like.
    image: str = ""

    def derive(self, index: int, name: str | None) -> Stage:
        return replace(self, index=index, name=name, env=dict(self.env), args={},
                       accounts=dict(self.accounts), groups=dict(self.groups), id_args=dict(self.id_args),
                       origins={k: v for k, v in self.origins.items() if k in self.env},
                       parent=self.index, instructions=[])


class RunContext:
    """A RUN instruction with what is in effect for it, and its shell commands.

    The commands are parsed on first use: most RUNs of a large file interest no rule (a rule
    first asks `mentions`), and parsing shell is the costly part of a lint.
    """

    def __init__(self, instruction: Instruction, stage: Stage, env: Mapping[str, str],
                 uid: int | None, gid: int | None, home: str | None, replay: Replay) -> None:
        self.instruction = instruction
        self.stage = stage
        self.env = env
        self.user = stage.user
        self.uid, self.gid, self.home = uid, gid, home
        self.replay = replay
        self.origins = dict(stage.origins)  # where each variable of `env` was set, as of this RUN
        self._target = instruction.unwrapped
        self.shell_form = not self._target.json

    @property
    def dockerfile(self) -> Dockerfile:
        return self.replay.dockerfile

    @cached_property
    def text(self) -> str:
        """Everything the RUN executes, as text: its command line and heredoc bodies."""
        return " ".join(self._target.value) + "".join("\n" + h.content for h in self._target.heredocs)

    @cached_property
    def _expanded_text(self) -> str:
        return expand(self.text, self.env) if "$" in self.text else self.text

    def mentions(self, words: Iterable[str]) -> bool:
        """A cheap first look: does any of these words appear in the RUN, as written or with the
        file's variables expanded (`RUN $UV pip install` after `ENV UV=/usr/local/bin/uv`)?"""
        words = tuple(words)
        return any(word in self.text for word in words) or any(word in self._expanded_text for word in words)

    @cached_property
    def _resolved(self) -> tuple[tuple[Command, ...], dict[int, Mapping[str, str]], Mapping[str, str]]:
        """The commands as they run (seen through `env`, words expanded where the file sets the
        variables in them), the environment before each (by id) and after the last, with the
        RUN's `export`s applied in order: one pass, so asking for every command's is linear."""
        found: list[Command] = []
        before: dict[int, Mapping[str, str]] = {}
        env: Mapping[str, str] = self.env
        for parsed in run_commands(self.instruction):
            command = through_env(parsed)
            # The shell expands words before the command's own prefixes apply.
            command = resolve_words(command, {**({"HOME": self.home} if self.home else {}), **env}, self.home)
            found.append(command)
            before[id(command)] = env
            if command.name == "export":
                exported = {key: value for key, sep, value in
                            ((word.value or "").partition("=") for word in command.args) if sep}
                if exported:
                    env = {**env, **exported}
        return tuple(found), before, env

    @property
    def commands(self) -> tuple[Command, ...]:
        return self._resolved[0]

    def exported_before(self, command: Command) -> Mapping[str, str]:
        """ENV/ARG with the `export`s run before `command` (all of them for a command not of this RUN)."""
        _, before, at_end = self._resolved
        return before.get(id(command), at_end)

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def id_spelling(self, kind: str, value: int) -> str:
        """How a mount option writes the uid or gid (`kind`) `value`: `${UID}` where the file took it from
        a build ARG that is in scope here with that value, so that `--build-arg UID=...` moves the
        mount's owner along with the user (BuildKit's frontend 1.3+ and buildah expand ARGs in
        mount options); else the number."""
        name = self.stage.id_args.get((kind, value))
        if name and name in self.stage.args and name not in self.stage.env and self.env.get(name) == str(value):
            return "${" + name + "}"
        return str(value)


def command_env(run: RunContext, command: Command) -> dict[str, str]:
    """The environment one command sees: ENV/ARG, `export`s earlier in the RUN, its prefixes,
    less what `env -u` removes."""
    env = dict(run.exported_before(command))
    env.update((a.name, a.value or "") for a in command.assignments)
    for name in command.unsets:
        env.pop(name, None)
    return env


def shell_env(run: RunContext) -> dict[str, str]:
    """What the RUN's shell expands `$VAR` with: ENV, ARG and HOME."""
    return {**run.env, **({"HOME": run.home} if run.home else {})}


def word_path(word: Word, env: Mapping[str, str], home: str | None) -> str | None:
    """The path a word names once the shell has expanded it: `~`, and `$VAR`/`${VAR}` that the
    file sets (`rm -rf $POETRY_CACHE_DIR`). None when it depends on what the file does not show."""
    path = word.value if word.value is not None else _static(word.raw, env)
    return None if path is None else in_home(path, home)


def in_home(path: str, home: str | None) -> str:
    """`~` and `~/...` as the shell expands them for a user whose home is `home` (when known)."""
    if home and (path == "~" or path.startswith("~/")):
        return home.rstrip("/") + path[1:]
    return path


def resolve_words(command: Command, env: Mapping[str, str], home: str | None) -> Command:
    """The command with each word the shell expands from variables the file sets given its value:
    `$CONDA_DIR/bin/conda install` runs `/opt/conda/bin/conda` after `ENV CONDA_DIR=/opt/conda`, and
    `--root-prefix="${CONDA_DIR}"` names that folder. Words keep their place in the file, so edits
    around them still land where they should; a word that needs more than the file shows stays
    dynamic (value None). A `~` at the start of the program word is expanded too."""
    if all(w.value is not None for w in command.words):
        return command
    words = [w if w.value is not None else w._replace(value=_static(w.raw, env)) for w in command.words]
    if words and command.words[0].value is None and words[0].value is not None:
        words[0] = words[0]._replace(value=word_path(words[0], env, home))
    return replace(command, words=tuple(words))


def expand(word: str, variables: Mapping[str, str]) -> str:
    """Expand `$VAR`, `${VAR}` and `${VAR:-default}` like the Dockerfile frontend does.

    OverLimit when the values put in come to more than MAX_VALUE_BYTES: each `ENV B=$A$A`
    doubles a value, and forty of them would fill any memory."""
    added = 0

    def sub(match: re.Match[str]) -> str:
        nonlocal added
        name = match.group("braced") or match.group("plain")
        value = variables[name] if name in variables else match.group("default") or ""
        added += len(value)
        if added > MAX_VALUE_BYTES:
            raise OverLimit("bytes of variables expanded in one value", MAX_VALUE_BYTES)
        return value
    return _VAR.sub(sub, word)


def unquote(word: str, variables: Mapping[str, str]) -> str:
    """An ENV/ARG value as the frontend stores it: quotes removed, variables expanded.

    A `$` inside single quotes or after a backslash is a literal dollar, not a variable: in
    `ENV PIP_CACHE_DIR=/a\\$b` the folder is `/a$b`, and a mount on `/a` would cache nothing."""
    if "'" not in word and '"' not in word and "\\" not in word:
        return expand(word, variables)
    marked = _literal_dollars_marked(word)
    if marked is None:  # an unbalanced quote: BuildKit refuses the file before this matters
        return expand(word, variables)
    return expand(marked, variables).replace("\0", "$")


def _literal_dollars_marked(word: str) -> str | None:
    """`word` with its quotes and escapes removed and each literal `$` written as NUL."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(word):
        ch = word[i]
        if quote == "'":
            if ch == "'":
                quote = ""
            else:
                out.append("\0" if ch == "$" else ch)
        elif ch == "\\" and i + 1 < len(word) and (not quote or word[i + 1] in '"\\$'):
            i += 1
            out.append("\0" if word[i] == "$" else word[i])
        elif ch in "'\"" and (not quote or ch == quote):
            quote = "" if quote else ch
        else:
            out.append(ch)
        i += 1
    return None if quote else "".join(out)


def image_name(reference: str) -> str:
    """An image reference as Docker Hub names the image, without registry, tag or digest (`golang`
    for `docker.io/library/golang:1.22-alpine`): the one normaliser, so every rule that knows
    what an image sets looks it up the same way."""
    image = reference.split("@", 1)[0].lower()
    name, colon, tag = image.rpartition(":")
    if not colon or "/" in tag:  # `registry:5000/x` has a port, not a tag
        name = image
    return name.removeprefix("docker.io/").removeprefix("index.docker.io/").removeprefix("library/")


def first_free_id(name: str, reference: str) -> int | None:
    """The id the first regular account created in image `name` (the `reference`'s, or the image
    it is built like) gets, when the image's accounts are known."""
    tag = image_tag(reference)
    if name == "nvidia/cuda":  # `12.8.1-base-ubuntu24.04`, `12.4.1-devel-rockylinux9`, `-ubi9`: the OS is in the tag
        os_release = re.search(r"-(ubuntu)(\d\d\.\d\d)$|-(rockylinux|ubi)\d+$", tag)
        if os_release is None:
            return None
        name, tag = ("ubuntu", os_release.group(2)) if os_release.group(1) else ("rockylinux", tag)
    if name == "ubuntu":
        release = tag.split("-", 1)[0]
        return 1000 if release in _UBUNTU_WITHOUT_USER else 1001 if release in _UBUNTU_WITH_USER else None
    return _FIRST_FREE_IDS.get(name)


def image_tag(reference: str) -> str:
    """The tag of an image reference (`latest` when it names none): `22.04` for `ubuntu:22.04@sha256:...`."""
    last = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.partition(":")[2] or "latest"


def _base_image_defaults(stage: Stage) -> None:
    first = first_free_id(stage.image, stage.base_image)
    stage.next_ids = None if first is None else (first, first)
    for name, user, uid, gid, home in _IMAGE_ACCOUNTS:
        if not name or stage.image == name:
            stage.accounts[user] = Account(user, uid, gid, home)
    for name, user, *_ in _IMAGE_USERS:
        if stage.image == name:
            stage.user = user


def is_windows_image(image: str) -> bool:
    """`mcr.microsoft.com/windows/servercore`, `python:3.13-windowsservercore-ltsc2022`, nanoserver."""
    name = image.lower()
    return any(word in name for word in ("windows", "nanoserver", "servercore"))


def _key_values(instruction: Instruction) -> Iterator[tuple[str, str]]:
    values = instruction.value
    for i in range(0, len(values) - 1, 2):
        yield values[i], values[i + 1]


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


ACCOUNT_COMMANDS = ("useradd", "adduser", "groupadd", "addgroup")


# How each tool spells its options (getopt syntax), so `useradd -mu 1002 app` and
# `useradd -ms /bin/bash -u 1002 app` are read as the tool reads them. BusyBox's adduser
# (Alpine) differs from shadow's: there `-g` is the GECOS field and `-G` the group.
_USERADD = ("u:g:d:s:c:G:k:e:f:K:p:b:R:P:Z:mMrNUolD",
            ["uid=", "gid=", "home-dir=", "shell=", "comment=", "groups=", "skel=", "expiredate=", "inactive=",
             "key=", "password=", "base-dir=", "root=", "prefix=", "selinux-user=", "create-home",
             "no-create-home", "system", "no-user-group", "user-group", "non-unique", "no-log-init", "defaults"])
_ADDUSER = ("h:g:s:G:u:k:SDH",
            ["uid=", "gid=", "home=", "shell=", "ingroup=", "gecos=", "comment=", "firstuid=", "lastuid=",
             "conf=", "add-extra-groups", "disabled-password", "disabled-login", "no-create-home", "system",
             "group", "quiet", "debug", "force-badname", "allow-badname", "allow-all-names", "home-dir="])
_GROUPADD = ("g:K:p:R:P:fro", ["gid=", "key=", "password=", "root=", "prefix=", "force", "system", "non-unique",
                               "users="])
_ADDGROUP = ("g:S", ["gid=", "system", "quiet", "debug", "conf="])
_SPELLINGS = {"useradd": _USERADD, "adduser": _ADDUSER, "groupadd": _GROUPADD, "addgroup": _ADDGROUP}


def _static(raw: str, variables: Mapping[str, str]) -> str | None:
    """A word's value once the shell expands the ARG and ENV values it names (`"${UID}"`), or
    None when it needs more than that (single quotes, escapes, command substitution, a variable
    the file does not set)."""
    text = raw.replace('"', "")
    if any(c in text for c in "'`\\") or "$(" in text or "$" in _VAR.sub("", text):
        return None
    if any((m.group("braced") or m.group("plain")) not in variables for m in _VAR.finditer(text)):
        return None
    return expand(text, variables)


_ONE_VARIABLE = re.compile(r'"?\$(?:\{(?P<braced>\w+)\}|(?P<plain>\w+))"?')


def _parsed_options(command: Command, variables: Mapping[str, str]) -> tuple[dict[str, str], list[str]] | None:
    """Options (last one wins, `-u`/`--uid` both as given) and operands, or None if unreadable."""
    short, long = _SPELLINGS[command.name]
    argv: list[str] = []
    for word in command.args:
        value = word.value if word.value is not None else _static(word.raw, variables)
        if value is None:
            return None
        argv.append(value)
    import getopt  # with gettext: 1.7 ms, for the few RUNs that add users or change owners

    try:
        options, operands = getopt.gnu_getopt(argv, short, long)
    except getopt.GetoptError:
        return None
    return dict(options), operands


def _build_arg(stage: Stage, command: Command, keys: tuple[str, ...]) -> str | None:
    """The build ARG an option of the command is given as, alone (`--uid "${UID}"`, `-u $UID`,
    `--uid=$UID`): the last one wins, as for the option itself. None for anything else."""
    found = None
    words = command.args
    for i, word in enumerate(words):
        for key in keys:
            if word.raw == key and i + 1 < len(words):
                value = words[i + 1].raw
            elif word.raw.startswith(key + "=") and key.startswith("--"):
                value = word.raw[len(key) + 1:]
            else:
                continue
            match = _ONE_VARIABLE.fullmatch(value)
            name = match and (match.group("braced") or match.group("plain"))
            found = name if name and name in stage.args and name not in stage.env else None
    return found


def _learn_accounts(stage: Stage, found: list[Command], variables: Mapping[str, str]) -> None:
    """Remember users and groups created by useradd/adduser/groupadd/addgroup, with the ARG and
    ENV values their options name resolved (`adduser --uid "${UID}" appuser` after `ARG UID=10001`),
    and which ids came from a build ARG (`Stage.id_args`)."""
    for cmd in found:
        if cmd.name not in _SPELLINGS:
            continue
        parsed = _parsed_options(cmd, variables)
        if parsed is None:
            continue
        options, operands = parsed
        if not operands:
            continue
        system = any(k in options for k in ("-r", "--system", "-S"))
        if cmd.name in ("groupadd", "addgroup"):
            gid = _int(options.get("-g") or options.get("--gid"))
            gid = _allocated(stage, gid, system, 1)
            if gid is not None:
                stage.groups[operands[-1]] = gid
                _remember(stage, "gid", gid, _build_arg(stage, cmd, ("-g", "--gid")))
            continue
        if cmd.name == "adduser" and len(operands) > 1:
            continue  # `adduser user group` adds an existing user to a group
        name = operands[0]
        given = _int(options.get("-u") or options.get("--uid"))
        uid = _allocated(stage, given, system, 0)
        uid_arg = _build_arg(stage, cmd, ("-u", "--uid"))
        if cmd.name == "useradd":
            group_keys: tuple[str, ...] = ("-g", "--gid")
            home = options.get("-d") or options.get("--home-dir")
        else:  # Debian's adduser (long options) or BusyBox's (short ones, -g being GECOS there)
            group_keys = ("--gid", "--ingroup", "-G")
            home = options.get("--home") or options.get("-h")
        group = next((options[k] for k in group_keys if options.get(k)), None)
        if group is None and any(k in options for k in ("-N", "--no-user-group")):
            group = "100"  # the group `users` of Debian's and Ubuntu's /etc/default/useradd
        own_group = group is None and name not in stage.groups  # useradd makes one, numbered like the uid if free
        if own_group and uid is not None:
            stage.groups[name] = _own_group(stage, uid)
        gid = _int(group) if group and group.isdigit() else stage.groups.get(group or name, uid)
        _remember(stage, "uid", uid, uid_arg)
        if group and group.isdigit():
            _remember(stage, "gid", gid, _build_arg(stage, cmd, group_keys))
        elif (own_group or (group or name) not in stage.groups) and gid == uid:
            _remember(stage, "gid", gid, uid_arg)
        stage.accounts[name] = Account(name, uid, gid, home or f"/home/{name}", given is None and uid is not None)


def _allocated(stage: Stage, given: int | None, system: bool, which: int) -> int | None:
    """The uid (`which` 0) or gid (1) a new account gets: the one given, else the next free one
    where the image's accounts are known (a system account's, from another range, stays unknown);
    the next free one moves past what is taken."""
    if stage.next_ids is None or (given is None and system):
        return given
    ids = list(stage.next_ids)
    value = ids[which] if given is None else given
    if value >= ids[which]:
        ids[which] = value + 1
    stage.next_ids = (ids[0], ids[1])
    return value


def _own_group(stage: Stage, uid: int) -> int:
    """The gid of the group useradd/adduser make for a new user: the uid's number when it is free."""
    if stage.next_ids is not None and uid < stage.next_ids[1]:
        return _allocated(stage, None, False, 1) or uid
    return _allocated(stage, uid, False, 1) or uid


def _remember(stage: Stage, kind: str, value: int | None, arg: str | None) -> None:
    """Note that the id `value` of `kind` ("uid"|"gid") came from the build ARG `arg`, when both are known."""
    if value is not None and arg is not None:
        stage.id_args[(kind, value)] = arg


def resolve_user(stage: Stage) -> tuple[int | None, int | None, str | None]:
    """(uid, gid, home) of the stage's current USER, as far as the file tells."""
    user, group = stage.user, stage.group
    if user in ("root", "0"):
        uid, gid, home = 0, 0, "/root"
    elif user.isdigit():
        uid = int(user)
        account = next((a for a in stage.accounts.values() if a.uid == uid), None)
        gid, home = (account.gid, account.home) if account else (None, None)
        if account is None and group is None:
            gid = uid  # `USER 1000` with no group: the primary group is conventionally the same id
    else:
        account = stage.accounts.get(user)
        uid, gid, home = (account.uid, account.gid, account.home) if account else (None, None, None)
    if group is not None:
        gid = int(group) if group.isdigit() else stage.groups.get(group, gid if group == user else None)
    if "HOME" in stage.env:
        home = stage.env["HOME"]
    return uid, gid, home


def run_commands(instruction: Instruction) -> list[Command]:
    """The commands a RUN executes: its command line's, and those of heredocs run as scripts."""
    target = instruction.unwrapped
    script, offsets = target.shell_source()
    if target.json:
        return exec_form_commands(target.value, script, offsets)
    found = commands(script, offsets)
    for heredoc in target.heredocs:
        if _runs_as_shell(script, heredoc.name, found):
            found.extend(commands(heredoc.content, heredoc_offsets(heredoc)))
    return found


def _runs_as_shell(script: str, name: str, found: list[Command]) -> bool:
    """`RUN <<EOF` runs the body as the script; `RUN bash <<EOF` feeds it to a shell."""
    head = script.strip()
    if head.lstrip("<-").strip("'\"") == name:
        return True
    return any(cmd.name in ("sh", "bash", "dash", "ash") and not any(
        (w.value or "").startswith("-") and "c" in (w.value or "") for w in cmd.args) for cmd in found)


def heredoc_offsets(heredoc: Heredoc) -> list[int] | None:
    """File offsets of a heredoc body's characters (None for `<<-`, whose tabs are stripped)."""
    if heredoc.chomp:
        return None
    return list(range(*heredoc.body_span))


class BaseImage(NamedTuple):
    """A base image whose settings are known from the Dockerfile that builds it (`cachefix.bases`):
    the last stage of that file, where the file is (as findings name it), and the RUNs that built
    the image (rules observe them as they observe earlier RUNs of the stage)."""

    stage: Stage
    path: str
    runs: tuple[RunContext, ...]


BaseLookup = Callable[[str], "BaseImage | None"]


@dataclass
class Replay:
    """A whole file replayed once: its stages (with their instructions and parents) and its RUNs
    with their contexts. Rules and the stage analysis (`cachefix.rewriter.stages`) read it; nothing
    recomputes it."""

    dockerfile: Dockerfile
    stages: list[Stage] = field(default_factory=list)
    runs: list[RunContext] = field(default_factory=list)


def replay(dockerfile: Dockerfile, bases: BaseLookup | None = None,
           images: Mapping[str, str] | None = None, build_args: Mapping[str, str] | None = None) -> Replay:
    """Replay the file in order: each stage's USER, ENV, ARG and WORKDIR, the accounts its RUNs
    create, and each RUN (and ONBUILD RUN) with what is in effect for it. `bases` finds what a
    base image sets when the tree holds the Dockerfile that builds it; `build_args` are the
    `--build-arg` values, which replace the default of every ARG of that name the file declares."""
    result = Replay(dockerfile)
    given = build_args or {}
    global_args: dict[str, str] = {}
    named: dict[str, Stage] = {}  # the first stage of each name, as `FROM <name>` finds it
    stage: Stage | None = None
    for instruction in dockerfile.instructions:
        keyword = instruction.keyword
        if keyword == "FROM":
            stage = _start_stage(instruction, result.stages, named, global_args, bases, images or {})
            result.stages.append(stage)
            if stage.name:
                named.setdefault(stage.name, stage)
            continue
        if stage is None:
            if keyword == "ARG":
                _declare_args(instruction, global_args, global_args, given)
            continue
        stage.instructions.append(instruction)
        variables = {**stage.args, **stage.env}
        if keyword == "ARG":
            _declare_args(instruction, stage.args, global_args, given)
            stage.origins.update((key, instruction) for key in stage.args if key not in stage.env
                                 and any(item.partition("=")[0] == key for item in instruction.value))
        elif keyword == "ENV":
            for key, value in _key_values(instruction):
                stage.env[key] = unquote(value, variables)
                variables[key] = stage.env[key]
                stage.origins[key] = instruction
        elif keyword == "USER" and instruction.value:
            spec = expand(instruction.value[0], variables)
            stage.user, _, group = spec.partition(":")
            stage.group = group or None
        elif keyword == "WORKDIR" and instruction.value:
            path = expand(instruction.value[0], variables)
            stage.workdir = path if path.startswith("/") else f"{stage.workdir.rstrip('/')}/{path}"
        elif stage.windows:
            continue  # RUN on Windows: no Linux cache paths, no POSIX shell
        elif instruction.unwrapped.keyword == "RUN":
            run = RunContext(instruction, stage, dict(variables), *resolve_user(stage), replay=result)
            result.runs.append(run)
            if keyword == "RUN" and run.mentions(ACCOUNT_COMMANDS):
                _learn_accounts(stage, list(run.commands), variables)
    return result


def run_contexts(dockerfile: Dockerfile) -> Iterator[RunContext]:
    """Each RUN (and ONBUILD RUN) of the file with its context."""
    return iter(replay(dockerfile).runs)


def _start_stage(instruction: Instruction, stages: list[Stage], named: Mapping[str, Stage],
                 global_args: dict[str, str], bases: BaseLookup | None, images: Mapping[str, str]) -> Stage:
    values = instruction.value
    image = expand(values[0], global_args) if values else ""
    name = values[2].lower() if len(values) >= 3 and values[1].upper() == "AS" else None
    parent = named.get(image.lower())
    if parent is None and image.isdigit() and int(image) < len(stages):
        parent = stages[int(image)]
    if parent is not None:
        return parent.derive(len(stages), name)
    base = bases(image) if bases is not None and image else None
    if base is not None:
        return replace(base.stage.derive(len(stages), name), parent=None, base_image=image, base_file=base.path,
                       base_runs=base.runs)
    known = images.get(image_name(image), image_name(image))
    stage = Stage(index=len(stages), name=name, base_image=image, windows=is_windows_image(image), image=known)
    _base_image_defaults(stage)
    return stage


def _declare_args(instruction: Instruction, into: dict[str, str], global_args: Mapping[str, str],
                  build_args: Mapping[str, str]) -> None:
    for item in instruction.value:
        key, sep, default = item.partition("=")
        if key in build_args:
            into[key] = build_args[key]
        elif sep:
            into[key] = unquote(default, {**global_args, **into})
        elif key in global_args:
            into[key] = global_args[key]
