"""Issue 8, reporters: text from a Dockerfile or its path never reaches a terminal or a
line-based report (text, github) with its control characters: no escape sequence runs, no
line breaks apart. JSON formats escape it themselves and keep the text as it is."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cachefix.model import FileError, FileResult, Finding, LintReport, Position
from cachefix.report import ReportOptions, render

IN_FILE = "\x1b]0;owned\x07\x1b[2J"  # sets the window title, clears the screen
HOSTILE = IN_FILE + "\r\n::error::forged"  # and forges a line (in a path, or a plugin's message)
# A breaker `rm` is quoted in the finding's message, word for word as the file has it.
DOCKERFILE = f"FROM python:3.12\nRUN pip install flask && rm -rf /root/.cache '/tmp/{IN_FILE}'\n"


def _cachefix(path: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cachefix", "check", *args, path.name],
                          capture_output=True, text=True, cwd=path.parent)
    assert done.returncode == 1, done.stderr
    return done.stdout


def _no_control_characters(output: str) -> None:
    lines = output.splitlines()
    assert all(line.isprintable() for line in lines), lines
    assert not any(line.startswith("::error::forged") for line in lines)


@pytest.mark.parametrize("args", [(), ("--quiet",), ("--format", "github")])
def test_a_message_quoting_the_file_is_escaped(tmp_path: Path, args: tuple[str, ...]) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE)
    output = _cachefix(dockerfile, *args)
    _no_control_characters(output)
    assert "/tmp/\\x1b]0;owned\\x07\\x1b[2J" in output


def test_json_keeps_the_text_as_the_file_has_it(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE)
    (finding,) = json.loads(_cachefix(dockerfile, "--format", "json"))["findings"]
    assert IN_FILE in finding["message"]


def _report(path: Path) -> LintReport:
    """A report naming a file whose path holds an escape sequence (a Linux file name can)."""
    finding = Finding("CF101", "pip", f"message {HOSTILE}", Position(1, 1), Position(1, 4))
    result = FileResult(path, findings=[finding], original="RUN x\n")
    return LintReport(files=[result], errors=[FileError(path, f"cannot read {HOSTILE}", 1)])


@pytest.mark.parametrize("fmt", ["text", "github"])
@pytest.mark.parametrize("quiet", [False, True])
def test_a_path_with_an_escape_sequence_is_escaped(tmp_path: Path, fmt: str, quiet: bool) -> None:
    stream = io.StringIO()
    render(_report(tmp_path / f"a{HOSTILE}" / "Dockerfile"), fmt, ReportOptions(color=False, quiet=quiet), stream)
    output = stream.getvalue()
    _no_control_characters(output)
    assert len(output.splitlines()) == (2 if quiet or fmt == "github" else 4)  # one line each, and a summary


def test_github_properties_are_escaped_as_the_runner_reads_them(tmp_path: Path) -> None:
    stream = io.StringIO()
    render(_report(Path("/a,b:c%d/Dockerfile")), "github", ReportOptions(), stream)
    first = stream.getvalue().splitlines()[0]
    assert first.startswith("::warning file=/a%2Cb%3Ac%25d/Dockerfile,line=1,")
