"""A stage-wide switch that turns a manager's cache off (`ENV PIP_NO_CACHE_DIR`, `UV_NO_CACHE`,
`COMPOSER_CACHE_DIR=/dev/null`) is reported once, on the line that sets it, with the RUNs it
affects: SARIF `relatedLocations`, and their lines in the message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import write

MANY_RUNS = """FROM python:3.12-slim AS base
ENV PIP_NO_CACHE_DIR=1 \\
    PYTHONUNBUFFERED=1
RUN pip install -r requirements.txt
RUN echo no pip here
RUN pip install gunicorn

FROM base AS test
RUN pip install pytest

FROM python:3.12-slim AS other
RUN pip install flask
"""


def check(path: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cachefix", "check", *options, str(path)],
                          capture_output=True, text=True, cwd=path.parent, timeout=120)


def test_sarif_points_at_the_env_line_with_the_runs_it_affects(tmp_path: Path) -> None:
    done = check(write(tmp_path / "Dockerfile", MANY_RUNS), "--format", "sarif")
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)["runs"][0]["results"]
    caused = [r for r in results if "PIP_NO_CACHE_DIR" in r["message"]["text"]]
    assert len(caused) == 1
    assert caused[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    related = [loc["physicalLocation"]["region"]["startLine"] for loc in caused[0]["relatedLocations"]]
    assert related == [4, 6, 9]  # the derived stage inherits the ENV; the other stage does not
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results if r is not caused[0]] == [12]


def test_json_and_text_name_the_affected_lines(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", MANY_RUNS)
    findings = json.loads(check(dockerfile, "--format", "json").stdout)["findings"]
    assert [(f["line"], f["code"]) for f in findings] == [(2, "CF101"), (12, "CF101")]
    assert "lines 4, 6, 9" in findings[0]["message"]
    assert "2:1  CF101  ENV PIP_NO_CACHE_DIR" in check(dockerfile).stdout


def test_an_arg_is_named_as_the_cause(tmp_path: Path) -> None:
    text = "FROM python:3.12-slim\nARG UV_NO_CACHE=1\nRUN uv pip install --system flask\n"
    dockerfile = write(tmp_path / "Dockerfile", text)
    findings = json.loads(check(dockerfile, "--format", "json").stdout)["findings"]
    assert [(f["line"], f["code"]) for f in findings] == [(2, "CF102")]
    assert findings[0]["message"].startswith("ARG UV_NO_CACHE turns uv's cache off")
