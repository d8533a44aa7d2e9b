"""Which files a folder scan lints (issue 9.2, 9.6; issue 8.11, 8.13 and the hunt beyond them)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from cachefix.discovery import NAMES, NOT_DOCKERFILES, find_dockerfiles, is_dockerfile_name
from tests.adversarial.files_support import UNCACHED, cachefix, one_line
from tests.helpers import write

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
DOCKERFILES = ["Dockerfile", "Containerfile", "api.Dockerfile", "x.containerfile", "Dockerfile.dev",
               "Dockerfile.prod", "Dockerfile.cuda", "Dockerfile.ubuntu2204", "Dockerfile.gpu", "Dockerfile-dev",
               "dockerfile", "Dockerfile.benchmark.libero_plus", "builder.dockerfile", "Dockerfile.3.12"]
NOT_DOCKERFILES_NAMES = ["dockerfile.py", "dockerfile.go", "Dockerfile.md", "Dockerfile.j2", "Dockerfile.tpl",
                         "Dockerfile.template", "Dockerfile.yaml", "Dockerfile.sh", "Dockerfile.txt",
                         "dockerfile.rs", "Dockerfile.bak", "Dockerfile.orig", "Dockerfile~", "Dockerfile.swp",
                         "Dockerfile.dockerignore", ".dockerignore", "DOCKERFILE.PY", "Dockerfile.ipynb",
                         "mydockerfile", "Dockerfiles", ".Dockerfile.abcd1234.cachefix", ".cachefix-tmp-k2j4x9_a"]


def _names(report: dict, root: Path) -> list[str]:
    """The files with findings, relative to `root` (the folder cachefix ran in)."""
    return sorted(os.path.relpath(root / f["file"], root) for f in report["findings"])


def test_source_docs_and_templates_in_a_folder_are_not_taken_for_dockerfiles(tmp_path: Path) -> None:
    for name in DOCKERFILES:
        write(tmp_path / "images" / name, UNCACHED)
    write(tmp_path / "src" / "dockerfile.py", '"""Dockerfile helpers."""\nimport os\n')
    write(tmp_path / "src" / "dockerfile.go", "package dockerfile\n")
    write(tmp_path / "docs" / "Dockerfile.md", "# How to write a Dockerfile\n")
    write(tmp_path / "tpl" / "Dockerfile.j2", "FROM {{ base }}\nRUN pip install flask\n")
    result = cachefix("check", "--format", "json", ".", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert report["errors"] == [], result.stdout
    assert _names(report, tmp_path) == sorted(f"images/{name}" for name in DOCKERFILES)


def test_a_file_named_on_the_command_line_is_linted_whatever_its_name(tmp_path: Path) -> None:
    write(tmp_path / "build.txt", UNCACHED)
    result = cachefix("check", "build.txt", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CF101" in result.stdout


def test_cachefix_checks_its_own_repository_without_reading_its_source_as_dockerfiles() -> None:
    result = cachefix("check", "--format", "json", "cachefix", "tests", cwd=ROOT)
    report = json.loads(result.stdout)
    assert not [e for e in report["errors"] if not e["file"].endswith(("Dockerfile", "Containerfile"))], report


@pytest.mark.parametrize("name", DOCKERFILES + NOT_DOCKERFILES_NAMES)
def test_the_pre_commit_hooks_and_the_folder_scan_agree(name: str) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    for hook in hooks:
        for path in (name, f"services/api/{name}"):
            matched = bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)
            assert matched == is_dockerfile_name(name) == (name in DOCKERFILES), (hook["id"], path)


def test_the_pre_commit_hooks_exclude_exactly_the_extensions_discovery_skips() -> None:
    for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text()):
        listed = re.search(r"\\\.\(([^)]*)\)", hook["exclude"])
        assert listed is not None, hook["exclude"]
        assert set(listed.group(1).split("|")) == NOT_DOCKERFILES, hook["id"]


@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").exists(), reason="the shared corpus is not on this machine")
def test_every_dockerfile_of_the_corpus_is_still_found() -> None:
    with open(CORPUS / "MANIFEST.tsv", newline="") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    named = {CORPUS / row["repo"].replace("/", "__") / row["path"] for row in rows}
    dockerfiles = {path for path in named if NAMES.search(path.name)}
    assert len(dockerfiles) > 300
    found = {found.path for found in find_dockerfiles([str(CORPUS)])}
    assert dockerfiles <= found, sorted(dockerfiles - found)[:5]


def test_cachefix_temp_files_old_and_new_are_never_linted(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", UNCACHED)
    write(tmp_path / ".Dockerfile.abcd1234.cachefix", UNCACHED)  # left over by cachefix 0.1
    for _ in range(50):  # the names this version gives its temp files
        fd, _name = tempfile.mkstemp(dir=tmp_path, prefix=".cachefix-tmp-")
        os.write(fd, UNCACHED.encode())
        os.close(fd)
    report = json.loads(cachefix("check", "--format", "json", ".", cwd=tmp_path).stdout)
    assert _names(report, tmp_path) == ["Dockerfile"]


def test_concurrent_fixes_of_one_tree_do_not_trip_over_each_others_temp_files(tmp_path: Path) -> None:
    for index in range(150):
        write(tmp_path / f"svc{index}" / "Dockerfile", UNCACHED)
    runs = [subprocess.Popen([sys.executable, "-m", "cachefix", "fix", "-q", "."], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, out + err
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "Dockerfile"]
    assert all("--mount=type=cache" in p.read_text() for p in tmp_path.rglob("Dockerfile"))


def test_gitignore_lines_git_rejects_are_dropped_as_git_drops_them(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "!\nfoo\\\nignored/\n\\\n")
    write(tmp_path / "sub" / ".gitignore", "!\n")
    write(tmp_path / "ignored" / "Dockerfile", UNCACHED)
    write(tmp_path / "sub" / "Dockerfile", UNCACHED)
    result = cachefix("check", "--format", "json", ".", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _names(json.loads(result.stdout), tmp_path) == ["sub/Dockerfile"]


@pytest.mark.parametrize("pattern", ["!", "foo\\"])
def test_an_exclude_pattern_git_would_reject_is_a_usage_error(tmp_path: Path, pattern: str) -> None:
    write(tmp_path / "Dockerfile", UNCACHED)
    result = cachefix("fix", "--exclude", pattern, ".", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == f"cachefix: error: --exclude: invalid pattern {pattern!r}"
    assert (tmp_path / "Dockerfile").read_text() == UNCACHED


@pytest.mark.parametrize("command", ["check", "fix"])
def test_a_path_that_does_not_exist_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    write(tmp_path / "Dockerfile", UNCACHED)
    result = cachefix(command, "Dockerfile", "nonexistent/", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == "cachefix: error: nonexistent/: no such file or folder"
    assert result.stdout == ""
    assert (tmp_path / "Dockerfile").read_text() == UNCACHED  # nothing is done when a path is wrong


def test_a_broken_symlink_named_on_the_command_line_says_so(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").symlink_to("gone")
    result = cachefix("check", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == "cachefix: error: Dockerfile: a symbolic link to a missing file"


@pytest.mark.parametrize("command", ["check", "fix"])
def test_a_folder_without_dockerfiles_says_so_on_stderr(tmp_path: Path, command: str) -> None:
    write(tmp_path / "src" / "main.py", "print('hello')\n")
    result = cachefix(command, "src", cwd=tmp_path)
    assert result.returncode == 0
    assert one_line(result.stderr).startswith("cachefix: no Dockerfiles in src ")


def test_folders_named_dockerfile_and_symlink_loops_are_walked_once(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile" / "Dockerfile", UNCACHED)
    (tmp_path / "loop").symlink_to(".")
    (tmp_path / "Dockerfile" / "up").symlink_to("..")
    report = json.loads(cachefix("check", "--format", "json", ".", cwd=tmp_path).stdout)
    assert report["errors"] == []
    assert _names(report, tmp_path) == ["Dockerfile/Dockerfile"]


def test_a_file_found_twice_through_links_is_linted_once(tmp_path: Path) -> None:
    write(tmp_path / "docker" / "base.Dockerfile", UNCACHED)
    (tmp_path / "Dockerfile").symlink_to("docker/base.Dockerfile")
    os.link(tmp_path / "docker" / "base.Dockerfile", tmp_path / "Containerfile")
    report = json.loads(cachefix("check", "--format", "json", ".", cwd=tmp_path).stdout)
    assert len(report["findings"]) == 1 and report["files"] == 1, report


def test_a_link_out_of_the_tree_is_not_read(tmp_path: Path) -> None:
    secret = write(tmp_path / "home" / "secret", "AWS_SECRET_ACCESS_KEY=hunter2\n")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "Dockerfile").symlink_to(secret)
    (tmp_path / "repo" / "Dockerfile.env").symlink_to("/proc/self/environ")
    folder = cachefix("check", ".", cwd=tmp_path / "repo")
    assert folder.returncode == 0
    assert "hunter2" not in folder.stdout + folder.stderr
    assert f"Dockerfile: not checked: a symbolic link to {secret}, outside ." in folder.stderr
    named = cachefix("check", "Dockerfile", cwd=tmp_path / "repo")
    assert named.returncode == 2
    assert one_line(named.stderr).startswith("cachefix: error: Dockerfile: not checked: a symbolic link to ")


@pytest.mark.parametrize("name", [b"Dockerfile.\xff", b"a\nb.Dockerfile"])
@pytest.mark.parametrize("report_format", ["text", "json", "sarif", "github", "gitlab"])
def test_a_path_reports_cannot_show_is_a_warning_not_a_traceback(tmp_path: Path, name: bytes,
                                                                 report_format: str) -> None:
    (tmp_path / "Dockerfile").write_text(UNCACHED)
    with open(os.path.join(os.fsencode(tmp_path), name), "w") as odd:
        odd.write(UNCACHED)
    result = cachefix("check", "--format", report_format, ".", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr).startswith("cachefix: warning: ")
    assert "not checked: its path" in result.stderr
    if report_format in ("json", "sarif", "gitlab"):
        json.loads(result.stdout)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_a_subfolder_that_cannot_be_read_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", UNCACHED)
    locked = tmp_path / "locked"
    write(locked / "Dockerfile", UNCACHED)
    locked.chmod(0)
    try:
        result = cachefix("check", ".", cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1
    assert "locked: cannot read this folder (Permission denied)" in result.stderr


def test_a_tree_deeper_than_the_recursion_limit_is_walked(tmp_path: Path) -> None:
    folders = [tmp_path / "deep"]
    for _ in range(sys.getrecursionlimit() + 100):
        folders[-1].mkdir()
        folders.append(folders[-1] / "a")
    dockerfile = write(folders[-2] / "Dockerfile", UNCACHED)
    try:
        assert [found.path for found in find_dockerfiles([str(tmp_path)])] == [dockerfile]
    finally:  # pytest's own clean-up of old temporary folders recurses, and would fail on this one
        dockerfile.unlink()
        for folder in reversed(folders[:-1]):
            folder.rmdir()


def test_an_empty_path_is_an_error_not_the_current_folder(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", UNCACHED)
    result = cachefix("fix", "", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == "cachefix: error: an empty path on the command line (an unset variable?)"
    assert (tmp_path / "Dockerfile").read_text() == UNCACHED


def test_a_folder_whose_dockerfiles_are_all_excluded_says_so(tmp_path: Path) -> None:
    write(tmp_path / "vendor" / "Dockerfile", UNCACHED)
    write(tmp_path / ".cachefix.toml", 'exclude = ["vendor/"]\n')
    result = cachefix("check", "vendor", cwd=tmp_path)
    assert result.returncode == 0
    assert one_line(result.stderr) == "cachefix: every Dockerfile in vendor is excluded by the configuration"


def test_a_gitignore_that_is_a_fifo_or_a_device_is_passed_over(tmp_path: Path) -> None:
    write(tmp_path / "a" / "Dockerfile", UNCACHED)
    os.mkfifo(tmp_path / "a" / ".gitignore")
    write(tmp_path / "b" / "Dockerfile", UNCACHED)
    (tmp_path / "b" / ".gitignore").symlink_to("/dev/zero")
    result = cachefix("check", "--format", "json", ".", cwd=tmp_path, timeout=60)
    assert _names(json.loads(result.stdout), tmp_path) == ["a/Dockerfile", "b/Dockerfile"]
