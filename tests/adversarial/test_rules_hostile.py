"""Issue 8, rules: values a Dockerfile sets that a fix must not write into a `--mount` flag, and
JVM options read the way the launcher scripts read them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cachefix.engine import Settings, check
from cachefix.rules.registry import all_rules


def _cachefix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachefix", *args], capture_output=True, text=True, cwd=cwd)


# (ENV line, RUN command, the folder as the message shows it, the rule's code)
UNWRITABLE = [
    ('PIP_CACHE_DIR="/a b"', "pip install flask", "`/a b` holds a space", "CF101"),
    ('npm_config_cache="/n c"', "npm ci", "`/n c` holds a space", "CF401"),
    ('UV_CACHE_DIR="/u,v"', "uv pip install x", "`/u,v` holds a comma", "CF102"),
    ('COMPOSER_CACHE_DIR="/c=d"', "composer install", "`/c=d` holds an `=`", "CF601"),
    ('XDG_CACHE_HOME="/x y"', "pip install flask", "`/x y/pip` holds a space", "CF101"),
    ('GOMODCACHE="/g\\"m"', "go build", '`/g"m` holds a quote', "CF501"),
    ('PIP_CACHE_DIR="/a\\\\b"', "pip install flask", "holds a backslash", "CF101"),
    ("PIP_CACHE_DIR=relative/dir", "pip install flask", "`relative/dir` is not an absolute path", "CF101"),
    ('PIP_CACHE_DIR="/a\tb"', "pip install flask", "holds whitespace", "CF101"),
]


@pytest.mark.parametrize(("env", "command", "problem", "code"), UNWRITABLE)
def test_a_cache_folder_a_flag_cannot_hold_is_reported_not_fixed(tmp_path: Path, env: str, command: str,
                                                                 problem: str, code: str) -> None:
    original = f"FROM base\nENV {env}\nRUN {command}\n"
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(original)
    done = _cachefix("fix", "--syntax", "none", "--select", code, str(dockerfile), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert dockerfile.read_text() == original
    assert "error" not in done.stdout + done.stderr
    assert f"{code}  not fixed" in done.stdout
    assert problem in done.stdout
    assert "add the mount by hand" in done.stdout


def test_the_rest_of_the_run_is_still_fixed(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM base\nENV PIP_CACHE_DIR="/a b"\nRUN pip install flask && npm ci\n')
    done = _cachefix("fix", "--syntax", "none", str(dockerfile), cwd=tmp_path)
    assert done.returncode == 1
    fixed = dockerfile.read_text().splitlines()[2]
    assert fixed == "RUN --mount=type=cache,target=/root/.npm pip install flask && npm ci"


def test_a_control_character_in_a_cache_folder_is_escaped_in_the_message() -> None:
    outcome = check('FROM base\nENV PIP_CACHE_DIR="/a\x1b[31mb"\nRUN pip install flask\n',
                    Settings([rule() for rule in all_rules()]))
    (finding,) = outcome.findings
    assert not finding.fixable
    assert "\x1b" not in finding.message
    assert "/a\\x1b[31mb` holds a control character" in finding.message
