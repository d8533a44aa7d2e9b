"""CF301's rewrite, run for real: the RUN cachefix writes is executed by bash and by `sh`
(dash here) with a fake `huggingface-cli`, so a failed download is seen to fail the RUN and
copy nothing, rather than copy the file system (`cp -rL "$(...)"/. DIR` with an empty `$(...)`),
and with a fake `hf` that keeps huggingface_hub's cache layout under HF_HOME, so the image is
seen to get the files it asked for as regular files, without the build cache.
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


def fixed_script(tmp_path: Path, run: str, before: str = "") -> str:
    """The shell script of the last RUN after `cachefix fix`, as BuildKit hands it to the shell."""
    dockerfile = write(tmp_path / "Dockerfile", f"FROM python:3.12-slim\n{before}{run}\n")
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


# `hf download REPO [FILE...]` as huggingface_hub 2.4 lays out its cache: blobs, snapshots/<sha>/ of
# links to them, refs/main; it prints the snapshot (one file: the file) and logs each file it fetches.
HF = """#!/bin/sh
[ "$1" = download ] && shift && repo=$1 && shift || exit 2
files=""
for a; do case $a in -*) ;; *) files="$files $a";; esac; done
folder="$HF_HOME/hub/models--$(echo "$repo" | sed 's#/#--#g')"
sha=0123456789abcdef0123456789abcdef01234567
mkdir -p "$folder/refs" "$folder/blobs" "$folder/snapshots/$sha"
printf %s $sha > "$folder/refs/main"
for f in ${files:-config.json model.safetensors sub/notes.txt}; do
  blob="$folder/blobs/$(echo "$f" | tr / _)"
  [ -e "$blob" ] || { echo "$f" > "$blob"; echo "$f" >> "$FETCHED"; }
  mkdir -p "$(dirname "$folder/snapshots/$sha/$f")" && ln -sf "$blob" "$folder/snapshots/$sha/$f"
done
set -- $files
[ $# -eq 1 ] && echo "$folder/snapshots/$sha/$1" || echo "$folder/snapshots/$sha"
"""
SNAPSHOT = "hub/models--org--name/snapshots/0123456789abcdef0123456789abcdef01234567"


def build(tmp_path: Path, run: str) -> list[str]:
    """Run the fixed RUN as a build would: the build cache (its path moved under tmp_path) kept
    between builds, the image's folders fresh; the files the fake fetched."""
    script = fixed_script(tmp_path, run, f"ENV HF_HOME={tmp_path}/image\n")
    fake = write(tmp_path / "bin" / "hf", HF)
    fake.chmod(0o755)
    fetched = tmp_path / "fetched"
    fetched.write_text("")
    shutil.rmtree(tmp_path / "image", ignore_errors=True)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "FETCHED": str(fetched)}
    script = script.replace("/var/cache/huggingface", str(tmp_path / "build-cache"))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return fetched.read_text().split()


def image_files(folder: Path) -> dict[str, str]:
    """The regular files under `folder` and what they hold (a link fails the test)."""
    found = {}
    for path in folder.rglob("*"):
        assert not path.is_symlink(), path
        if path.is_file():
            found[str(path.relative_to(folder))] = path.read_text()
    return found


def test_a_whole_repository_is_fetched_once_and_lands_in_the_image_cache(tmp_path: Path) -> None:
    assert build(tmp_path, "RUN hf download org/name") == ["config.json", "model.safetensors", "sub/notes.txt"]
    assert build(tmp_path, "RUN hf download org/name") == []
    shutil.rmtree(tmp_path / "build-cache")  # not in the image
    assert image_files(tmp_path / "image") == {
        "hub/models--org--name/refs/main": "0123456789abcdef0123456789abcdef01234567",  # no newline: offline loads
        f"{SNAPSHOT}/config.json": "config.json\n", f"{SNAPSHOT}/model.safetensors": "model.safetensors\n",
        f"{SNAPSHOT}/sub/notes.txt": "sub/notes.txt\n"}


def test_single_files_give_the_image_those_files_only(tmp_path: Path) -> None:
    """The build cache's snapshot holds the whole repository from an earlier build."""
    build(tmp_path, "RUN hf download org/name")
    assert build(tmp_path, "RUN hf download org/name config.json sub/notes.txt") == []
    assert set(image_files(tmp_path / "image")) == {
        "hub/models--org--name/refs/main", f"{SNAPSHOT}/config.json", f"{SNAPSHOT}/sub/notes.txt"}


@pytest.mark.parametrize("files", [["sub/notes.txt"], ["config.json", "sub/notes.txt"]])
def test_single_files_to_a_local_dir_keep_their_paths(tmp_path: Path, files: list[str]) -> None:
    target = tmp_path / "image" / "model"
    build(tmp_path, f"RUN hf download org/name {' '.join(files)} --local-dir {target}")
    assert image_files(target) == {f: f"{f}\n" for f in files}


def test_a_failed_download_to_the_cache_fails_the_run(tmp_path: Path) -> None:
    script = fixed_script(tmp_path, "RUN huggingface-cli download ORG/NAME", f"ENV HF_HOME={tmp_path}/image\n")
    done = run_with_cli(tmp_path, "sh", script.replace("/var/cache/huggingface", str(tmp_path / "c")), FAILING_CLI)
    assert done.returncode != 0 and not (tmp_path / "image").exists()
