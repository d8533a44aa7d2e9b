"""Lint and fix one Dockerfile's text: run the rules over every RUN, apply their edits.

The engine is where rules meet the rewriter and suppression comments. It knows neither
package managers (rules do) nor files on disk or configuration (the runner does), so it is
easy to test on strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cachefix.limits import check_parsed, check_text
from cachefix.model import Edit, Finding, Outcome, Settings
from cachefix.rewriter.context import BaseLookup, replay
from cachefix.rewriter.dockerfile import Dockerfile, DockerfileSyntaxError, parse
from cachefix.rewriter.edits import EditConflict, apply
from cachefix.rewriter.guard import unintended_change
from cachefix.rewriter.mounts import parse_mount
from cachefix.rewriter.syntax import directive_edit
from cachefix.rules.builtin.syntax import SyntaxRule
from cachefix.rules.rule import FileScope
from cachefix.suppressions import InvalidSuppression, Suppressions, skips_file


class BrokenRewrite(Exception):
    """A fix that would make the file invalid, or change more than its cache settings: a bug in
    cachefix or a rule plugin, never written."""


def _in_order(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.start.line, f.start.column, f.code))


def _checked(dockerfile: Dockerfile, settings: Settings,
             bases: BaseLookup | None = None) -> tuple[list[Finding], list[Finding]]:
    """(findings that count, those of rules no comment silences included; findings a comment silenced).
    Problems with the suppression comments themselves are reported whatever rules are selected."""
    if skips_file(dockerfile.text):
        return [], []
    suppressions = Suppressions.read(dockerfile)
    scope = FileScope(dockerfile, settings.syntax, suppressions, replay(dockerfile, bases, settings.images).runs)
    found: list[Finding] = []
    unsilenced: list[Finding] = []
    for rule in [*settings.rules, InvalidSuppression()]:
        (found if rule.silenceable else unsilenced).extend(rule.lint(scope))
    kept, silenced = suppressions.partition(found)
    return _in_order([*_unless_pinned_too_old(dockerfile, kept), *unsilenced]), _in_order(silenced)


def _unless_pinned_too_old(dockerfile: Dockerfile, findings: list[Finding]) -> list[Finding]:
    """Mount fixes are withheld when `# syntax=` pins by digest a frontend without `RUN --mount`:
    only the user can renew the digest, and a mount would break the build until then."""
    if not any(_adds_mount(f) for f in findings) or any(f.code == SyntaxRule.code for f in findings):
        return findings
    blocker = SyntaxRule().pinned_too_old(dockerfile, adds_mounts=True)
    if blocker is None:
        return findings
    return [blocker, *(f._replace(edits=()) if _adds_mount(f) else f for f in findings)]


def lint(dockerfile: Dockerfile, settings: Settings) -> list[Finding]:
    """Every finding of the selected rules that no suppression comment silenced, in file order."""
    return _with_directive(dockerfile, _checked(dockerfile, settings)[0], settings)


def _with_directive(dockerfile: Dockerfile, findings: list[Finding], settings: Settings) -> list[Finding]:
    """The `# syntax=` edit a mount fix needs is shown as part of the first mount finding, so a
    finding's edits (in JSON and SARIF output) are a complete fix on their own.
    """
    edit = _directive_for(dockerfile, findings, settings)
    if edit is None:
        return findings
    findings = list(findings)
    first = next(i for i, f in enumerate(findings) if _adds_mount(f))
    findings[first] = findings[first]._replace(edits=(*findings[first].edits, edit))
    return findings


def _locked_last(applied: Iterable[Finding]) -> Callable[[Edit], bool]:
    """A sort key that puts the edits writing locked mounts after the other mounts inserted at the
    same place: buildah before 1.29 releases only the lock of a RUN's last cache mount (buildah#4349)."""
    locked = {flag for f in applied for flag in f.mounts
              if parse_mount(flag.removeprefix("--mount=")).get("sharing") == "locked"}
    return lambda edit: edit.replacement.strip() in locked


def _adds_mount(finding: Finding) -> bool:
    return bool(finding.mounts) and finding.fixable


def _directive_for(dockerfile: Dockerfile, fixes: Iterable[Finding], settings: Settings) -> Edit | None:
    """The `# syntax=` edit needed once these fixes add mounts, unless a CF001 fix is among them."""
    fixes = list(fixes)
    if not any(_adds_mount(f) for f in fixes) or any(f.code == SyntaxRule.code for f in fixes):
        return None
    return directive_edit(dockerfile, settings.syntax, adds_mounts=True)


def _parse_within_limits(text: str) -> Dockerfile:
    """The parsed file; OverLimit (a DockerfileSyntaxError) for one too large to check quickly."""
    check_text(text)
    dockerfile = parse(text)
    check_parsed(dockerfile)
    return dockerfile


def check(text: str, settings: Settings, bases: BaseLookup | None = None) -> Outcome:
    """What `cachefix check` needs: the findings, with no fix applied and no second pass.
    `bases`: what base images built in the same tree set (`cachefix.bases`)."""
    if skips_file(text):
        return Outcome([], text, [], [], [], skipped=True)
    dockerfile = _parse_within_limits(text)
    found, ignored = _checked(dockerfile, settings, bases)
    findings = _with_directive(dockerfile, found, settings)
    return Outcome(findings, text, findings, ignored, ignored)


def fix(text: str, settings: Settings, bases: BaseLookup | None = None) -> Outcome:
    """Apply every fix that does not collide with another; re-lint to see what is left.

    Suppressed findings are neither reported nor fixed. Raises DockerfileSyntaxError for text
    BuildKit would reject: such a file is never changed.
    """
    if skips_file(text):
        return Outcome([], text, [], [], [], skipped=True)
    dockerfile = _parse_within_limits(text)
    found, ignored = _checked(dockerfile, settings, bases)
    accepted: list[Edit] = []
    applied: list[Finding] = []
    for finding in found:
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
    accepted.sort(key=_locked_last(applied))
    findings = _with_directive(dockerfile, found, settings)
    fixed = apply(text, accepted) if accepted else text
    if fixed == text:
        return Outcome(findings, text, findings, ignored, ignored)
    try:
        after = parse(fixed)
    except DockerfileSyntaxError as exc:
        raise BrokenRewrite(f"the fix would make the file invalid ({exc}); left unchanged") from exc
    change = unintended_change(dockerfile, after, settings.syntax, [flag for f in applied for flag in f.mounts])
    if change is not None:
        raise BrokenRewrite(f"the fix would change more than cache settings ({change}); left unchanged")
    remaining, still_ignored = _checked(after, settings, bases)
    return Outcome(findings, fixed, _with_directive(after, remaining, settings), ignored, still_ignored)
