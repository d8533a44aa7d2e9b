"""Issue 8.13 (configuration part) and its kin: careless or hostile configuration files.

Every mistake in a configuration is one line on stderr naming the file (and the key, or the
line of a TOML error) with exit status 2, and nothing is touched; a file cachefix cannot or
should not read never hangs it, fills its memory or silently steers it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cachefix.cli import main
from tests.helpers import write

PIP = "FROM python:3.12\nRUN pip install flask\n"

pytestmark = pytest.mark.usefixtures("in_tmp")


def _one_line_error(capsys, *args: str) -> str:
    """Run `fix`; assert it failed with one line and changed nothing; the line."""
    status = main(["fix", *args, "Dockerfile"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, ""), err
    assert err.count("\n") == 1 and err.startswith("cachefix: error: ") and "Traceback" not in err
    assert Path("Dockerfile").read_text() == PIP
    return err


WRONG_TYPES = {
    'select = ["CF101", 1]\n': "`select` in the top level must be a list of strings, not an array",
    'ignore = "CF101"\n': "`ignore` in the top level must be a list of strings, not 'CF101'",
    'ignore = [""]\n': "`ignore` in the top level: unknown rule code ``",
    'select = [" "]\n': "`select` in the top level: unknown rule code ` `",
    'exclude = "vendor/"\n': "`exclude` in the top level must be a list of strings",
    "exclude = [1]\n": "`exclude` in the top level must be a list of strings",
    'exclude = ["ok/", "!"]\n': "`exclude` in the top level: invalid pattern '!'",
    'exclude = ["foo\\\\"]\n': "`exclude` in the top level: invalid pattern 'foo\\\\'",
    'per-file-ignores = ["x"]\n': "`per-file-ignores` in the top level must be a table of pattern = [codes], not an",
    '[per-file-ignores]\n"x/" = "CF101"\n': "`x/` in the top level's per-file-ignores must be a list of strings",
    '[per-file-ignores]\n"!" = ["CF101"]\n': "`per-file-ignores` in the top level: invalid pattern '!'",
    '[per-file-ignores]\n"a\\\\" = ["CF101"]\n': "`per-file-ignores` in the top level: invalid pattern 'a\\\\'",
    "syntax = 1.4\n": "`syntax` in the top level must be an image reference such as",
    'syntax = ["docker/dockerfile:1.4"]\n': "`syntax` in the top level must be an image reference",
    "syntax = true\n": "not a boolean",
    "fail-on = 1\n": "`fail-on` in the top level must be one of info, warning, error, never, not an integer",
    'fail-on = ["info"]\n': "`fail-on` in the top level must be one of info, warning, error, never, not an array",
    "sharing = {a = 1}\n": "`sharing` in the top level must be one of shared, private, locked, not a table",
    "id-prefix = 1\n": "`id-prefix` in the top level must be a string",
    'id-prefix = "a b"\n': "`id-prefix` in the top level must be a string",
    'id-prefix = "${TARGETARCH"\n': "`id-prefix` in the top level must be a string",  # BuildKit fails on it
    'id-prefix = "$-"\n': "`id-prefix` in the top level must be a string",
    "select = 1979-05-27\n": "must be a list of strings, not a date or time",
    "pip = 1\n": "the [pip] table of the top level must be a table, not an integer",
    'pip = "locked"\n': "the [pip] table of the top level must be a table, not a string",
    "[pip]\nid-prefix = []\n": "`id-prefix` in the [pip] table of the top level must be a string",
    "[pip]\nsharing = false\n": "`sharing` in the [pip] table of the top level must be one of",
    'selct = []\nignor = []\n': "unknown keys `selct`, `ignor` in the top level",
}


@pytest.mark.parametrize("config", WRONG_TYPES)
def test_every_key_with_a_wrong_type_is_one_line_naming_file_and_key(tmp_path: Path, capsys, config: str) -> None:
    write(tmp_path / ".cachefix.toml", config)
    write(tmp_path / "Dockerfile", PIP)
    err = _one_line_error(capsys)
    assert err.startswith(f"cachefix: error: {tmp_path / '.cachefix.toml'}: ") and WRONG_TYPES[config] in err


@pytest.mark.parametrize(("pyproject", "message"), [
    ('tool = "cachefix"\n', "`tool` must be a table ([tool.cachefix]), not a string"),
    ("tool = 1\n# cachefix\n", "`tool` must be a table ([tool.cachefix]), not an integer"),
    ('[tool]\ncachefix = "x"\n', "[tool.cachefix] must be a table, not a string"),
    ("[tool]\ncachefix = []\n", "[tool.cachefix] must be a table, not an array"),
])
def test_a_pyproject_whose_tool_is_no_table_is_one_line(tmp_path: Path, capsys, pyproject: str, message: str) -> None:
    write(tmp_path / "pyproject.toml", pyproject)
    write(tmp_path / "Dockerfile", PIP)
    assert _one_line_error(capsys) == f"cachefix: error: {tmp_path / 'pyproject.toml'}: {message}\n"


@pytest.mark.parametrize(("config", "line", "message"), [
    ('select = ["CF101"]\n\nignore = [\n', 3, "not valid TOML"),
    ('select = ["CF101"]\nselect = ["CF201"]\n', 2, "not valid TOML: Cannot overwrite a value"),
    ('ignore = []\n[pip]\nsharing = "locked"\n[pip]\n', 4, "not valid TOML"),
    ("fail-on = 'info\n", 1, "not valid TOML"),
])
def test_a_toml_error_names_the_file_and_line(tmp_path: Path, capsys, config: str, line: int, message: str) -> None:
    write(tmp_path / ".cachefix.toml", config)
    write(tmp_path / "Dockerfile", PIP)
    err = _one_line_error(capsys)
    assert err.startswith(f"cachefix: error: {tmp_path / '.cachefix.toml'}:{line}: {message}")
    assert "(at line" not in err


@pytest.mark.parametrize(("config", "message"), [
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n", "nested too deeply"),
    (".".join(["a"] * 5000) + " = 1\n", "a dotted key 5000 levels deep (the limit is 65)"),
    ("[" + ".".join(["t"] * 200) + "]\n", "a dotted key 200 levels deep"),
])
def test_deep_nesting_is_refused_before_it_costs(tmp_path: Path, capsys, config: str, message: str) -> None:
    write(tmp_path / ".cachefix.toml", config)
    write(tmp_path / "Dockerfile", PIP)
    assert message in _one_line_error(capsys)


def test_a_configuration_over_the_size_limit_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / ".cachefix.toml").write_bytes(b"# padding\n" * (4 * 1024 * 1024 // 10 + 1))
    write(tmp_path / "Dockerfile", PIP)
    assert "too large" in _one_line_error(capsys) or "larger than" in _one_line_error(capsys)


def test_a_byte_order_mark_is_allowed(tmp_path: Path, capsys) -> None:
    (tmp_path / ".cachefix.toml").write_bytes('\ufeffignore = ["CF101"]\n'.encode())
    write(tmp_path / "Dockerfile", PIP)
    assert main(["check", "--quiet", "Dockerfile"]) == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("name", [".cachefix.toml", "pyproject.toml"])
def test_a_fifo_or_device_as_configuration_in_a_parent_folder_does_not_hang(tmp_path: Path, name: str) -> None:
    os.mkfifo(tmp_path / name)
    write(tmp_path / "a" / "Dockerfile", PIP)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / name).symlink_to("/dev/zero")
    write(tmp_path / "b" / "Dockerfile", PIP)
    for folder in ("a", "b"):
        done = subprocess.run([sys.executable, "-m", "cachefix", "check", folder], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)  # the old code never returned
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.count("\n") == 1 and "not a regular file" in done.stderr and name in done.stderr


def test_a_tree_thousands_of_folders_deep_is_checked(tmp_path: Path, capsys) -> None:
    deep = Path()
    for _ in range(1500):  # mkdir(parents=True) would recurse too deep
        deep /= "d"
        deep.mkdir()
    write(tmp_path / ".cachefix.toml", 'ignore = ["CF201"]\n')
    write(deep / "Dockerfile", PIP)
    try:
        assert main(["check", "--quiet", str(deep / "Dockerfile")]) == 1
        out, err = capsys.readouterr()
        assert err == "" and out.split()[1] == "CF101"
    finally:  # pytest's clean-up, recursive too, would fail on it
        (deep / "Dockerfile").unlink()
        for folder in [deep, *deep.parents][:-1]:
            folder.rmdir()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give a file away")
def test_a_configuration_planted_by_another_user_in_a_shared_folder_is_not_used(tmp_path: Path, capsys) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    planted = write(shared / ".cachefix.toml", 'ignore = ["CF101"]\nexclude = ["victim/"]\n')
    dockerfile = write(shared / "victim" / "Dockerfile", PIP)
    os.chown(planted, 4242, 4242)
    status = main(["check", "--quiet", str(dockerfile)])
    out, err = capsys.readouterr()
    assert status == 1 and out.split()[1] == "CF101"
    assert err == (f"cachefix: warning: {planted}: not used: owned by another user (uid 4242) in a folder anyone "
                   "may write to; pass --config to use it\n")
    assert main(["check", "--quiet", "--config", str(planted), str(dockerfile)]) == 0  # asked for: used
    shared.chmod(stat.S_IRWXU)  # a folder only its owner may write to: the owner's choice
    assert main(["check", "--quiet", str(dockerfile)]) == 0


def test_a_configuration_above_the_repository_root_is_not_used(tmp_path: Path, capsys) -> None:
    write(tmp_path / ".cachefix.toml", 'ignore = ["CF101"]\nsyntax = "evil.example/frontend:1"\n')
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    dockerfile = write(tmp_path / "repo" / "svc" / "Dockerfile", PIP)
    write(tmp_path / "module" / ".git", "gitdir: ../repo/.git/modules/module\n")  # a submodule or worktree
    write(tmp_path / "module" / "Dockerfile", PIP)
    assert main(["check", "--quiet", "repo", "module"]) == 1
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()] == ["CF101", "CF101"]
    assert main(["fix", "--quiet", "repo"]) == 0
    assert dockerfile.read_text().startswith("# syntax=docker/dockerfile:1.3\n")
    write(tmp_path / "repo" / "pyproject.toml", '[tool.cachefix]\nignore = ["CF101"]\n')  # the repository's own
    assert main(["check", "--quiet", "module", str(tmp_path / "repo" / "svc" / "Dockerfile")]) == 1
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["module/Dockerfile:2:5:"]


def test_a_folder_whose_name_starts_with_two_dots_is_inside_the_configurations_folder(tmp_path: Path,
                                                                                       capsys) -> None:
    write(tmp_path / ".cachefix.toml", 'exclude = ["..vendor/"]\n[per-file-ignores]\n"..legacy/*" = ["CF101"]\n')
    write(tmp_path / "..vendor" / "Dockerfile", PIP)
    write(tmp_path / "..legacy" / "Dockerfile", PIP)
    assert main(["check", "--quiet", "..vendor/Dockerfile", "..legacy/Dockerfile"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("config", ['"\\u001b[2J" = 1\n', 'ignore = ["\\u001b]0;owned\\u0007"]\n',
                                    '[per-file-ignores]\n"\\u001b[31mx" = "CF101"\n'])
def test_an_error_never_sends_a_configurations_control_characters_to_the_terminal(tmp_path: Path, capsys,
                                                                                  config: str) -> None:
    write(tmp_path / ".cachefix.toml", config)
    write(tmp_path / "Dockerfile", PIP)
    err = _one_line_error(capsys)
    assert "\x1b" not in err and "\\x1b" in err


def test_thousands_of_unknown_keys_make_one_short_line(tmp_path: Path, capsys) -> None:
    write(tmp_path / ".cachefix.toml", "".join(f"key{n} = 1\n" for n in range(20000)))
    write(tmp_path / "Dockerfile", PIP)
    expected = "unknown keys `key0`, `key1`, `key2`, `key3`, `key4` and 19995 more in the top level"
    assert expected in _one_line_error(capsys)


def test_a_pyproject_that_is_not_utf8_and_not_about_cachefix_is_passed_over(tmp_path: Path, capsys) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')  # Latin-1, someone else's problem
    write(tmp_path / "Dockerfile", PIP)
    assert main(["check", "--quiet", "Dockerfile"]) == 1
    assert capsys.readouterr().err == ""
    (tmp_path / "pyproject.toml").write_bytes(b'[tool.cachefix]\nignore = ["CF101"] # caf\xe9\n')
    assert "not UTF-8 text (byte 0xe9 at offset 40)" in _one_line_error(capsys)


@pytest.mark.parametrize(("config", "key"), [
    ("exclude = [" + ", ".join(f'"p{n}/"' for n in range(1001)) + "]\n", "`exclude`"),
    ("[per-file-ignores]\n" + "".join(f'"p{n}/" = ["CF101"]\n' for n in range(1001)), "`per-file-ignores`"),
    ("ignore = [" + ", ".join(['"CF101"'] * 1001) + "]\n", "`ignore`"),
])
def test_a_list_too_long_to_use_in_reasonable_time_is_refused(tmp_path: Path, capsys, config: str, key: str) -> None:
    write(tmp_path / ".cachefix.toml", config)  # 100,000 patterns took 30 s to compile
    write(tmp_path / "Dockerfile", PIP)
    assert f"{key} in the top level has 1001 entries; the limit is 1000" in _one_line_error(capsys)


def test_an_id_prefix_may_hold_whole_variables(tmp_path: Path) -> None:
    write(tmp_path / ".cachefix.toml", 'syntax = "none"\nid-prefix = "${TARGETARCH}-$BUILDOS/"\n')
    dockerfile = write(tmp_path / "Dockerfile", PIP)
    assert main(["fix", "--quiet", "Dockerfile"]) == 0
    assert "id=${TARGETARCH}-$BUILDOS/pip " in dockerfile.read_text()
