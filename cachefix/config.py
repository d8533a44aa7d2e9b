"""Configuration: `[tool.cachefix]` in pyproject.toml, or the top level of `.cachefix.toml`.

Each linted file takes the first configuration found walking up from its folder (in one folder
`.cachefix.toml` wins over pyproject.toml; a pyproject.toml without `[tool.cachefix]` is passed
over), no further than the root of its repository (the first folder holding `.git`): what lies
above a checkout is not the project's, and may be anybody's. A file found so that another user
owns, in a folder anyone may write to, is not used. `--config FILE` makes one file apply to
everything. Patterns (`exclude`, `per-file-ignores`) are gitignore-style and relative to the
folder of the file they are in.

A pre-commit hook runs cachefix on every commit, so a TOML parser is imported only for a
file that mentions cachefix, and pathspec only for a configuration with patterns.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from cachefix.discovery import BadPattern, compile_patterns, warn_on_stderr
from cachefix.files import read_regular_file
from cachefix.limits import MAX_CONFIG_BYTES
from cachefix.model import Options, Severity
from cachefix.rules.registry import UnknownRule, all_entries, select_rules
from cachefix.shown import displayable

NAMES = (".cachefix.toml", "pyproject.toml")  # looked for in this order in each folder
RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}
FAIL_ON = ("info", "warning", "error", "never")
SHARING = ("shared", "private", "locked")
# Patterns are kept as text, compiled by re (which caches them) when first used: a run that reads no
# configuration file, a cached check's usual case, compiles none.
# Nothing that would end the --mount option list; a variable whole (`${TARGETARCH}-`), as the frontend expands it.
_MOUNT_ID = r"(?:[A-Za-z0-9_.:/-]|\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*(?![A-Za-z0-9_]))*"
_MANAGER_KEYS = frozenset({"id-prefix", "sharing", "id-scope"})
# tomllib takes time quadratic in a dotted key's length (`a.a.a...= 1`): no configuration nests deep.
MAX_KEY_DEPTH = 64
MAX_ENTRIES = 1000  # codes or patterns in one key
_TOML_STRING = r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\''
_DOTTED_KEY = r"[A-Za-z0-9_-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_-]+)*"
_TOML_POSITION = r" \(at (?:line (?P<line>[0-9]+), column [0-9]+|end of document)\)"
_KEYS = frozenset({"select", "ignore", "exclude", "per-file-ignores", "syntax", "fail-on", "images",
                   "remote"}) | _MANAGER_KEYS


class ConfigError(Exception):
    """A configuration file that cannot be used: one line naming the file (and the key)."""


def unknown_code(code: str) -> str:
    """Why `code` cannot be selected or ignored, for an error message."""
    from cachefix.suppressions import InvalidSuppression

    if code.upper() == InvalidSuppression.code:
        return f"`{displayable(code)}` (broken suppression comments) cannot be selected or ignored: fix the comment"
    return f"unknown rule code `{displayable(code)}` (see `cachefix rules`)"


class Config(NamedTuple):
    """What one configuration file asks for; `Config(root)` is the default. Its `syntax` is
    checked (`check_syntax`) where it is read: the file, or the command line."""

    root: Path  # the folder that relative patterns start from
    source: Path | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    syntax: str | None = None
    fail_on: str = "info"
    options: Options = Options()
    managers: tuple[tuple[str, Options], ...] = ()  # per-manager tables, over `options`
    # Private base images and the well-known image each is built like (`"corp/python" = "python"`).
    images: tuple[tuple[str, str], ...] = ()
    remote: str | None = None  # the download cache's shared tier (`cachefix fetch`), not used by lint

    def options_for(self, manager: str) -> Options:
        return dict(self.managers).get(manager, self.options)

    def fails(self, severity: Severity) -> bool:
        """Whether a finding of this severity makes `check` exit 1."""
        return self.fail_on != "never" and RANK[severity] >= RANK[Severity(self.fail_on)]

    def excludes(self, path: Path) -> bool:
        relative = self._relative(path)
        return relative is not None and bool(self.exclude) and _spec(self.exclude).match_file(relative)

    def ignored_codes(self, path: Path) -> tuple[str, ...]:
        """The per-file-ignores that apply to this file."""
        relative = self._relative(path)
        if relative is None:
            return ()
        return tuple(code for pattern, codes in self.per_file_ignores if _spec((pattern,)).match_file(relative)
                     for code in codes)

    def _relative(self, path: Path) -> str | None:
        relative = os.path.relpath(path.absolute(), self.root)
        outside = relative == os.pardir or relative.startswith(os.pardir + os.sep)  # not `..name/`
        return None if outside else Path(relative).as_posix()



@lru_cache(maxsize=256)
def _spec(patterns: tuple[str, ...]) -> Any:  # pathspec.GitIgnoreSpec, pathspec being imported only if needed
    """Patterns compiled once a run (a NamedTuple has no room for a cached property)."""
    return compile_patterns(list(patterns), "configuration")  # checked when the file was read


class Configurations:
    """The configuration for each file: found walking up from it, or the one given with --config."""

    def __init__(self, explicit: Path | None = None) -> None:
        self._explicit = load(explicit, required=True) if explicit is not None else None
        self._by_folder: dict[Path, Config] = {}

    def for_file(self, path: Path) -> Config:
        if self._explicit is not None:
            return self._explicit
        return self._for_folder(path.absolute().parent)

    def _for_folder(self, folder: Path) -> Config:
        """Walks up (a loop, not recursion: a tree may be thousands of folders deep) to the nearest
        configuration, remembering it for every folder passed on the way."""
        walked: list[Path] = []
        while (config := self._by_folder.get(folder)) is None:
            walked.append(folder)
            config = next((c for name in NAMES if (c := load(folder / name, required=False)) is not None), None)
            if config is None and (folder.parent == folder or os.path.lexists(folder / ".git")):
                config = Config(Path.cwd())
            if config is not None:
                break
            folder = folder.parent
        self._by_folder.update(dict.fromkeys(walked, config))
        return config


def load(path: Path, *, required: bool) -> Config | None:
    """The configuration in `path`; None when it has none and none was `required` of it."""
    data = _read(path, required=required)
    if data is None:
        return None
    in_pyproject = path.name == "pyproject.toml"
    if in_pyproject and b"cachefix" not in data and not required:
        return None  # the common case in a Python project: no need for a TOML parser
    document = _parse_toml(path, _decoded(path, data))
    tool = document.get("tool", {}) if in_pyproject else {}
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: `tool` must be a table ([tool.cachefix]), not {_toml_type(tool)}")
    table = tool.get("cachefix") if in_pyproject else document
    if table is None:
        if required:
            raise ConfigError(f"{path}: no [tool.cachefix] table")
        return None
    where = "[tool.cachefix]" if in_pyproject else "the top level"
    return _config(path, _Table(path, table, where))


def _read(path: Path, *, required: bool) -> bytes | None:
    """The file's bytes; None when a file looked for is not there (or is a folder), or not to be trusted.

    Only a regular file is read, and no more than the limit: a FIFO or a link to /dev/zero
    named pyproject.toml in a parent folder must not hang cachefix or fill its memory.
    """
    try:
        if not required and (os.path.isdir(path) or not _trusted(path)):
            return None  # checked before reading: what another user planted is never read
        data = read_regular_file(path, MAX_CONFIG_BYTES)
    except (FileNotFoundError, NotADirectoryError) as exc:
        if required:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return data


def _decoded(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # a BOM, as some Windows editors write
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def _trusted(path: Path) -> bool:
    """False (with a warning) for a file found by walking up that another user could have put
    there: in a folder anyone may write to (/tmp/.cachefix.toml above a checkout in /tmp), a
    file (or symbolic link) owned by neither you nor root."""
    try:
        owner = os.lstat(path).st_uid
        shared = bool(os.stat(path.parent).st_mode & stat.S_IWOTH)
    except FileNotFoundError:
        return True  # not there: reading it says so
    if not hasattr(os, "geteuid") or owner in (0, os.geteuid()) or not shared:
        return True
    warn_on_stderr(f"{path}: not used: owned by another user (uid {owner}) in a folder anyone may write to; "
                   "pass --config to use it")
    return False


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    deepest = max((m.group().count(".") for m in re.finditer(_DOTTED_KEY, re.sub(_TOML_STRING, "s", text))), default=0)
    if deepest > MAX_KEY_DEPTH:
        raise ConfigError(f"{path}: not valid TOML: a dotted key {deepest + 1} levels deep "
                          f"(the limit is {MAX_KEY_DEPTH + 1})")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(_TOML_POSITION, str(exc))
        where = f"{path}:{at['line'] or max(1, len(text.splitlines()))}" if at else str(path)  # or the end
        raise ConfigError(f"{where}: not valid TOML: {re.sub(_TOML_POSITION, '', str(exc))}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None


def _toml_type(value: object) -> str:
    """The TOML name of a parsed value's type, for error messages."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array", dict: "a table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), "a date or time")


class _Table(NamedTuple):
    """A TOML table being read, for error messages that name the file and the key."""

    path: Path
    data: Any
    where: str

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: `{displayable(key)}` in {self.where} {problem}")

    def check_keys(self, allowed: frozenset[str]) -> None:
        if not isinstance(self.data, dict):
            raise ConfigError(f"{self.path}: {self.where} must be a table, not {_toml_type(self.data)}")
        unknown = [key for key in self.data if key not in allowed]
        if unknown:
            import difflib  # only for the mistake

            close = difflib.get_close_matches(unknown[0], sorted(allowed), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close and len(unknown) == 1 else ""
            names = ", ".join(f"`{displayable(key)}`" for key in unknown[:5])
            names += f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            plural = "s" if len(unknown) > 1 else ""
            raise ConfigError(f"{self.path}: unknown key{plural} {names} in {self.where}{hint}")

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of strings, not {_described(value)}")
        self.at_most(key, value)
        return tuple(value)

    def at_most(self, key: str, entries: list[str]) -> None:
        """Each code and pattern costs time on every file; no project needs more than a few dozen."""
        if len(entries) > MAX_ENTRIES:
            raise self.fail(key, f"has {len(entries)} entries; the limit is {MAX_ENTRIES}")

    def codes(self, key: str) -> tuple[str, ...] | None:
        codes = self.strings(key)
        for code in codes or ():
            try:
                if not code.strip():
                    raise UnknownRule(code)  # "" would be the prefix of every code
                select_rules([code], None)
            except UnknownRule:
                raise ConfigError(f"{self.path}: `{displayable(key)}` in {self.where}: {unknown_code(code)}") from None
        return codes

    def patterns(self, key: str, patterns: Iterable[str]) -> None:
        """A pattern git would reject fails here, when the file is read, not later in the middle of a run."""
        patterns = list(patterns)
        self.at_most(key, patterns)
        if patterns:
            try:
                compile_patterns(patterns, f"{self.path}: `{key}` in {self.where}")
            except BadPattern as exc:
                raise ConfigError(str(exc)) from None

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.data.get(key)
        if value is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {_described(value)}")
        return value

    def images(self) -> tuple[tuple[str, str], ...]:
        """`images = {"registry.example/python-base" = "python"}`: each a base image name and the
        well-known image it is built like, so rules know its accounts and defaults."""
        value = self.data.get("images", {})
        if not isinstance(value, dict):
            raise self.fail("images", f"must be a table of image = \"well-known image\", not {_described(value)}")
        from cachefix.rewriter.context import image_name  # only for a configuration with images

        for name, like in value.items():
            if not isinstance(like, str) or not _is_image_reference(like) or not _is_image_reference(name):
                raise self.fail("images", f"`{displayable(name)} = {_described(like)}` must map an image name to an "
                                          "image name (\"corp/python-base\" = \"python\")")
        return tuple((image_name(name), image_name(like)) for name, like in value.items())

    def remote(self) -> str | None:
        value = self.data.get("remote")
        if value is not None and not isinstance(value, str):
            raise self.fail("remote", f'must be a string such as "s3://bucket/prefix", not {_described(value)}')
        return value

    def options(self, default: Options) -> Options:
        from cachefix.rules.id_scope import ID_SCOPES  # only for a configuration file

        prefix = self.data.get("id-prefix", default.id_prefix)
        if not isinstance(prefix, str) or not re.fullmatch(_MOUNT_ID, prefix):
            raise self.fail("id-prefix", "must be a string of letters, digits, . _ - : / and whole variables "
                                         "such as ${TARGETARCH} (no commas or spaces), "
                                         f"not {_described(prefix)}")
        return Options(id_prefix=prefix, sharing=self.choice("sharing", SHARING) or default.sharing,
                       id_scope=self.choice("id-scope", ID_SCOPES) or default.id_scope)


def _config(path: Path, table: _Table) -> Config:
    managers = sorted({rule.manager for rule in all_entries()} - {"syntax"})
    table.check_keys(_KEYS | frozenset(managers))
    syntax = table.data.get("syntax")
    if syntax is not None:
        try:
            check_syntax(syntax)
        except ValueError as exc:
            raise table.fail("syntax", str(exc)) from None
    per_file = table.data.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise table.fail("per-file-ignores", f"must be a table of pattern = [codes], not {_described(per_file)}")
    per_file_table = _Table(path, per_file, f"{table.where}'s per-file-ignores")
    table.patterns("per-file-ignores", per_file)
    table.patterns("exclude", table.strings("exclude") or ())
    options = table.options(Options())
    per_manager = []
    for manager in managers:
        if manager in table.data:
            sub = _Table(path, table.data[manager], f"the [{manager}] table of {table.where}")
            sub.check_keys(_MANAGER_KEYS)
            per_manager.append((manager, sub.options(options)))
    return Config(
        root=path.absolute().parent,
        source=path,
        select=table.codes("select"),
        ignore=table.codes("ignore") or (),
        exclude=table.strings("exclude") or (),
        per_file_ignores=tuple((pattern, per_file_table.codes(pattern) or ()) for pattern in per_file),
        syntax=syntax,
        fail_on=table.choice("fail-on", FAIL_ON) or "info",
        options=options,
        managers=tuple(per_manager),
        images=table.images(),
        remote=table.remote(),
    )


def check_syntax(value: object) -> None:
    """ValueError unless `value` can follow `# syntax=`: an image reference, or "none" for no directive.

    The value is written into Dockerfiles as it is, so anything else (a newline above all)
    would let a configuration file in some parent folder add instructions to them.
    """
    if not isinstance(value, str) or (value != "none" and not _is_image_reference(value)):
        raise ValueError(f"must be an image reference such as \"docker/dockerfile:1.4\", or \"none\"; "
                         f"not {_described(value)}")


def _is_image_reference(value: str) -> bool:
    from cachefix.rewriter.syntax import is_image_reference  # the Dockerfile parser comes with it: only when used

    return is_image_reference(value)


def _described(value: object) -> str:
    """A value for an error message: a string quoted and cut short, anything else by its TOML type."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return _toml_type(value)
