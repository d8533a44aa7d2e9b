"""Writing a fix: links, modes, concurrent edits, failures (issue 8.9, 8.10, 8.14, 8.15)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cachefix import engine, runner
from cachefix.cli import main
from tests.adversarial.files_support import FIXED_LINE, UNCACHED, cachefix, one_line
from tests.helpers import write


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".cachefix-tmp-") or p.name.endswith(".cachefix")]


@pytest.mark.parametrize("how", ["folder", "named"])
def test_a_link_inside_the_tree_is_written_through_and_stays_a_link(tmp_path: Path, how: str) -> None:
    target = write(tmp_path / "zz-shared" / "base.Dockerfile", UNCACHED)
    link = tmp_path / "services" / "api" / "Dockerfile"
    link.parent.mkdir(parents=True)
    link.symlink_to("../../zz-shared/base.Dockerfile")
    result = cachefix("fix", "." if how == "folder" else "services/api/Dockerfile", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert link.is_symlink() and os.readlink(link) == "../../zz-shared/base.Dockerfile"
    assert FIXED_LINE in target.read_text()
    assert _temp_files(tmp_path) == []


def test_a_link_out_of_the_tree_is_left_alone_with_a_warning(tmp_path: Path) -> None:
    outside = write(tmp_path / "shared" / "Dockerfile", UNCACHED)
    repo = tmp_path / "repo"
    write(repo / "Dockerfile", UNCACHED)
    (repo / "Dockerfile.shared").symlink_to(outside)
    result = cachefix("fix", ".", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert one_line(result.stderr) == (f"cachefix: warning: Dockerfile.shared: not checked: a symbolic link to "
                                       f"{outside}, outside .")
    assert (repo / "Dockerfile.shared").is_symlink()
    assert outside.read_text() == UNCACHED
    assert FIXED_LINE in (repo / "Dockerfile").read_text()


def test_hard_links_are_not_split(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "Dockerfile", UNCACHED)
    second = tmp_path / "b" / "Dockerfile"
    second.parent.mkdir()
    os.link(first, second)
    result = cachefix("fix", ".", cwd=tmp_path)
    assert result.returncode == 1  # the finding is still there
    assert one_line(result.stderr) == ("cachefix: warning: a/Dockerfile: not fixed: it has 2 hard links, which "
                                       "replacing it would split (fix one copy and link the others again)")
    assert first.stat().st_ino == second.stat().st_ino and first.read_text() == UNCACHED
    assert "CF101  not fixed" in result.stdout


def test_setuid_and_setgid_bits_survive_a_fix(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", UNCACHED)
    dockerfile.chmod(0o6755)
    assert stat.S_IMODE(dockerfile.stat().st_mode) == 0o6755
    result = cachefix("fix", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert FIXED_LINE in dockerfile.read_text()
    assert stat.S_IMODE(dockerfile.stat().st_mode) == 0o6755


def _fix_with_an_edit_meanwhile(monkeypatch: pytest.MonkeyPatch, dockerfile: Path, edit) -> int:
    """`cachefix fix Dockerfile`, with `edit` run on the file after it was read and fixed in memory
    (as an editor saving while cachefix works on a slow file)."""
    engine_fix = engine.fix

    def slow_fix(*args, **kwargs):
        outcome = engine_fix(*args, **kwargs)
        edit(dockerfile)
        return outcome

    monkeypatch.setattr(engine, "fix", slow_fix)  # the runner imports it when a file is not in the result cache
    monkeypatch.chdir(dockerfile.parent)
    return main(["fix", "--no-cache", dockerfile.name])


def test_a_concurrent_edit_is_kept_and_reported(tmp_path: Path, monkeypatch, capsys) -> None:
    dockerfile = write(tmp_path / "Dockerfile", UNCACHED)
    appended = UNCACHED + "RUN echo added by the user\n"
    status = _fix_with_an_edit_meanwhile(monkeypatch, dockerfile, lambda p: p.write_text(appended))
    assert status == 2
    assert dockerfile.read_text() == appended
    out = capsys.readouterr().out
    assert "Dockerfile: error: changed while cachefix was fixing it: the fix was not written" in out
    assert _temp_files(tmp_path) == []


def test_a_same_size_edit_in_the_same_instant_is_still_seen(tmp_path: Path, monkeypatch, capsys) -> None:
    dockerfile = write(tmp_path / "Dockerfile", UNCACHED)
    before = dockerfile.stat()

    def same_size_same_time(path: Path) -> None:
        path.write_text(UNCACHED.replace("flask", "FLASK"))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert _fix_with_an_edit_meanwhile(monkeypatch, dockerfile, same_size_same_time) == 2
    assert "FLASK" in dockerfile.read_text()


def test_the_same_fix_written_meanwhile_by_another_run_is_not_an_error(tmp_path: Path, monkeypatch) -> None:
    dockerfile = write(tmp_path / "Dockerfile", UNCACHED)
    fixed = engine.fix(UNCACHED, runner.settings_for(runner.Config(tmp_path))).fixed
    assert _fix_with_an_edit_meanwhile(monkeypatch, dockerfile, lambda p: p.write_text(fixed)) == 0
    assert dockerfile.read_text() == fixed
    assert _temp_files(tmp_path) == []


def test_a_file_that_cannot_be_written_is_counted_once(tmp_path: Path, monkeypatch, capsys) -> None:
    write(tmp_path / "Dockerfile", UNCACHED)

    def refused(*_args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    monkeypatch.chdir(tmp_path)
    assert main(["fix", "--format", "json", "Dockerfile"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 1
    assert [e["message"] for e in report["errors"]] == ["cannot write: Permission denied"]
    assert len(report["findings"]) == 1
    assert (tmp_path / "Dockerfile").read_text() == UNCACHED
    assert _temp_files(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write read-only files")
def test_a_read_only_file_is_not_replaced(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "Dockerfile", UNCACHED)
    dockerfile.chmod(0o444)
    result = cachefix("fix", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 2
    assert "Dockerfile: error: cannot write: the file is read-only" in result.stdout
    assert dockerfile.read_text() == UNCACHED


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file of another user takes root")
def test_a_file_whose_owner_cannot_be_kept_is_not_taken_over(tmp_path: Path, monkeypatch, capsys) -> None:
    dockerfile = write(tmp_path / "Dockerfile", UNCACHED)
    os.chown(dockerfile, 12345, 12345)

    def not_permitted(*_args):  # as for a user fixing a group-writable file of another user
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chown", not_permitted)
    monkeypatch.chdir(tmp_path)
    assert main(["fix", "Dockerfile"]) == 1
    assert one_line(capsys.readouterr().err) == (
        "cachefix: warning: Dockerfile: not fixed: it belongs to user 12345 and group 12345, which a new file "
        "written by cachefix could not keep")
    assert dockerfile.read_text() == UNCACHED and dockerfile.stat().st_uid == 12345
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize("command", ["check", "fix"])
def test_the_report_never_replaces_a_file_being_linted(tmp_path: Path, command: str) -> None:
    dockerfile = write(tmp_path / "Dockerfile", UNCACHED)
    (tmp_path / "report.txt").symlink_to("Dockerfile")
    for output in ("Dockerfile", "report.txt"):
        result = cachefix(command, "--output", output, ".", cwd=tmp_path)
        assert result.returncode == 2
        assert one_line(result.stderr) == (f"cachefix: error: --output {output} is one of the files being "
                                           "checked: the report would replace it")
        assert dockerfile.read_text() == UNCACHED
