"""Lint and fix one Dockerfile's text: run the rules over every RUN, apply their edits.

The engine is where rules meet the rewriter. It knows neither package managers (rules do)
nor files on disk (the runner does), so it is easy to test on strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


def lint(dockerfile: Dockerfile, settings: Settings) -> list[Finding]:
    """Every finding of the selected rules, in file order."""
    run_rules = [r for r in settings.rules if not isinstance(r, SyntaxRule)]
    findings: list[Finding] = []
    for run in run_contexts(dockerfile):
        for rule in run_rules:
            findings.extend(rule.check(run, dockerfile))
    for rule in settings.rules:
        if isinstance(rule, SyntaxRule):
            findings.extend(rule.check_file(dockerfile, settings.syntax))
    if any(_adds_mount(f) for f in findings):
        findings = _with_directive(dockerfile, findings, settings.syntax)
    return sorted(findings, key=lambda f: (f.start.line, f.start.column, f.code))


def _adds_mount(finding: Finding) -> bool:
    return any("--mount=type=cache" in e.replacement for e in finding.edits)


def _with_directive(dockerfile: Dockerfile, findings: list[Finding], syntax: str | None) -> list[Finding]:
    """The first mount fix also writes (or raises) `# syntax=`, unless a CF001 finding does."""
    if any(f.code == SyntaxRule.code for f in findings):
        return findings
    edit = directive_edit(dockerfile, syntax, adds_mounts=True)
    if edit is None:
        return findings
    out, done = [], False
    for finding in findings:
        if not done and _adds_mount(finding):
            finding = Finding(finding.code, finding.manager, finding.message, finding.start, finding.end,
                              finding.severity, (*finding.edits, edit))
            done = True
        out.append(finding)
    return out


def fix(text: str, settings: Settings) -> Outcome:
    """Apply every fix that does not collide with another; re-lint to see what is left.

    Raises DockerfileSyntaxError for text BuildKit would reject: such a file is never changed.
    """
    dockerfile = parse(text)
    findings = lint(dockerfile, settings)
    accepted: list[Edit] = []
    for finding in findings:
        if not finding.edits:
            continue
        try:
            apply(text, [*accepted, *finding.edits])
        except EditConflict:
            continue  # left for a later run; the re-lint below reports it
        accepted.extend(finding.edits)
    fixed = apply(text, accepted) if accepted else text
    if fixed == text:
        return Outcome(findings, text, findings)
    try:
        remaining = lint(parse(fixed), settings)
    except DockerfileSyntaxError as exc:
        raise BrokenRewrite(f"the fix would make the file invalid ({exc}); left unchanged") from exc
    return Outcome(findings, fixed, remaining)
