"""Compose files: which Dockerfiles a `compose.yaml` builds, with which build arguments and target.

Read as Docker Compose reads the `build:` of each service (compose-spec, build.md): a string is
the context; a mapping has `context` (default `.`, relative to the compose file's folder),
`dockerfile` (relative to the context), `dockerfile_inline`, `args` (a mapping or a list of
`KEY=VALUE`; a key without a value takes the variable from the environment, and is left out when
that is unset) and `target`. Values are interpolated as Compose does: `${VAR}`, `$VAR`,
`${VAR:-default}`, `${VAR-default}`, `$$` for a dollar, the shell environment first, then the
`.env` file beside the compose file. Other forms (`${VAR:?error}`, `${VAR:+alt}`, nested defaults)
are reported, not guessed. `extends`, `include` and override files are not merged: a service
whose build may come from them is named in a warning.

PyYAML is imported only when a compose file is read. Scalars stay the strings they were written
as (Compose reads YAML 1.2, where `3.10` is not the number 3.1 and `yes` is not a boolean).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from cachefix.files import read_regular_file

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_NAMES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml",
                  "docker-compose.override.yml")
YAML_SUFFIXES = (".yaml", ".yml")
COMPOSE_LIMIT = 4 * 1024 * 1024
_NULL, _MERGE = "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"
# Patterns as text, compiled by re when first used: most runs read no compose file.
_REMOTE_CONTEXT = r"^(https?://|git@|git://|ssh://|github\.com/)"
# `$$`, `${NAME}`, `${NAME<op>word}` (word without `}` or `$`), `$NAME`; anything else after a `$` is reported.
_VARIABLE = (r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])"
             r"(?P<word>[^}$]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")

Warn = Callable[[str], None]


class ComposeError(ValueError):
    """A compose file cachefix cannot read (bad YAML, no service builds, a variable it cannot
    resolve): one line, naming the file."""


class ServiceBuild(NamedTuple):
    """One service's image build: the Dockerfile, the build arguments and the stage to build."""

    service: str
    dockerfile: Path
    build_args: Mapping[str, str] = MappingProxyType({})
    target: str | None = None


def looks_like_compose(path: Path) -> bool:
    """A compose file by its name, or a YAML file named on the command line whose top level has `services:`."""
    if path.name in COMPOSE_NAMES:
        return True
    if path.suffix.lower() not in YAML_SUFFIXES:
        return False
    try:
        data = _load(path)
    except ComposeError:
        return False
    return isinstance(data, dict) and "services" in data


def read_compose(path: Path, environ: Mapping[str, str] | None = None,
                 warn: Warn | None = None) -> list[ServiceBuild]:
    """The builds of every service that has one, in file order; ComposeError when there is none or
    one cannot be read. `warn` hears of services skipped (an inline or remote Dockerfile)."""
    data = _load(path)
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ComposeError(f"{path}: not a compose file (no top-level `services:` mapping)")
    variables = _Variables(path, os.environ if environ is None else environ)
    folder = path.parent
    if "include" in data and warn is not None:
        warn(f"{path}: `include` is not read: name the compose files it includes too")
    builds: list[ServiceBuild] = []
    skipped = False
    for name, service in data["services"].items():
        if not isinstance(service, dict):
            raise ComposeError(f"{path}: service {name!r} is not a mapping")
        where = f"{path}: service {name!r}"
        if "build" not in service:
            if "extends" in service and warn is not None:
                warn(f"{where} extends another service; a build it inherits is not read")
            continue
        build = _service_build(str(name), service["build"], folder, variables, where)
        if isinstance(build, str):
            skipped = True
            if warn is not None:
                warn(build)
        else:
            builds.append(build)
    if not builds and not skipped:
        raise ComposeError(f"{path}: no service has a `build:` section, so there is no Dockerfile to read")
    for override in OVERRIDE_NAMES:
        if path.name in COMPOSE_NAMES and (folder / override).exists() and warn is not None:
            warn(f"{folder / override} is not merged: name the Dockerfiles it builds, or merge it with "
                 "`docker compose config`")
    return builds


def with_compose_builds(paths: Sequence[str], warn: Warn) -> list[str]:
    """PATHS with each compose file replaced by the Dockerfiles its services build (each once), so
    that `cachefix check compose.yaml` checks them; ComposeError for a compose file that cannot be read."""
    result: list[str] = []
    for given in paths:
        path = Path(given)
        if given and path.is_file() and looks_like_compose(path):
            result.extend(dict.fromkeys(str(build.dockerfile) for build in read_compose(path, warn=warn)))
        else:
            result.append(given)
    return result


def _service_build(name: str, build: Any, folder: Path, variables: _Variables, where: str) -> ServiceBuild | str:
    """The service's build, or why it is skipped (a string)."""
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        raise ComposeError(f"{where}: `build` must be a path or a mapping")
    if "dockerfile_inline" in build:
        return f"{where}: its Dockerfile is inline (`dockerfile_inline`), which cachefix does not read"
    context = variables.resolve(_text(build.get("context", "."), where, "context"), where)
    if re.match(_REMOTE_CONTEXT, context):
        return f"{where}: its build context is remote ({context}), which cachefix does not read"
    dockerfile = variables.resolve(_text(build.get("dockerfile", "Dockerfile"), where, "dockerfile"), where)
    target = build.get("target")
    path = (folder / context / dockerfile) if not os.path.isabs(dockerfile) else Path(dockerfile)
    if not path.is_file():
        raise ComposeError(f"{where}: its Dockerfile {path} is not a file")
    return ServiceBuild(
        service=name,
        dockerfile=path,
        build_args=_args(build.get("args"), variables, where),
        target=None if target is None else variables.resolve(_text(target, where, "target"), where),
    )


def _args(args: Any, variables: _Variables, where: str) -> dict[str, str]:
    if args is None:
        return {}
    if isinstance(args, list):
        pairs = [(item.partition("=")[0], item.partition("=")[2] if "=" in item else None)
                 for item in (_text(item, where, "args") for item in args)]
    elif isinstance(args, dict):
        pairs = [(str(key), None if value is None else _text(value, where, f"args.{key}"))
                 for key, value in args.items()]
    else:
        raise ComposeError(f"{where}: `args` must be a mapping or a list of KEY=VALUE")
    result: dict[str, str] = {}
    for key, value in pairs:
        if value is not None:
            result[key] = variables.resolve(value, where)
        elif (from_environment := variables.lookup(key)) is not None:
            result[key] = from_environment
    return result


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise ComposeError(f"{where}: `{key}` must be a string")
    return value


class _Variables:
    """Compose's interpolation for the values cachefix reads: the environment, then `.env`."""

    def __init__(self, compose_file: Path, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.dotenv_file = compose_file.parent / ".env"
        self._dotenv: dict[str, str] | None = None

    def lookup(self, name: str) -> str | None:
        if name in self.environ:
            return self.environ[name]
        return self._dotenv_values().get(name)

    def _dotenv_values(self) -> dict[str, str]:
        if self._dotenv is None:
            self._dotenv = {}
            if self.dotenv_file.is_file():
                from dotenv import dotenv_values  # only for a compose project that has a .env

                self._dotenv = {k: v for k, v in dotenv_values(self.dotenv_file).items() if v is not None}
        return self._dotenv

    def resolve(self, text: str, where: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            if match.group("dollar"):
                return "$"
            name = match.group("braced") or match.group("plain")
            value, op = self.lookup(name), match.group("op")
            if op in (":-", "-"):
                unset = value is None or (op == ":-" and value == "")
                return match.group("word") if unset else value
            if op is not None:
                raise ComposeError(f"{where}: `{match.group(0)}` is not supported; cachefix reads "
                                   "${VAR}, ${VAR:-default} and ${VAR-default}")
            if value is None:
                raise ComposeError(f"{where}: ${name} is not set (in the environment or {self.dotenv_file}); "
                                   f"set it, or write ${{{name}:-default}}")
            return value

        if "$" in re.sub(_VARIABLE, "", text):  # `${A:-${B}}`, `${1}`, a lone `$`
            raise ComposeError(f"{where}: cannot read the variable in {text!r}; cachefix reads "
                               "${VAR}, ${VAR:-default} and ${VAR-default}")
        return re.sub(_VARIABLE, substitute, text)


def _load(path: Path) -> Any:
    import yaml  # only when a compose file is read

    try:
        text = read_regular_file(path, COMPOSE_LIMIT).decode("utf-8")
    except FileNotFoundError:
        raise ComposeError(f"{path}: no such file or folder") from None
    except OSError as exc:
        raise ComposeError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ComposeError(f"{path}: not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_string_loader())  # a SafeLoader: no object tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ComposeError(f"{path}:{line} invalid YAML: {problem}") from None


@functools.cache
def _string_loader() -> type:
    """A safe YAML loader that resolves only nulls and merge keys (`<<: *defaults`): every other
    scalar stays the text it was written as."""
    import yaml

    class StringLoader(yaml.SafeLoader):
        pass

    StringLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag in (_NULL, _MERGE)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return StringLoader
