"""CF301's rewrite, run for real: the RUN cachefix writes is executed by bash and by `sh`
(dash here) with a fake `huggingface-cli`, so a failed download is seen to fail the RUN and
copy nothing, rather than copy the file system (`cp -rL "$(...)"/. DIR` with an empty `$(...)`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write
from tests.oracle import parse as oracle_parse

SHELLS = [s for s in ("bash", "sh") if shutil.which(s)]
FAILING_CLI = "#!/bin/sh\necho '401 Client Error: this repository is gated' >&2\nexit 1\n"
# Prints the snapshot folder as `--quiet` does; the file in it is a link, as in the HF cache.
WORKING_CLI = """#!/bin/sh
snapshot="$FAKE_HF_CACHE/snapshots/abc"
mkdir -p "$FAKE_HF_CACHE/blobs" "$snapshot"
echo weights > "$FAKE_HF_CACHE/blobs/1234"
ln -sf ../../blobs/1234 "$snapshot/model.safetensors"
echo "$snapshot"
"""


def fixed_script(tmp_path: Path, run: str) -> str:
    """The shell script of the last RUN after `cachefix fix`, as BuildKit hands it to the shell."""
    dockerfile = write(tmp_path / "Dockerfile", f"FROM python:3.12-slim\n{run}\n")
    done = subprocess.run([sys.executable, "-m", "cachefix", "fix", str(dockerfile)], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    last = oracle_parse(dockerfile.read_text())[-1]
    assert any("type=cache" in flag for flag in last.flags)
    return last.value[0]


def run_with_cli(tmp_path: Path, shell: str, script: str, cli: str) -> subprocess.CompletedProcess:
    fake = write(tmp_path / "bin" / "huggingface-cli", cli)
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
           "FAKE_HF_CACHE": str(tmp_path / "hf-cache")}
    return subprocess.run([shell, "-c", script], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(params=["local-dir", "unguarded-substitution"])
def script(request, tmp_path: Path) -> str:
    """The rewrite of a `--local-dir` download, and of the old pattern that lost a failure."""
    target = tmp_path / "models" / "x"
    if request.param == "local-dir":
        run = f"RUN huggingface-cli download ORG/NAME --local-dir {target}"
    else:
        run = (f"RUN --mount=type=cache,target=/root/.cache/huggingface mkdir -p {target} && "
               f'cp -rL "$(huggingface-cli download ORG/NAME --quiet)"/. {target}')
    return fixed_script(tmp_path, run)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_failed_download_fails_the_run_and_copies_nothing(tmp_path: Path, script: str, shell: str) -> None:
    done = run_with_cli(tmp_path, shell, script, FAILING_CLI)
    assert done.returncode != 0
    target = tmp_path / "models" / "x"
    assert not target.exists() or list(target.iterdir()) == []


@pytest.mark.parametrize("shell", SHELLS)
def test_a_download_is_copied_out_with_links_resolved(tmp_path: Path, script: str, shell: str) -> None:
    done = run_with_cli(tmp_path, shell, script, WORKING_CLI)
    assert done.returncode == 0, done.stderr
    copied = tmp_path / "models" / "x" / "model.safetensors"
    assert copied.read_text() == "weights\n" and not copied.is_symlink()


@pytest.mark.parametrize("shell", SHELLS)
def test_an_or_after_the_download_still_covers_all_of_it(tmp_path: Path, shell: str) -> None:
    """`hf download ... --local-dir D || echo skipped`: the rewrite keeps `||` applying to the whole download."""
    target = tmp_path / "models" / "x"
    script = fixed_script(tmp_path, f"RUN huggingface-cli download ORG/NAME --local-dir {target} || echo skipped")
    done = run_with_cli(tmp_path, shell, script, FAILING_CLI)
    assert done.returncode == 0 and done.stdout == "skipped\n"
    assert not target.exists() or list(target.iterdir()) == []
