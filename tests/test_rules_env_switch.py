"""A stage-wide switch that turns a manager's cache off (`ENV PIP_NO_CACHE_DIR`, `ARG ...`) is part
of the image's configuration: the fix keeps it and undoes it only for the commands that get the
mount (`env -u NAME`), in shell and exec form. Each finding points at the ENV or ARG as a related
location (SARIF `relatedLocations`) and names its line."""

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


def cachefix(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cachefix", *args, str(path)],
                          capture_output=True, text=True, cwd=path.parent, timeout=120)


def test_the_env_stays_and_each_command_runs_without_it(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", MANY_RUNS)
    assert cachefix(dockerfile, "fix").returncode == 0
    lines = dockerfile.read_text().splitlines()
    assert "ENV PIP_NO_CACHE_DIR=1 \\" in lines
    unset = [n for n, line in enumerate(lines, 1) if "env -u PIP_NO_CACHE_DIR pip install" in line]
    assert unset == [5, 7, 10]  # `# syntax=` moved every line down by one; the other stage has no switch
    assert lines[12] == "RUN --mount=type=cache,target=/root/.cache/pip pip install flask"
    assert cachefix(dockerfile, "check").returncode == 0


def test_sarif_relates_each_run_to_the_env_line(tmp_path: Path) -> None:
    done = cachefix(write(tmp_path / "Dockerfile", MANY_RUNS), "check", "--format", "sarif")
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)["runs"][0]["results"]
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results]
    related = [[loc["physicalLocation"]["region"]["startLine"] for loc in r.get("relatedLocations", [])]
               for r in results]
    assert lines == [4, 6, 9, 12]
    assert related == [[2], [2], [2], []]  # the derived stage inherits the ENV; the other stage does not


def test_an_arg_is_named_as_the_cause(tmp_path: Path) -> None:
    text = "FROM python:3.12-slim\nARG PIP_NO_CACHE_DIR=1\nRUN pip install flask\n"
    dockerfile = write(tmp_path / "Dockerfile", text)
    findings = json.loads(cachefix(dockerfile, "check", "--format", "json").stdout)["findings"]
    assert [(f["line"], f["code"]) for f in findings] == [(3, "CF101")]
    assert "PIP_NO_CACHE_DIR (ARG on line 2)" in findings[0]["message"]


def test_exec_form_unsets_through_env(tmp_path: Path) -> None:
    text = 'FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=off\nRUN ["pip", "install", "flask"]\n'
    dockerfile = write(tmp_path / "Dockerfile", text)
    assert cachefix(dockerfile, "fix", "--syntax", "none").returncode == 0
    assert dockerfile.read_text().splitlines()[2] == (
        'RUN --mount=type=cache,target=/root/.cache/pip ["env", "-u", "PIP_NO_CACHE_DIR", "pip", "install", "flask"]')


def test_an_inline_switch_is_dropped_not_unset(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", "FROM python:3.12-slim\nRUN PIP_NO_CACHE_DIR=1 pip install flask\n")
    assert cachefix(dockerfile, "fix", "--syntax", "none").returncode == 0
    assert dockerfile.read_text().splitlines()[1] == "RUN --mount=type=cache,target=/root/.cache/pip pip install flask"
