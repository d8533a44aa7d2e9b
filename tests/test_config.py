"""Configuration files: where they are found, what each key does, and how mistakes are reported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cachefix.cli import main
from tests.helpers import write

APT_AND_PIP = "FROM debian\nRUN apt-get update && apt-get install -y python3-pip && pip install flask\n"
PIP = "FROM python:3.12\nRUN pip install flask\n"


pytestmark = pytest.mark.usefixtures("in_tmp")


def check(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["check", "--quiet", *args])
    out, err = capsys.readouterr()
    return status, out, err


def codes(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines()]


def test_pyproject_table_applies_to_files_below_it(tmp_path, capsys) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n\n[tool.cachefix]\nignore = ["CF201"]\n')
    write(tmp_path / "svc" / "Dockerfile", APT_AND_PIP)
    assert codes(check(capsys, ".")[1]) == ["CF101"]


def test_the_nearest_configuration_wins_and_cachefix_toml_before_pyproject(tmp_path, capsys) -> None:
    write(tmp_path / ".cachefix.toml", 'ignore = ["CF201"]\n')
    write(tmp_path / "a" / "pyproject.toml", '[tool.cachefix]\nignore = ["CF101"]\n')
    write(tmp_path / "a" / ".cachefix.toml", 'ignore = ["apt", "pip"]\n')
    write(tmp_path / "b" / "pyproject.toml", '[project]\nname = "uses cachefix but has no table"\n')
    write(tmp_path / "a" / "Dockerfile", APT_AND_PIP)
    write(tmp_path / "b" / "Dockerfile", APT_AND_PIP)
    status, out, _ = check(capsys, ".")
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith("b/")]  # a/ ignores both
    assert codes(out) == ["CF101"]  # b/ has no table of its own: the top-level .cachefix.toml applies
    assert status == 1


def test_config_flag_applies_one_file_to_everything(tmp_path, capsys) -> None:
    write(tmp_path / ".cachefix.toml", 'ignore = ["CF101"]\n')
    write(tmp_path / "ci" / "strict.toml", "select = []\n")
    write(tmp_path / "Dockerfile", APT_AND_PIP)
    assert sorted(codes(check(capsys, "--config", "ci/strict.toml", "Dockerfile")[1])) == ["CF101", "CF201"]


def test_command_line_flags_override_the_file(tmp_path, capsys) -> None:
    write(tmp_path / ".cachefix.toml", 'select = ["CF201"]\nfail-on = "never"\n')
    write(tmp_path / "Dockerfile", APT_AND_PIP)
    assert check(capsys, "Dockerfile")[0] == 0  # fail-on = never: reported, but the check passes
    status, out, _ = check(capsys, "--select", "CF101", "--fail-on", "warning", "Dockerfile")
    assert (status, codes(out)) == (1, ["CF101"])


def test_fail_on_error_lets_warnings_pass(tmp_path, capsys) -> None:
    write(tmp_path / ".cachefix.toml", 'fail-on = "error"\n')
    write(tmp_path / "Dockerfile", PIP)
    status, out, _ = check(capsys, "Dockerfile")
    assert status == 0 and codes(out) == ["CF101"]


def test_excluded_files_are_skipped_even_when_named(tmp_path, capsys) -> None:
    write(tmp_path / "pyproject.toml", '[tool.cachefix]\nexclude = ["vendor/", "*.legacy"]\n')
    write(tmp_path / "vendor" / "Dockerfile", PIP)
    write(tmp_path / "Dockerfile.legacy", PIP)
    write(tmp_path / "Dockerfile", PIP)
    assert check(capsys, ".")[1].splitlines()[0].startswith("Dockerfile:")
    assert len(check(capsys, ".")[1].splitlines()) == 1
    assert check(capsys, "vendor/Dockerfile", "Dockerfile.legacy")[:2] == (0, "")


def test_per_file_ignores_are_relative_to_the_configuration(tmp_path, capsys) -> None:
    write(tmp_path / "pyproject.toml",
          '[tool.cachefix.per-file-ignores]\n"legacy/**" = ["CF201"]\n"Dockerfile.ci" = ["pip"]\n')
    write(tmp_path / "legacy" / "old" / "Dockerfile", APT_AND_PIP)
    write(tmp_path / "x" / "Dockerfile.ci", APT_AND_PIP)
    out = check(capsys, ".")[1]
    assert sorted(line.split(":")[0] + " " + line.split()[1] for line in out.splitlines()) == [
        "legacy/old/Dockerfile CF101", "x/Dockerfile.ci CF201"]


def test_syntax_and_per_manager_mount_options_shape_the_fix(tmp_path, capsys) -> None:
    write(tmp_path / ".cachefix.toml", 'syntax = "none"\nid-prefix = "shop-"\n\n[pip]\nsharing = "locked"\n')
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    assert main(["fix", "--quiet", "Dockerfile"]) == 0
    assert dockerfile.read_text() == ("FROM python:3.12\n"
                                      "RUN --mount=type=cache,target=/root/.cache/pip,id=shop-pip,sharing=locked "
                                      "pip install flask\n")


@pytest.mark.parametrize(("config", "message"), [
    ('selct = ["CF101"]\n', "unknown key `selct` in the top level (did you mean `select`?)"),
    ('[pip]\nsharing = "locked"\nid = "x"\n', "unknown key `id` in the [pip] table"),
    ('select = "CF101"\n', "`select` in the top level must be a list of strings"),
    ('ignore = ["CF999"]\n', "`ignore` in the top level: unknown rule code `CF999`"),
    ('ignore = ["CF900"]\n', "`CF900` (broken suppression comments) cannot be selected or ignored"),
    ('fail-on = "sometimes"\n', "`fail-on` in the top level must be one of info, warning, error, never"),
    ('[pip]\nsharing = "exclusive"\n', "`sharing` in the [pip] table of the top level must be one of shared"),
    ('id-prefix = "a,b"\n', "`id-prefix` in the top level must be a string"),
    ('[per-file-ignores]\n"x/" = ["nope"]\n', "per-file-ignores: unknown rule code `nope`"),
    ("select = [\n", "not valid TOML"),
])
def test_a_bad_configuration_is_one_line_naming_file_and_key(tmp_path, capsys, config: str, message: str) -> None:
    write(tmp_path / ".cachefix.toml", config)
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    status = main(["fix", "Dockerfile"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    config = re.escape(str(tmp_path / ".cachefix.toml"))
    assert err.count("\n") == 1 and re.match(rf"cachefix: error: {config}(:1)?: ", err)  # a TOML error has a line
    assert message in err
    assert dockerfile.read_text() == PIP  # nothing is touched


def test_a_missing_config_file_or_table_is_an_error(tmp_path, capsys) -> None:
    write(tmp_path / "Dockerfile", PIP)
    assert check(capsys, "--config", "nope.toml", "Dockerfile")[0] == 2
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    status, _, err = check(capsys, "--config", "pyproject.toml", "Dockerfile")
    assert status == 2 and "no [tool.cachefix] table" in err


def test_no_toml_parser_is_imported_when_no_configuration_mentions_cachefix(tmp_path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    write(tmp_path / "Dockerfile", PIP)
    probe = ("import sys; from cachefix.cli import main; status = main(['check', 'Dockerfile']); "
             "print(status, sorted(m for m in ('tomllib', 'tomli', 'pathspec', 'rich', 'httpx', 'libcst') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True).stdout
    assert out.splitlines()[-1] == "1 []"


def test_the_configuration_example_in_the_docs_is_valid(tmp_path, capsys) -> None:
    docs = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    write(tmp_path / "pyproject.toml", example)
    write(tmp_path / "Dockerfile", APT_AND_PIP)
    status, out, err = check(capsys, "Dockerfile")
    assert (status, err) == (1, "") and sorted(codes(out)) == ["CF101", "CF201"]


USERADD = "FROM registry.example/python-base:3.12\nRUN useradd -m app\nUSER app\nRUN pip install flask\n"


def test_images_makes_a_private_base_image_known(tmp_path, capsys) -> None:
    write(tmp_path / "Dockerfile", USERADD)
    status, out, _ = check(capsys, "Dockerfile")
    assert status == 1 and "whose uid this file does not show" in out
    write(tmp_path / ".cachefix.toml", 'images = { "registry.example/python-base" = "python" }\n')
    assert main(["fix", "--quiet", "--syntax", "none", "Dockerfile"]) == 0
    assert (tmp_path / "Dockerfile").read_text().splitlines()[3] == (
        "RUN --mount=type=cache,target=/var/cache/pip-1000,uid=1000,gid=1000 "
        "PIP_CACHE_DIR=/var/cache/pip-1000 pip install flask")


@pytest.mark.parametrize("value", ['images = ["python"]', 'images = { "corp/base" = 3 }',
                                   'images = { "corp/base" = "not an image!" }'])
def test_a_broken_images_table_is_one_line_and_exit_2(tmp_path, capsys, value: str) -> None:
    write(tmp_path / ".cachefix.toml", value + "\n")
    write(tmp_path / "Dockerfile", USERADD)
    status, _, err = check(capsys, "Dockerfile")
    assert status == 2 and "images" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "Dockerfile").read_text() == USERADD
