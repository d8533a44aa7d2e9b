"""Lint and fix one Dockerfile's text: run the rules over every RUN, apply their edits.

The engine is where rules meet the rewriter. It knows neither package managers (rules do)
nor files on disk (the runner does), so it is easy to test on strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from cachefix.model import Edit, Finding
from cachefix.rewriter.context import run_contexts
from cachefix.rewriter.dockerfile import Dockerfile, DockerfileSyntaxError, parse
from cachefix.rewriter.edits import EditConflict, apply
from cachefix.rewriter.syntax import directive_edit
from cachefix.rules.base import Rule
from cachefix.rules.syntax import SyntaxRule


class BrokenRewrite(Exception):
    """A fix that would turn a valid file into an invalid one: a cachefix bug, never written."""


@dataclass(frozen=True)
class Settings:
    """What a run was asked to do, independent of any one file."""

    rules: Sequence[Rule]
    syntax: str | None = None  # None: the default frontend; "none": never write one


@dataclass
class Outcome:
    """Findings on the original text, the fixed text, and what the fixed text still has."""

    findings: list[Finding]
    fixed: str
    remaining: list[Finding] = field(default_factory=list)


def _rule_findings(dockerfile: Dockerfile, settings: Settings) -> list[Finding]:
    run_rules = [r for r in settings.rules if not isinstance(r, SyntaxRule)]
    findings: list[Finding] = []
    for run in run_contexts(dockerfile):
        for rule in run_rules:
            if not rule.triggers or run.mentions(rule.triggers):
                findings.extend(rule.check(run, dockerfile))
    for rule in settings.rules:
        if isinstance(rule, SyntaxRule):
            findings.extend(rule.check_file(dockerfile, settings.syntax))
    return sorted(findings, key=lambda f: (f.start.line, f.start.column, f.code))


def lint(dockerfile: Dockerfile, settings: Settings) -> list[Finding]:
    """Every finding of the selected rules, in file order.

    The `# syntax=` edit a mount fix needs is shown as part of the first mount finding, so a
    finding's edits (in JSON and SARIF output) are a complete fix on their own.
    """
    return _with_directive(dockerfile, _rule_findings(dockerfile, settings), settings)


def _with_directive(dockerfile: Dockerfile, findings: list[Finding], settings: Settings) -> list[Finding]:
    findings = list(findings)
    edit = _directive_for(dockerfile, findings, settings)
    if edit is None:
        return findings
    first = next(i for i, f in enumerate(findings) if _adds_mount(f.edits))
    findings[first] = replace(findings[first], edits=(*findings[first].edits, edit))
    return findings


def _adds_mount(edits: Iterable[Edit]) -> bool:
    return any("--mount=type=cache" in e.replacement for e in edits)


def _directive_for(dockerfile: Dockerfile, fixes: Iterable[Finding], settings: Settings) -> Edit | None:
    """The `# syntax=` edit needed once these fixes add mounts, unless a CF001 fix is among them."""
    fixes = list(fixes)
    if not any(_adds_mount(f.edits) for f in fixes) or any(f.code == SyntaxRule.code for f in fixes):
        return None
    return directive_edit(dockerfile, settings.syntax, adds_mounts=True)


def check(text: str, settings: Settings) -> list[Finding]:
    """Findings only (what `cachefix check` needs): no edits applied, no second pass."""
    return lint(parse(text), settings)


def fix(text: str, settings: Settings) -> Outcome:
    """Apply every fix that does not collide with another; re-lint to see what is left.

    Raises DockerfileSyntaxError for text BuildKit would reject: such a file is never changed.
    """
    dockerfile = parse(text)
    raw = _rule_findings(dockerfile, settings)
    accepted: list[Edit] = []
    applied: list[Finding] = []
    for finding in raw:
        if not finding.edits:
            continue
        try:
            apply(text, [*accepted, *finding.edits])
        except EditConflict:
            continue  # left for a later run; the re-lint below reports it
        accepted.extend(finding.edits)
        applied.append(finding)
    directive = _directive_for(dockerfile, applied, settings)
    if directive is not None:
        accepted.append(directive)
    findings = _with_directive(dockerfile, raw, settings)
    fixed = apply(text, accepted) if accepted else text
    if fixed == text:
        return Outcome(findings, text, findings)
    try:
        remaining = lint(parse(fixed), settings)
    except DockerfileSyntaxError as exc:
        raise BrokenRewrite(f"the fix would make the file invalid ({exc}); left unchanged") from exc
    return Outcome(findings, fixed, remaining)
