"""`cachefix fix` / `cachefix check` as a user runs them: files, exit codes, output, safety."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write
from tests.oracle import non_cache_changes
from tests.oracle import parse as oracle_parse

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
AI_STACK = CORPUS / "MasterofNull__NixOS-Dev-Quick-Deploy" / "ai-stack"

PIP_INSTALL = "pip install -r requirements.txt"


def cachefix(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cachefix", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=120)



@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path / "svc" / "Dockerfile", f"FROM python:3.12\nRUN {PIP_INSTALL}\n")
    write(tmp_path / "clean" / "Dockerfile", "FROM python:3.12\nCMD [\"python\"]\n")
    return tmp_path


def test_bare_path_means_fix_and_writes_the_mount(project: Path) -> None:
    result = cachefix(str(project))
    assert result.returncode == 0, result.stdout + result.stderr
    text = (project / "svc" / "Dockerfile").read_text()
    assert f"RUN --mount=type=cache,target=/root/.cache/pip {PIP_INSTALL}" in text
    assert text.startswith("# syntax=docker/dockerfile:1.3\n")
    assert "svc/Dockerfile" in result.stdout


def test_check_reports_and_exits_1_without_writing(project: Path) -> None:
    before = (project / "svc" / "Dockerfile").read_bytes()
    result = cachefix("check", str(project))
    assert result.returncode == 1
    assert "CF101" in result.stdout and "svc/Dockerfile" in result.stdout
    assert (project / "svc" / "Dockerfile").read_bytes() == before


def test_check_on_clean_files_exits_0(project: Path) -> None:
    assert cachefix("check", str(project / "clean")).returncode == 0


def test_diff_prints_a_patch_and_writes_nothing(project: Path) -> None:
    before = (project / "svc" / "Dockerfile").read_bytes()
    result = cachefix("fix", "--diff", str(project))
    assert result.returncode == 1  # changes would be made
    assert f"+RUN --mount=type=cache,target=/root/.cache/pip {PIP_INSTALL}" in result.stdout
    assert result.stdout.startswith("--- a/")
    assert (project / "svc" / "Dockerfile").read_bytes() == before


def test_json_report_has_the_documented_shape(project: Path) -> None:
    result = cachefix("check", "--format", "json", str(project))
    report = json.loads(result.stdout)
    assert report["version"] == 1 and report["files"] == 2 and report["errors"] == []
    [finding] = report["findings"]
    assert {k: finding[k] for k in ("line", "code", "manager", "fixable")} == \
        {"line": 2, "code": "CF101", "manager": "pip", "fixable": True}
    assert finding["file"].endswith("svc/Dockerfile")
    assert any("--mount=type=cache" in e["replacement"] for e in finding["fix"]["edits"])


def test_select_and_ignore(project: Path) -> None:
    write(project / "svc" / "Dockerfile", "FROM debian\nRUN apt-get update && apt-get install -y curl\n"
                                          f"RUN {PIP_INSTALL}\n")
    only_apt = json.loads(cachefix("check", "--select", "CF201", "--format", "json", str(project)).stdout)
    assert {f["code"] for f in only_apt["findings"]} == {"CF201"}
    no_apt = json.loads(cachefix("check", "--ignore", "apt", "--format", "json", str(project)).stdout)
    assert {f["code"] for f in no_apt["findings"]} == {"CF101"}
    bad = cachefix("check", "--select", "CF999", str(project))
    assert bad.returncode == 2 and "CF999" in bad.stderr and "Traceback" not in bad.stderr


def test_syntax_option_chooses_or_omits_the_directive(project: Path) -> None:
    cachefix("fix", "--syntax", "none", str(project))
    text = (project / "svc" / "Dockerfile").read_text()
    assert "--mount=type=cache" in text and "# syntax" not in text
    write(project / "svc" / "Dockerfile", f"FROM python:3.12\nRUN {PIP_INSTALL}\n")
    cachefix("fix", "--syntax", "docker/dockerfile:1.7", str(project))
    assert (project / "svc" / "Dockerfile").read_text().startswith("# syntax=docker/dockerfile:1.7\n")


def test_finds_dockerfiles_by_name_and_respects_gitignore(tmp_path: Path) -> None:
    body = f"FROM python:3.12\nRUN {PIP_INSTALL}\n"
    for name in ("Containerfile", "api.Dockerfile", "Dockerfile.prod", "Dockerfile-dev", "x.containerfile",
                 "ignored/Dockerfile", ".git/Dockerfile", "Dockerfile.dockerignore", "notes.txt"):
        write(tmp_path / name, body)
    write(tmp_path / ".gitignore", "ignored/\n")
    report = json.loads(cachefix("check", "--format", "json", str(tmp_path)).stdout)
    found = sorted(Path(f["file"]).relative_to(tmp_path).as_posix() for f in report["findings"])
    assert found == ["Containerfile", "Dockerfile-dev", "Dockerfile.prod", "api.Dockerfile", "x.containerfile"]
    excluded = json.loads(cachefix("check", "--format", "json", "--exclude", "*.prod", str(tmp_path)).stdout)
    assert not any(f["file"].endswith("Dockerfile.prod") for f in excluded["findings"])


def test_bad_files_get_one_line_errors_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "Dockerfile").write_bytes(b"FROM x\x00\x01\x02")
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "Dockerfile").write_bytes("FROM x\nLABEL a=\"caf\xe9\"\n".encode("latin-1"))
    invalid = write(tmp_path / "invalid" / "Dockerfile", "FROM x\nRUN pip install a\nbogus line here\n")
    good = write(tmp_path / "good" / "Dockerfile", f"FROM python:3.12\nRUN {PIP_INSTALL}\n")
    original_invalid = invalid.read_bytes()
    result = cachefix(str(tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode == 2
    assert "Traceback" not in out
    assert "binary" in out and "not UTF-8" in out
    assert f"{invalid}:3" in out and "unknown instruction: bogus" in out
    assert invalid.read_bytes() == original_invalid
    assert "--mount=type=cache" in good.read_text()


def test_write_is_atomic_and_keeps_the_mode(project: Path) -> None:
    target = project / "svc" / "Dockerfile"
    target.chmod(0o640)
    cachefix(str(project))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".cachefix")]


def test_no_colour_when_not_a_terminal_or_no_color_set(project: Path) -> None:
    assert "\x1b[" not in cachefix("check", str(project)).stdout
    assert "\x1b[" not in cachefix("check", str(project), env={"NO_COLOR": "1"}).stdout


def test_rules_and_explain() -> None:
    listing = cachefix("rules")
    assert listing.returncode == 0
    for code in ("CF001", "CF101", "CF201", "CF301"):
        assert code in listing.stdout
    explained = cachefix("explain", "cf101")
    assert explained.returncode == 0
    assert "## Why is this bad?" in explained.stdout and "/root/.cache/pip" in explained.stdout
    assert cachefix("explain", "CF999").returncode == 2


def test_version_and_module_entry_point() -> None:
    result = cachefix("--version")
    assert result.returncode == 0 and result.stdout.startswith("cachefix ")


def test_linting_does_not_import_the_download_runtime_or_libcst(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", f"FROM python:3.12\nRUN {PIP_INSTALL}\n")
    code = ("import sys; from cachefix.cli import main; rc = main(['check', sys.argv[1]]); "
            "heavy = sorted(m for m in ('httpx', 'libcst', 'rich', 'sqlite3', 'cachefix.downloads.api') "
            "if m in sys.modules); print('HEAVY', heavy)")
    result = subprocess.run([sys.executable, "-c", code, str(dockerfile)], capture_output=True, text=True)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


@pytest.mark.skipif(not AI_STACK.is_dir(), reason="../shared/corpus is not beside this checkout")
def test_ai_stack_end_to_end(tmp_path: Path) -> None:
    tree = tmp_path / "ai-stack"
    shutil.copytree(AI_STACK, tree)
    invalid = tree / "mcp-servers" / "embeddings-service" / "Dockerfile"
    invalid_bytes = invalid.read_bytes()
    first = cachefix(str(tree))
    assert first.returncode == 2
    assert f"{invalid}:14" in first.stdout + first.stderr
    assert invalid.read_bytes() == invalid_bytes

    valid = [p for p in sorted(tree.rglob("Dockerfile")) if p != invalid]
    assert len(valid) == 8
    for path in valid:
        for command in oracle_parse(path.read_text()):
            if command.cmd.upper() != "RUN":
                continue
            text = " ".join(command.value)
            mounts = " ".join(f for f in command.flags if "type=cache" in f)
            if "pip install" in text:
                assert "target=/root/.cache/pip" in mounts, f"{path}: {text}"
            if "apt-get install" in text:
                assert "target=/var/cache/apt,sharing=locked" in mounts, f"{path}: {text}"
                assert "target=/var/lib/apt/lists" in mounts, f"{path}: {text}"

    snapshot = {p: p.read_bytes() for p in tree.rglob("Dockerfile")}
    second = cachefix(str(tree))
    assert {p: p.read_bytes() for p in tree.rglob("Dockerfile")} == snapshot
    assert second.returncode == 2
    check = json.loads(cachefix("check", "--format", "json", str(tree)).stdout)
    assert check["findings"] == []
    assert [e["file"] for e in check["errors"]] == [str(invalid)]


def test_a_large_tree_is_linted_in_parallel_with_the_same_result(tmp_path: Path) -> None:
    for i in range(60):  # above the size where workers are started
        write(tmp_path / f"svc{i:02}" / "Dockerfile", f"FROM python:3.12\nRUN {PIP_INSTALL}\n")
    write(tmp_path / "svc30" / "Dockerfile", "FROM python:3.12\nnot an instruction\n")
    check = json.loads(cachefix("check", "--format", "json", str(tmp_path)).stdout)
    assert [Path(f["file"]).parent.name for f in check["findings"]] == [f"svc{i:02}" for i in range(60) if i != 30]
    assert [Path(e["file"]).parent.name for e in check["errors"]] == ["svc30"]
    assert cachefix(str(tmp_path)).returncode == 2
    fixed = [p for p in tmp_path.rglob("Dockerfile") if "--mount=type=cache" in p.read_text()]
    assert len(fixed) == 59


@pytest.mark.skipif(not AI_STACK.is_dir(), reason="../shared/corpus is not beside this checkout")
def test_every_nixos_quick_deploy_dockerfile_is_fixed_with_only_cache_changes(tmp_path: Path) -> None:
    tree = tmp_path / "project"
    shutil.copytree(AI_STACK.parent, tree)
    originals = {p: p.read_text() for p in tree.rglob("Dockerfile")}
    assert len(originals) == 11
    cachefix(str(tree))
    fixed = {p: p.read_text() for p in originals}
    for path, before in originals.items():
        if "embeddings-service" in str(path) and "ai-stack" in str(path):
            assert fixed[path] == before  # BuildKit rejects it: untouched
            continue
        assert fixed[path] != before, f"{path}: nothing fixed"
        assert non_cache_changes(before, fixed[path]) == [], path
    cachefix(str(tree))
    assert {p: p.read_text() for p in originals} == fixed  # a second run changes nothing
