"""No input makes `fix` or `check` end in a traceback: a bug in cachefix or in a plugin rule
is an error for that one file (exit 2, the file as it was), and the other files go on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.adversarial.plugin_support import plugin_env

CRASHING_RULE = '''
    from cachefix.rules.rule import RunRule

    class Crash(RunRule):
        """Fails on any RUN that mentions `boom`, as a buggy rule would."""
        code = "CFX77"
        name = "crash"
        manager = "crash"
        summary = "crashes"

        def check(self, run, state):
            if "boom" in " ".join(run.instruction.value):
                raise RecursionError("maximum recursion depth exceeded")
            return ()
'''


def cachefix(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachefix", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_a_rule_that_crashes_is_an_error_for_its_file_only(tmp_path: Path) -> None:
    env = plugin_env(tmp_path / "site", "cachefix_crash_plugin", "Crash", CRASHING_RULE)
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "b").mkdir()
    crashing = "FROM python:3.12\nRUN echo boom && pip install flask\n"
    (tree / "a" / "Dockerfile").write_text(crashing)
    (tree / "b" / "Dockerfile").write_text("FROM python:3.12\nRUN pip install flask\n")
    done = cachefix("fix", "--syntax", "none", "tree", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    error_lines = [line for line in (done.stdout + done.stderr).splitlines() if "internal error" in line]
    assert len(error_lines) == 1 and "a/Dockerfile" in error_lines[0] and "RecursionError" in error_lines[0]
    assert (tree / "a" / "Dockerfile").read_text() == crashing
    assert "--mount=type=cache" in (tree / "b" / "Dockerfile").read_text()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = plugin_env(tmp_path / "site", "cachefix_crash_plugin", "Crash", CRASHING_RULE)
    (tmp_path / "Dockerfile").write_text("FROM python:3.12\nRUN echo boom\n")
    done = cachefix("check", "Dockerfile", cwd=tmp_path, env={**env, "CACHEFIX_DEBUG": "1"})
    assert "Traceback" in done.stderr and "RecursionError" in done.stderr


def test_an_ignore_comment_on_the_last_line_without_a_newline(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n# cachefix: ignore")
    done = cachefix("check", "Dockerfile", cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert done.returncode == 1
    assert "CF900" in done.stdout and "applies to no instruction" in done.stdout


def test_a_folder_name_cannot_send_escape_sequences(tmp_path: Path) -> None:
    (tmp_path / "ev\x1b[31mil").mkdir()
    done = cachefix("check", "ev\x1b[31mil", cwd=tmp_path)
    assert "no Dockerfiles in" in done.stderr
    assert "\x1b" not in done.stderr
