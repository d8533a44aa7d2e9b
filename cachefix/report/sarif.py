"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One rule descriptor per code (from the rule's own documentation), one result per finding with
its region, the places it affects (`relatedLocations`) and, when cachefix knows the fix, the fix
as replacements in the file. Paths are
relative to %SRCROOT%, the folder cachefix ran in (the checkout, in CI). Files cachefix could
not read or parse are tool execution notifications, and make the run unsuccessful.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from cachefix import __version__
from cachefix.model import Edit, FileError, LintReport, Severity
from cachefix.report import ReportOptions
from cachefix.report.items import Item, display_path, items
from cachefix.report.rule_docs import documented_rules, section
from cachefix.rules.rule import Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
SRCROOT = "%SRCROOT%"

Json = dict[str, Any]


def artifact(path: Path) -> Json:
    shown = display_path(path)
    if shown.startswith("/"):  # outside the folder cachefix ran in
        return {"uri": path.absolute().as_uri()}
    return {"uri": quote(shown), "uriBaseId": SRCROOT}


def descriptor(rule: type[Rule]) -> Json:
    documentation = rule.documentation()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": section(rule, "What it does") or rule.summary},
        "help": {"text": documentation, "markdown": documentation},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": [rule.manager]},
    }


def _region(item: Item, edit: Edit) -> Json:
    start_line, start_column = item.index.position(edit.start)
    end_line, end_column = item.index.position(edit.end)
    return {"startLine": start_line, "startColumn": start_column, "endLine": end_line, "endColumn": end_column}


def result(item: Item, rule_index: dict[str, int]) -> Json:
    finding = item.finding
    location = artifact(item.result.path)
    entry: Json = {
        "ruleId": finding.code,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [{"physicalLocation": {"artifactLocation": location, "region": {
            "startLine": finding.start.line, "startColumn": finding.start.column,
            "endLine": finding.end.line, "endColumn": finding.end.column}}}],
        "partialFingerprints": {"cachefix/v1": item.fingerprint},
    }
    if finding.code in rule_index:
        entry["ruleIndex"] = rule_index[finding.code]
    if finding.related:  # where a cause of the finding is (the ENV or ARG of a stage-wide switch)
        entry["relatedLocations"] = [
            {"id": i, "message": {"text": "sets what this finding is about"}, "physicalLocation": {
                "artifactLocation": location, "region": {"startLine": start.line, "startColumn": start.column,
                                                         "endLine": end.line, "endColumn": end.column}}}
            for i, (start, end) in enumerate(finding.related, 1)]
    if finding.edits:
        # In the order cachefix applies them: by position, insertions at one place in rule order.
        edits = sorted(dict.fromkeys(finding.edits), key=lambda e: (e.start, e.end))
        entry["fixes"] = [{
            "description": {"text": f"cachefix fix: {finding.fix_title or finding.message}"},
            "artifactChanges": [{"artifactLocation": location, "replacements": [
                {"deletedRegion": _region(item, e), "insertedContent": {"text": e.replacement}} for e in edits]}],
        }]
    if item.ignored:
        entry["suppressions"] = [{"kind": "inSource"}]
    return entry


def notification(error: FileError) -> Json:
    physical: Json = {"artifactLocation": artifact(error.path)}
    if error.line:
        physical["region"] = {"startLine": error.line}
    return {"level": "error", "message": {"text": error.message}, "locations": [{"physicalLocation": physical}]}


def render_sarif(report: LintReport, options: ReportOptions) -> str:
    rules = documented_rules()
    rule_index = {rule.code: i for i, rule in enumerate(rules)}
    run = {
        "tool": {"driver": {
            "name": "cachefix",
            "version": __version__,
            "semanticVersion": __version__,
            "rules": [descriptor(rule) for rule in rules],
        }},
        "invocations": [{
            "executionSuccessful": not report.errors,
            "toolExecutionNotifications": [notification(e) for e in report.errors],
        }],
        "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": [result(item, rule_index) for item in items(report, show_ignored=options.show_ignored)],
    }
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)


def write(report: LintReport, options: ReportOptions, stream: TextIO) -> None:
    stream.write(render_sarif(report, options) + "\n")
