"""Configuration: `[tool.cachefix]` in pyproject.toml, or the top level of `.cachefix.toml`.

Each linted file takes the first configuration found walking up from its folder (in one folder
`.cachefix.toml` wins over pyproject.toml; a pyproject.toml without `[tool.cachefix]` is
passed over); `--config FILE` makes one file apply to everything. Patterns (`exclude`,
`per-file-ignores`) are gitignore-style and relative to the folder of the file they are in.

A pre-commit hook runs cachefix on every commit, so a TOML parser is imported only for a
file that mentions cachefix, and pathspec only for a configuration with patterns.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cachefix.model import Severity
from cachefix.rules.base import Options
from cachefix.rules.registry import UnknownRule, all_rules, select_rules
from cachefix.suppressions import InvalidSuppression

NAMES = (".cachefix.toml", "pyproject.toml")  # looked for in this order in each folder
RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}
FAIL_ON = ("info", "warning", "error", "never")
SHARING = ("shared", "private", "locked")
_MOUNT_ID = re.compile(r"[A-Za-z0-9_.:/${}-]*")  # nothing that would end the --mount option list
_MANAGER_KEYS = frozenset({"id-prefix", "sharing"})
_KEYS = frozenset({"select", "ignore", "exclude", "per-file-ignores", "syntax", "fail-on"}) | _MANAGER_KEYS


class ConfigError(Exception):
    """A configuration file that cannot be used: one line naming the file (and the key)."""


def unknown_code(code: str) -> str:
    """Why `code` cannot be selected or ignored, for an error message."""
    if code.upper() == InvalidSuppression.code:
        return f"`{code}` (broken suppression comments) cannot be selected or ignored: fix the comment"
    return f"unknown rule code `{code}` (see `cachefix rules`)"


@dataclass(frozen=True)
class Config:
    """What one configuration file asks for; `Config(root)` is the default."""

    root: Path  # the folder that relative patterns start from
    source: Path | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    syntax: str | None = None
    fail_on: str = "info"
    options: Options = field(default_factory=Options)  # top-level id-prefix and sharing
    managers: tuple[tuple[str, Options], ...] = ()  # per-manager tables, over `options`

    def options_for(self, manager: str) -> Options:
        return dict(self.managers).get(manager, self.options)

    def fails(self, severity: Severity) -> bool:
        """Whether a finding of this severity makes `check` exit 1."""
        return self.fail_on != "never" and RANK[severity] >= RANK[Severity(self.fail_on)]

    def excludes(self, path: Path) -> bool:
        relative = self._relative(path)
        return relative is not None and self._exclude_spec is not None and self._exclude_spec.match_file(relative)

    def ignored_codes(self, path: Path) -> tuple[str, ...]:
        """The per-file-ignores that apply to this file."""
        relative = self._relative(path)
        if relative is None:
            return ()
        return tuple(code for spec, codes in self._per_file_specs if spec.match_file(relative) for code in codes)

    def _relative(self, path: Path) -> str | None:
        relative = os.path.relpath(path.absolute(), self.root)
        return None if relative.startswith("..") else Path(relative).as_posix()

    @cached_property
    def _exclude_spec(self) -> Any:  # pathspec.GitIgnoreSpec | None, pathspec being imported only if needed
        return _spec(self.exclude) if self.exclude else None

    @cached_property
    def _per_file_specs(self) -> list[tuple[Any, tuple[str, ...]]]:
        return [(_spec([pattern]), codes) for pattern, codes in self.per_file_ignores]


def _spec(patterns: Iterable[str]) -> Any:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(patterns)


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
        if folder in self._by_folder:
            return self._by_folder[folder]
        config = next((c for name in NAMES if (c := load(folder / name, required=False)) is not None), None)
        if config is None:
            config = Config(Path.cwd()) if folder.parent == folder else self._for_folder(folder.parent)
        self._by_folder[folder] = config
        return config


def load(path: Path, *, required: bool) -> Config | None:
    """The configuration in `path`; None when it has none and none was `required` of it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError) as exc:
        if required:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    in_pyproject = path.name == "pyproject.toml"
    if in_pyproject and "cachefix" not in text and not required:
        return None  # the common case in a Python project: no need for a TOML parser
    document = _parse_toml(path, text)
    table = document.get("tool", {}).get("cachefix") if in_pyproject else document
    if table is None:
        if required:
            raise ConfigError(f"{path}: no [tool.cachefix] table")
        return None
    where = "[tool.cachefix]" if in_pyproject else "the top level"
    return _config(path, _Table(path, table, where))


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


@dataclass
class _Table:
    """A TOML table being read, for error messages that name the file and the key."""

    path: Path
    data: Any
    where: str

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: `{key}` in {self.where} {problem}")

    def check_keys(self, allowed: frozenset[str]) -> None:
        if not isinstance(self.data, dict):
            raise ConfigError(f"{self.path}: {self.where} must be a table")
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                raise ConfigError(f"{self.path}: unknown key `{key}` in {self.where}{hint}")

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def codes(self, key: str, value: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
        codes = self.strings(key) if value is None else value
        for code in codes or ():
            try:
                select_rules([code], None)
            except UnknownRule:
                raise ConfigError(f"{self.path}: `{key}` in {self.where}: {unknown_code(code)}") from None
        return codes

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.data.get(key)
        if value is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}")
        return value

    def options(self, default: Options) -> Options:
        prefix = self.data.get("id-prefix", default.id_prefix)
        if not isinstance(prefix, str) or not _MOUNT_ID.fullmatch(prefix):
            raise self.fail("id-prefix", "must be a string of letters, digits and . _ - : / (no commas or spaces)")
        return Options(id_prefix=prefix, sharing=self.choice("sharing", SHARING) or default.sharing)


def _config(path: Path, table: _Table) -> Config:
    managers = sorted({rule.manager for rule in all_rules()} - {"syntax"})
    table.check_keys(_KEYS | frozenset(managers))
    syntax = table.data.get("syntax")
    if syntax is not None and not isinstance(syntax, str):
        raise table.fail("syntax", "must be a string such as \"docker/dockerfile:1.4\" or \"none\"")
    per_file = table.data.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise table.fail("per-file-ignores", "must be a table of pattern = [codes]")
    per_file_table = _Table(path, per_file, f"{table.where}'s per-file-ignores")
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
    )
