"""Every rule cachefix knows: the modules of `cachefix.rules.builtin` and plugins from the
`cachefix.rules` entry-point group.

A plugin is a `cachefix.rules.rule.RunRule` (or `FileRule`) subclass published by another
package under `[project.entry-points."cachefix.rules"]`; it is loaded only when rules are listed
or run. Codes must be unique, plugins included: two rules with one code would make `--select`,
`ignore[...]` and `explain` ambiguous.

A built-in rule module is imported only when a file needs it: `cachefix.rules.catalog` (written
by `scripts/rule_catalog.py`, checked by a test) lists each rule's code, manager and the words
one of which a RUN must mention for the rule to find anything. A module missing from the
catalog is imported every time, so a new rule works before the catalog is written again.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, NamedTuple

from cachefix.model import Options
from cachefix.rules import builtin, catalog

if TYPE_CHECKING:  # the rule layer imports the rewriter: not needed to select rules, nor on a cache hit
    from cachefix.model import Finding
    from cachefix.rules.rule import FileScope, Rule


class UnknownRule(KeyError):
    """A code given to --select, --ignore, explain or a suppression that no rule has."""


class DuplicateCode(ValueError):
    """Two rules, built in or plugins, claim one code."""


class RuleEntry(NamedTuple):
    """What selecting a rule needs, known without importing its module."""

    code: str
    name: str
    manager: str
    reference: str  # `module:Class`
    # A RUN must mention one of these words (as `RunContext.mentions` reads it) for the rule to
    # find anything in it; None: the rule may find something in any file.
    triggers: tuple[str, ...] | None

    def load(self) -> type[Rule]:
        return _load(self.reference)  # type: ignore[return-value]


def entry_of(rule: type[Rule]) -> RuleEntry:
    """A loaded rule's entry. Its words are kept only where `RunRule.lint` is what decides,
    run by run, that a RUN mentioning none of them gets no finding."""
    from cachefix.rules.rule import RunRule

    triggers = (tuple(rule.triggers) if issubclass(rule, RunRule) and rule.triggers and rule.lint is RunRule.lint
                and rule.silenceable else None)
    return RuleEntry(rule.code, rule.name, rule.manager, f"{rule.__module__}:{rule.__qualname__}", triggers)


class DeferredRule:
    """A selected rule whose module is imported only for a file where one of its RUNs mentions
    one of the rule's words: most files need a few of the package managers cachefix knows. The
    engine asks it what it asks a rule: `silenceable` and `lint`."""

    def __init__(self, entry: RuleEntry, options: Options | None = None) -> None:
        self.entry = entry
        self.options = options or Options()
        self.code, self.manager = entry.code, entry.manager

    @cached_property
    def rule(self) -> Rule:
        """The rule itself, its module imported."""
        return self.entry.load()(self.options)

    @property
    def silenceable(self) -> bool:
        return self.entry.triggers is not None or self.rule.silenceable

    def lint(self, scope: FileScope) -> Iterable[Finding]:
        words = self.entry.triggers
        if words is not None and not any(run.mentions(words) for run in scope.runs):
            return ()
        return self.rule.lint(scope)


def builtin_modules() -> list[str]:
    """The names of the modules in `cachefix.rules.builtin`, without importing them."""
    names: set[str] = set()
    for folder in builtin.__path__:
        try:
            names.update(name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py")
        except OSError:
            continue
    return sorted(names)


def builtin_rules(modules: Iterable[str]) -> list[type[Rule]]:
    """The rule classes defined in these modules of `cachefix.rules.builtin` (imported)."""
    modules = list(modules)
    if not modules:
        return []
    from cachefix.rules.rule import Rule

    found: list[type[Rule]] = []
    for name in modules:
        module = importlib.import_module(f"{builtin.__name__}.{name}")
        found.extend(value for value in vars(module).values() if isinstance(value, type) and issubclass(value, Rule)
                     and value.__module__ == module.__name__ and value.code)
    return found


def _plugin_entry_points() -> list[str]:
    """`module:attr` of every `cachefix.rules` entry point of the installed distributions.

    importlib.metadata would do this, but importing it costs more than the whole lint of a
    small file (it pulls in the email parser); pre-commit runs cachefix on every commit, so
    this reads the `entry_points.txt` files of the dist-info folders on sys.path directly.
    """
    found: list[str] = []
    for folder in sys.path:
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                if not entry.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as handle:
                        text = handle.read()
                except OSError:
                    continue
                if "[cachefix.rules]" in text:
                    found.extend(_section(text, "cachefix.rules"))
    return found


def _section(text: str, name: str) -> list[str]:
    values, inside = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{name}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            values.append(line.split("=", 1)[1].strip())
    return values


def _load(reference: str) -> object:
    module, _, attribute = reference.partition(":")
    value: object = importlib.import_module(module.strip())
    for part in attribute.strip().split(".") if attribute.strip() else ():
        value = getattr(value, part)
    return value


@lru_cache(maxsize=1)
def all_entries() -> tuple[RuleEntry, ...]:
    """Every rule, built in or plugin, by code; plugins are imported (their words are in their classes)."""
    catalogued = [RuleEntry(*row) for row in catalog.BUILTIN_RULES]
    listed = {entry.reference.partition(":")[0].rpartition(".")[2] for entry in catalogued}
    uncatalogued = builtin_rules(name for name in builtin_modules() if name not in listed)
    plugins = _plugin_entries(_load(reference) for reference in dict.fromkeys(_plugin_entry_points()))
    found = [*catalogued, *(entry_of(rule) for rule in uncatalogued), *plugins]
    codes: dict[str, RuleEntry] = {}
    for entry in found:
        other = codes.setdefault(entry.code, entry)
        if other is not entry:
            raise DuplicateCode(f"rule code {entry.code} is claimed by both {_origin(other)} and {_origin(entry)}")
    return tuple(sorted(found, key=lambda e: e.code))


def plugin_modules() -> list[str]:
    """The modules the plugins' rules are defined in (what a cached outcome also depends on)."""
    return sorted({entry.reference.partition(":")[0] for entry in all_entries()
                   if not entry.reference.startswith(f"{builtin.__name__}.")})


def _plugin_entries(loaded: Iterable[object]) -> list[RuleEntry]:
    """The entries of the rule classes plugins published: never deferred, they are imported already."""
    loaded = list(loaded)
    if not loaded:
        return []
    from cachefix.rules.rule import Rule

    return [entry_of(p)._replace(triggers=None) for p in loaded if isinstance(p, type) and issubclass(p, Rule)]


def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class, imported: for listing and explaining rules, not for linting."""
    return tuple(entry.load() for entry in all_entries())


def _origin(entry: RuleEntry) -> str:
    return entry.reference.replace(":", ".")


def select_rules(select: Sequence[str] | None, ignore: Sequence[str] | None) -> list[RuleEntry]:
    """Rules chosen by codes, code prefixes (`CF1` selects every Python rule) or manager names."""
    def matches(entry: RuleEntry, patterns: Sequence[str]) -> bool:
        return any(entry.code.startswith(p.upper()) or entry.manager == p.lower() for p in patterns)

    for pattern in [*(select or []), *(ignore or [])]:
        if not any(matches(e, [pattern]) for e in all_entries()):
            raise UnknownRule(pattern)
    chosen = [e for e in all_entries() if not select or matches(e, select)]
    return [e for e in chosen if not ignore or not matches(e, ignore)]
