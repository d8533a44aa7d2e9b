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


def _message(text: str, code: str) -> str:
    (finding,) = [f for f in check(text, Settings([rule() for rule in all_rules()])).findings if f.code == code]
    return finding.message


# `mvn` passes MAVEN_OPTS and MAVEN_ARGS unquoted (`exec "$JAVACMD" $MAVEN_OPTS ...`): split at
# blanks, quotes kept; a -D on the command line beats MAVEN_OPTS, and the last one given wins.
MAVEN = [
    ('MAVEN_OPTS="-Dmaven.repo.local=/r x"', "mvn package", "on /r:"),
    ('MAVEN_OPTS="-Dmaven.repo.local=/a -Dmaven.repo.local=/b"', "mvn package", "on /b:"),
    ('MAVEN_OPTS="-Dmaven.repo.local=/a" MAVEN_ARGS="-Dmaven.repo.local=/b"', "mvn package", "on /b:"),
    ('MAVEN_ARGS="-Dmaven.repo.local=/b"', "mvn package -D maven.repo.local=/c", "on /c:"),
    ("MAVEN_OPTS='-Dmaven.repo.local=\"/r x\"'", "mvn package", '`/"/r` holds a quote'),
]


@pytest.mark.parametrize(("env", "command", "expected"), MAVEN)
def test_maven_reads_its_options_as_the_mvn_script_passes_them(env: str, command: str, expected: str) -> None:
    assert expected in _message(f"FROM maven:3\nWORKDIR /\nENV {env}\nRUN {command}\n", "CF503")


# `gradle` and `gradlew` pass JAVA_OPTS and GRADLE_OPTS through `xargs -n1`: quotes are removed.
GRADLE = [
    ("GRADLE_OPTS='-Dgradle.user.home=\"/g x\"'", "gradle build", "`/g x/caches` holds a space"),
    ('GRADLE_OPTS="-Dgradle.user.home=/g1 -Dgradle.user.home=/g2"', "gradle build", "target=/g2/caches"),
    ('JAVA_OPTS="-Dgradle.user.home=/j" GRADLE_OPTS="-Dgradle.user.home=/g"', "gradle build", "target=/g/caches"),
    ('GRADLE_OPTS="-Dgradle.user.home=/g"', "gradle build -Dgradle.user.home=/cli", "target=/cli/caches"),
    ("GRADLE_OPTS='-Dgradle.user.home=\"/unmatched'", "gradle build", "target=/root/.gradle/caches"),
]


@pytest.mark.parametrize(("env", "command", "expected"), GRADLE)
def test_gradle_reads_its_jvm_options_as_its_start_script_does(env: str, command: str, expected: str) -> None:
    assert expected in _message(f"FROM gradle:8\nENV {env}\nRUN {command}\n", "CF504")


def test_maven_options_with_quotes_leave_the_file_alone(tmp_path: Path) -> None:
    original = "FROM maven:3\nENV MAVEN_OPTS='-Dmaven.repo.local=\"/r x\"'\nRUN mvn package\n"
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(original)
    done = _cachefix("fix", "--syntax", "none", str(dockerfile), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert dockerfile.read_text() == original
    assert "CF503  not fixed" in done.stdout


@pytest.mark.parametrize("value", [r"/a\$b", "'/a$b'", r'"/a\$b"'])
def test_a_literal_dollar_in_a_cache_folder_is_not_a_variable(tmp_path: Path, value: str) -> None:
    """`/a\\$b` is the folder `/a$b` to BuildKit; reading `$b` as an empty variable would mount `/a`."""
    dockerfile = tmp_path / "Dockerfile"
    original = f"FROM python:3.12\nENV PIP_CACHE_DIR={value}\nRUN pip install flask\n"
    dockerfile.write_text(original)
    done = subprocess.run([sys.executable, "-m", "cachefix", "fix", "--syntax", "none", str(dockerfile)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert dockerfile.read_text() == original
    assert "target=/a " not in done.stdout and "/a$b" in done.stdout
