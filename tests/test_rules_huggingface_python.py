"""CF302: HuggingFace downloads in the Python a RUN runs, read and edited with libcst.

The fixtures (fixtures/huggingface-python/) show the rewrites; these tests pin what a user
relies on besides: the Python is edited exactly, escaped code is reported rather than
guessed at, the copy runs as a shell runs it, and a lint without such calls never loads libcst.
"""

from __future__ import annotations

import ast
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import dockerfile as dockerfile_parser
import pytest

from cachefix.engine import Settings, fix
from cachefix.rules.builtin.huggingface_python import HuggingFacePythonRule
from cachefix.rules.python_code import calls, without_keyword
from cachefix.rules.registry import all_rules


def fixed(text: str) -> str:
    return fix(text, Settings([r() for r in all_rules()])).fixed


def test_removing_an_argument_keeps_every_other_byte() -> None:
    source = "p = snapshot_download(\n    'org/m',  # the model\n    local_dir='/m',\n    revision=\"v1\",\n)\n"
    call = calls(source, ["snapshot_download"])[0]
    start, end = without_keyword(source, call, "local_dir", ["snapshot_download"])
    expected = "p = snapshot_download(\n    'org/m',  # the model\n    revision=\"v1\",\n)\n"
    assert source[:start] + source[end:] == expected


def test_an_argument_whose_removal_would_break_the_code_is_not_removed() -> None:
    source = "snapshot_download(local_dir='/m',)"
    call = calls(source, ["snapshot_download"])[0]
    assert without_keyword(source, call, "local_dir", ["snapshot_download"]) is None


def test_text_that_is_not_python_is_left_alone() -> None:
    assert calls("snapshot_download('a/b'", ["snapshot_download"]) is None
    dockerfile = "FROM python:3.12\nRUN python -c \"snapshot_download('a/b'\"\n"
    assert fixed(dockerfile) == dockerfile


def test_python_escaped_by_the_shell_is_reported_not_edited() -> None:
    dockerfile = ('FROM python:3.12\nRUN python -c "from huggingface_hub import snapshot_download; '
                  'snapshot_download(\\"org/m\\", local_dir=\\"/models/m\\")"\n')
    assert fixed(dockerfile) == dockerfile


def test_python_written_over_continued_lines_is_edited_in_place() -> None:
    """A `-c` script spread over lines with Dockerfile continuations (`\\` at line ends) is the
    text Python gets once BuildKit joins the lines: `local_dir=` goes, the other lines stay as
    they were, and the script the shell runs still parses, without it."""
    dockerfile = ('FROM python:3.12\nRUN mkdir -p /data && \\\n    python -c "\\\n'
                  "from huggingface_hub import snapshot_download; \\\n"
                  "snapshot_download(repo_id='org/assets', repo_type='dataset', \\\n"
                  "                  local_dir='/data/assets')\" && \\\n    ls /data/assets\n")
    result = fixed(dockerfile)
    run = dockerfile_parser.parse_string(result)[-1]
    argv = shlex.split(run.value[0])
    script = argv[argv.index("-c") + 1]
    call = next(node for node in ast.walk(ast.parse(script)) if isinstance(node, ast.Call))
    assert [k.arg for k in call.keywords] == ["repo_id", "repo_type"]
    assert "mkdir -p /data/assets && cp -RL" in run.value[0]
    # The lines before the argument are as they were; the continuation inside it went with it.
    assert 'python -c "\\\nfrom huggingface_hub import snapshot_download; \\\n' in result
    assert result.count("\\\n") == dockerfile.count("\\\n") - 1


def test_a_local_dir_the_code_reads_itself_is_not_rewritten() -> None:
    dockerfile = ("FROM python:3.12\nRUN python3 - <<'EOF'\nimport os\nfrom huggingface_hub import snapshot_download\n"
                  "snapshot_download('org/m', local_dir='/models/m')\nprint(os.listdir('/models/m'))\nEOF\n")
    assert fixed(dockerfile) == dockerfile


@pytest.mark.skipif(not shutil.which("sh"), reason="needs sh")
def test_the_copy_puts_regular_files_where_the_cache_is_read(tmp_path: Path) -> None:
    """The rewritten command, run by sh with a fake `python` that fills the build cache as
    huggingface_hub does (links into blobs/): the image's cache gets regular files and refs."""
    build, home = tmp_path / "build", tmp_path / "home"
    dockerfile = ("FROM python:3.12\nRUN python -c \"from huggingface_hub import snapshot_download; "
                  "snapshot_download('org/m')\"\n")
    run = fixed(dockerfile).splitlines()[-1].split(" ", 2)[2]
    run = run.replace("/var/cache/huggingface", str(build)).replace("/root/.cache/huggingface", str(home))
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nr="$HF_HOME/hub/models--org--m"\n'
                    'mkdir -p "$r/blobs" "$r/refs" "$r/snapshots/abc"\necho w > "$r/blobs/1"\n'
                    'ln -sf ../../blobs/1 "$r/snapshots/abc/w.bin"\nprintf abc > "$r/refs/main"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", run], check=True, env=env)
    copied = home / "hub" / "models--org--m"
    assert (copied / "snapshots" / "abc" / "w.bin").read_text() == "w\n"
    assert not (copied / "snapshots" / "abc" / "w.bin").is_symlink()
    assert (copied / "refs" / "main").read_text() == "abc"


def test_a_lint_without_downloads_in_python_does_not_import_libcst(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nRUN pip install flask && python -c 'print(1)'\n")
    code = ("import sys, runpy; sys.argv = ['cachefix', 'check', sys.argv[1]]\n"
            "try:\n    runpy.run_module('cachefix', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('libcst' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(dockerfile)], capture_output=True, text=True).stdout
    assert out.strip().endswith("False")


def test_the_rule_is_documented() -> None:
    assert "## Fix safety" in HuggingFacePythonRule.documentation()
