"""Every report format: what CI systems read from it, and the exit status that goes with it."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from sarif.loader import load_sarif_file

from cachefix.cli import main
from cachefix.report.github import escape_data, escape_property
from tests.helpers import write

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
FORMATS = ("text", "json", "sarif", "github", "gitlab")
PIP = "FROM python:3.12\nRUN pip install --no-cache-dir flask\n"
CLEAN = "FROM python:3.12\nRUN --mount=type=cache,target=/root/.cache/pip pip install flask\n"
BROKEN = "FROM python:3.12\nRUN pip install flask\nNOTANINSTRUCTION x\n"
APT_AND_PIP = "FROM debian\nRUN apt-get update && apt-get install -y curl\nRUN pip install --no-cache-dir flask\n"


pytestmark = pytest.mark.usefixtures("in_tmp")


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def sarif_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """Findings of several rules, an ignore comment, a broken suppression, odd path characters."""
    write(tmp_path / "api" / "Dockerfile", APT_AND_PIP)
    write(tmp_path / "my app, v2" / "Containerfile",
          APT_AND_PIP.replace("RUN apt", "# cachefix: ignore[CF201]\nRUN apt"))
    write(tmp_path / "jobs" / "Dockerfile.ci", PIP.replace("RUN", "# cachefix: ignore[CF999]\nRUN"))
    write(tmp_path / "gen" / "Dockerfile", "# cachefix: skip-file\nFROM {{ image }}\n")
    write(tmp_path / "clean" / "Dockerfile", CLEAN)
    return tmp_path


# --- exit status, for every format -------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("content", "status"), [(CLEAN, 0), (PIP, 1), (BROKEN, 2)], ids=["clean", "findings", "error"])
def test_check_exit_status_is_the_same_in_every_format(tmp_path, capsys, fmt: str, content: str, status: int) -> None:
    write(tmp_path / "Dockerfile", content)
    got, out, err = run(capsys, "check", "--format", fmt, "Dockerfile")
    assert got == status, err
    if fmt in ("json", "sarif", "gitlab"):
        json.loads(out)  # machine-readable even with errors
    if fmt == "sarif":
        assert sarif_errors(json.loads(out)) == []


def test_output_file_gets_the_report_and_stdout_stays_empty(tmp_path, capsys) -> None:
    write(tmp_path / "Dockerfile", PIP)
    status, out, _ = run(capsys, "check", "--format", "sarif", "--output", "report.sarif", "Dockerfile")
    assert (status, out) == (1, "")
    assert json.loads((tmp_path / "report.sarif").read_text())["version"] == "2.1.0"


@pytest.mark.parametrize("args", [["--output", "no/such/dir/report.json"], ["--format", "xml"], ["--select", "CF8"]])
def test_a_usage_mistake_is_one_line_and_exit_2(tmp_path, capsys, args: list[str]) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    status, out, err = run(capsys, "fix", *args, "Dockerfile")
    assert (status, out) == (2, "") and err.count("\n") == 1 and "error" in err
    assert dockerfile.read_text() == PIP


# --- SARIF -------------------------------------------------------------------------------------


def test_sarif_validates_and_loads_in_a_sarif_viewer_library(tree, capsys) -> None:
    status = run(capsys, "check", "--format", "sarif", "--output", "cachefix.sarif", "--show-ignored", ".")[0]
    assert status == 1
    document = json.loads((tree / "cachefix.sarif").read_text())
    assert sarif_errors(document) == []
    loaded = load_sarif_file(str(tree / "cachefix.sarif"))
    assert loaded.get_distinct_tool_names() == ["cachefix"]
    records = loaded.get_records()
    assert {(r["Location"], r["Code"]) for r in records} >= {
        ("api/Dockerfile", "CF201"), ("api/Dockerfile", "CF101"), ("jobs/Dockerfile.ci", "CF900"),
        ("my%20app%2C%20v2/Containerfile", "CF101")}


def test_sarif_describes_every_rule_from_its_documentation(tree, capsys) -> None:
    run_ = json.loads(run(capsys, "check", "--format", "sarif", ".")[1])["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "cachefix" and driver["version"]
    rules = driver["rules"]
    ids = [r["id"] for r in rules]
    assert {"CF001", "CF101", "CF201", "CF900"} <= set(ids) and len(ids) == len(set(ids))
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert "## Why is this bad?" in rule["help"]["markdown"]
    for result in run_["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_results_have_regions_fingerprints_and_the_suppressed_ones_say_so(tree, capsys) -> None:
    results = json.loads(run(capsys, "check", "--format", "sarif", "--show-ignored", ".")[1])["runs"][0]["results"]
    pip = next(r for r in results if r["ruleId"] == "CF101" and "api" in json.dumps(r["locations"]))
    location = pip["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "api/Dockerfile", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 37}
    assert pip["partialFingerprints"]["cachefix/v1"]
    suppressed = [r for r in results if "suppressions" in r]
    assert [(r["ruleId"], r["suppressions"]) for r in suppressed] == [("CF201", [{"kind": "inSource"}])]


def apply_sarif_fix(text: str, fix: dict) -> str:
    """Apply one SARIF fix the way a viewer would: regions are 1-based lines and columns."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    out, cursor = [], 0
    for replacement in fix["artifactChanges"][0]["replacements"]:
        region = replacement["deletedRegion"]
        start = offset(region["startLine"], region["startColumn"])
        out += [text[cursor:start], replacement["insertedContent"]["text"]]
        cursor = offset(region["endLine"], region["endColumn"])
    return "".join(out) + text[cursor:]


def test_a_sarif_fix_applied_by_a_viewer_gives_what_cachefix_fix_writes(tmp_path, capsys) -> None:
    original = ("FROM debian\nRUN apt-get update && \\\n    apt-get install -y curl \\\n"
                "    && rm -rf /var/lib/apt/lists/*\n")
    dockerfile = write(tmp_path / "Dockerfile", original)
    results = json.loads(run(capsys, "check", "--format", "sarif", "Dockerfile")[1])["runs"][0]["results"]
    assert len(results) == 1 and len(results[0]["fixes"]) == 1
    viewer = apply_sarif_fix(original, results[0]["fixes"][0])
    assert run(capsys, "fix", "Dockerfile")[0] == 0
    assert viewer == dockerfile.read_text() != original


def test_fix_reports_only_what_is_left_with_positions_in_the_fixed_file(tmp_path, capsys) -> None:
    # pip as a user whose uid the file does not show cannot be fixed; apt can.
    dockerfile = write(tmp_path / "Dockerfile",
                       "FROM debian\nRUN apt-get update && apt-get install -y pip\nUSER app\nRUN pip install flask\n")
    status, out, _ = run(capsys, "fix", "--format", "sarif", "Dockerfile")
    results = json.loads(out)["runs"][0]["results"]
    assert status == 1 and [r["ruleId"] for r in results] == ["CF101"]
    line = results[0]["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert dockerfile.read_text().splitlines()[line - 1] == "RUN pip install flask"


# --- GitHub ------------------------------------------------------------------------------------


def test_github_escaping_follows_the_runner_rules() -> None:
    assert escape_data("100% done\r\nnext: a,b") == "100%25 done%0D%0Anext: a,b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_annotations_one_line_each(tree, capsys) -> None:
    status, out, _ = run(capsys, "check", "--format", "github", ".")
    lines = out.splitlines()
    assert status == 1 and all(line.startswith("::") for line in lines)
    assert "::warning file=api/Dockerfile,line=3,col=5,endLine=3,endColumn=37,title=CF101::pip downloads" in out
    assert any(line.startswith("::warning file=my app%2C v2/Containerfile,") for line in lines)
    assert any("title=CF900::unknown rule code CF999" in line for line in lines)


def test_github_reports_an_unparsable_file_as_an_error(tmp_path, capsys) -> None:
    write(tmp_path / "Dockerfile", BROKEN)
    status, out, _ = run(capsys, "check", "--format", "github", "Dockerfile")
    assert status == 2
    assert out.splitlines()[-1].startswith("::error file=Dockerfile,line=3,title=cachefix error::")


# --- GitLab ------------------------------------------------------------------------------------


def gitlab(capsys, *paths: str) -> list[dict]:
    return json.loads(run(capsys, "check", "--format", "gitlab", *paths)[1])


def test_gitlab_code_quality_issues(tree, capsys) -> None:
    issues = gitlab(capsys, ".")
    for issue in issues:
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert isinstance(issue["location"]["lines"]["begin"], int) and issue["location"]["path"]
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert ("api/Dockerfile", "CF101", 3) in {(i["location"]["path"], i["check_name"], i["location"]["lines"]["begin"])
                                             for i in issues}


def test_gitlab_fingerprints_survive_lines_moving_and_tell_duplicates_apart(tmp_path, capsys) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP + "RUN pip install --no-cache-dir flask\n")
    before = [i["fingerprint"] for i in gitlab(capsys, "Dockerfile")]
    dockerfile.write_text(PIP.replace("FROM python:3.12\n", "FROM python:3.12\n# a comment\nENV A=1\n\n")
                          + "RUN pip install --no-cache-dir flask\n")
    after = [i["fingerprint"] for i in gitlab(capsys, "Dockerfile")]
    assert len(before) == 2 and before[0] != before[1]
    assert after == before
    dockerfile.write_text(PIP.replace("flask", "django"))
    assert gitlab(capsys, "Dockerfile")[0]["fingerprint"] not in before


def test_gitlab_reports_an_unreadable_file_as_a_critical_issue(tmp_path, capsys) -> None:
    write(tmp_path / "Dockerfile", BROKEN)
    issue = gitlab(capsys, "Dockerfile")[-1]
    where = issue["location"]["lines"]["begin"]
    assert (issue["check_name"], issue["severity"], where) == ("cachefix-error", "critical", 3)


# --- JSON and text -----------------------------------------------------------------------------


def test_json_keeps_its_shape_and_adds_ignored_only_when_asked(tree, capsys) -> None:
    plain = json.loads(run(capsys, "check", "--format", "json", ".")[1])
    assert set(plain) == {"version", "files", "fixed", "findings", "errors"}
    assert set(plain["findings"][0]) >= {"file", "line", "column", "end_line", "code", "manager", "message", "fixable"}
    shown = json.loads(run(capsys, "check", "--format", "json", "--show-ignored", ".")[1])
    assert [(i["file"], i["code"]) for i in shown["ignored"]] == [("my app, v2/Containerfile", "CF201")]
    assert shown["skipped"] == ["gen/Dockerfile"]
    assert shown["findings"] == plain["findings"]


def test_text_show_ignored_lists_silenced_findings_and_skipped_files(tree, capsys) -> None:
    out = run(capsys, "check", "--show-ignored", ".")[1]
    assert re.search(r"my app, v2/Containerfile\n  3:5  CF201  ignored  apt-get downloads", out)
    assert "gen/Dockerfile  skipped (# cachefix: skip-file)" in out
    assert "1 silenced by `# cachefix: ignore`" in run(capsys, "check", ".")[1]


def test_quiet_prints_only_findings_one_a_line(tree, capsys) -> None:
    lines = run(capsys, "check", "--quiet", ".")[1].splitlines()
    assert "api/Dockerfile:2:5: CF201 apt-get downloads without cache mounts" in lines[0]
    assert all(re.match(r"[^:]+:\d+:\d+: CF\d{3} ", line) for line in lines)


def test_statistics_count_per_code(tree, capsys) -> None:
    out = run(capsys, "check", "--statistics", ".")[1].splitlines()
    assert out[0].split() == ["count", "code", "fixable", "rule"]
    assert out[1].split() == ["3", "CF101", "3", "pip-cache-mount"]
    assert {tuple(line.split()[:3]) for line in out[2:4]} == {("1", "CF201", "1"), ("1", "CF900", "0")}
    assert out[-1].startswith("Found 5 findings")


def test_statistics_with_a_machine_format_go_to_stderr(tree, capsys) -> None:
    status, out, err = run(capsys, "check", "--format", "sarif", "--statistics", ".")
    assert status == 1 and json.loads(out)["version"] == "2.1.0" and "CF101" in err


def test_diff_keeps_stdout_a_clean_patch_in_every_format(tmp_path, capsys) -> None:
    write(tmp_path / "Dockerfile", PIP)
    for fmt in FORMATS:
        status, out, _ = run(capsys, "fix", "--diff", "--format", fmt, "Dockerfile")
        assert status == 1 and out.startswith("--- a/Dockerfile") and "+RUN --mount" in out


# --- the text summary: honest in every combination ----------------------------------------------

UNFIXABLE = "FROM python:3.12\nUSER app\nRUN pip install flask\n"  # a uid the file does not show
TREES = {  # folder -> Dockerfile text
    "clean": {"clean": CLEAN},
    "errors": {"clean": CLEAN, "broken": BROKEN},
    "findings": {"clean": CLEAN, "pip": PIP, "user": UNFIXABLE},
    "findings+errors": {"clean": CLEAN, "pip": PIP, "user": UNFIXABLE, "broken": BROKEN},
    "only errors": {"broken": BROKEN, "broken2": BROKEN},
}
LEAD = "1 file could not be checked (error above); "
FIX_LEAD = "1 file could not be fixed (error above); "
LEFT = "; 1 finding left to fix by hand."
SUMMARIES = {  # (tree, mode) -> the last line of the text report
    ("clean", "check"): "No uncached installs in 1 file.",
    ("clean", "fix"): "Nothing to fix in 1 file.",
    ("clean", "diff"): "Nothing to fix in 1 file.",
    ("errors", "check"): LEAD + "no uncached installs in the 1 checked.",
    ("errors", "fix"): FIX_LEAD + "nothing to fix in the 1 checked.",
    ("errors", "diff"): FIX_LEAD + "nothing to fix in the 1 checked.",
    ("findings", "check"): "Found 2 findings (1 fixable with `cachefix fix`) in 2 files of 3 checked.",
    ("findings", "fix"): "Fixed 1 finding in 1 file of 3 checked" + LEFT,
    ("findings", "diff"): "Would fix 1 finding in 1 file of 3 checked" + LEFT,
    ("findings+errors", "check"): LEAD + "found 2 findings (1 fixable with `cachefix fix`) in 2 files of 3 checked.",
    ("findings+errors", "fix"): FIX_LEAD + "fixed 1 finding in 1 file of 3 checked" + LEFT,
    ("findings+errors", "diff"): FIX_LEAD + "would fix 1 finding in 1 file of 3 checked" + LEFT,
    ("only errors", "check"): "2 files could not be checked (errors above).",
    ("only errors", "fix"): "2 files could not be fixed (errors above).",
    ("only errors", "diff"): "2 files could not be fixed (errors above).",
}
MODES = {"check": ["check"], "fix": ["fix"], "diff": ["fix", "--diff"]}
QUIET_LINE = re.compile(r"[^:]+(:\d+:\d+: CF\d{3} |:\d+: error: )")


@pytest.mark.parametrize("quiet", [False, True], ids=["summary", "quiet"])
@pytest.mark.parametrize(("tree_name", "mode"), list(SUMMARIES), ids="-".join)
def test_the_summary_says_what_happened(tmp_path, capsys, tree_name: str, mode: str, quiet: bool) -> None:
    for folder, text in TREES[tree_name].items():
        write(tmp_path / folder / "Dockerfile", text)
    status, out, err = run(capsys, *MODES[mode], *(["--quiet"] if quiet else []), ".")
    report = err if mode == "diff" else out  # --diff keeps stdout for the patch
    lines = report.splitlines()
    if quiet:  # only the findings and the errors, one a line
        assert all(QUIET_LINE.match(line) for line in lines), report
    else:
        assert lines[-1] == SUMMARIES[tree_name, mode]
    assert status == (2 if "errors" in tree_name else 1 if "findings" in tree_name else 0)


def test_diff_labels_say_would_fix_and_fix_labels_say_fixed(tmp_path, capsys) -> None:
    write(tmp_path / "pip" / "Dockerfile", PIP)
    write(tmp_path / "user" / "Dockerfile", UNFIXABLE)
    err = run(capsys, "fix", "--diff", ".")[2]
    assert "CF101  would fix  pip downloads" in err and "CF101  would not fix  pip runs as user" in err
    assert " fixed " not in err and "Fixed" not in err
    assert (tmp_path / "pip" / "Dockerfile").read_text() == PIP
    out = run(capsys, "fix", ".")[1]
    assert "CF101  fixed  pip downloads" in out and "CF101  not fixed  pip runs as user" in out


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("args", "label"), [(["fix"], "fixed"), (["fix", "--diff"], "would fix")])
def test_on_a_terminal_what_is_fixed_is_green(tmp_path, monkeypatch, args: list[str], label: str) -> None:
    write(tmp_path / "Dockerfile", PIP)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr" if "--diff" in args else "stdout", terminal)
    monkeypatch.setattr(sys, "stdout" if "--diff" in args else "stderr", io.StringIO())
    main([*args, "Dockerfile"])
    assert f"\x1b[32m{label}\x1b[0m" in terminal.getvalue()


def test_a_file_that_cannot_be_written_is_named_first_in_the_summary(tmp_path) -> None:
    """A file size limit makes the write fail even for root (SIGXFSZ ignored: the write gets EFBIG)."""
    import resource
    import signal

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))

    write(tmp_path / "Dockerfile", PIP)
    result = subprocess.run([sys.executable, "-m", "cachefix", "fix", "Dockerfile"], cwd=tmp_path,
                            capture_output=True, text=True, preexec_fn=small_files)
    assert result.returncode == 2
    assert result.stdout.splitlines()[-1] == ("1 file could not be written (error above); fixed nothing in the 1 "
                                              "checked; 1 finding left.")
    assert (tmp_path / "Dockerfile").read_text() == PIP


# --- start-up cost and progress ----------------------------------------------------------------


def test_a_text_check_on_a_pipe_imports_no_other_reporter_nor_rich(tmp_path) -> None:
    write(tmp_path / "Dockerfile", PIP)
    probe = ("import sys; from cachefix.cli import main; main(['check', 'Dockerfile']); "
             "print([m for m in sys.modules if m.startswith(('rich', 'cachefix.report.sarif', "
             "'cachefix.report.gitlab', 'cachefix.report.github', 'cachefix.report.json', 'cachefix.downloads.api'))])")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.splitlines()[-1] == "[]"


def test_progress_shows_on_a_terminal_for_a_large_tree(tmp_path) -> None:
    for i in range(30):
        write(tmp_path / f"s{i}" / "Dockerfile", CLEAN)
    primary, secondary = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "cachefix", "check", "."], cwd=tmp_path, stderr=secondary,
                          stdout=subprocess.PIPE, text=True, env={**os.environ, "TERM": "xterm"}) as child:
        os.close(secondary)
        seen = b""
        while True:  # read as the child writes, until it exits (EIO: no writer left on the terminal)
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.close(primary)
        out = child.stdout.read()
    assert child.returncode == 0 and "No uncached installs in 30 files" in out
    assert b"Checking" in seen
