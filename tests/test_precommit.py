"""The pre-commit hooks in .pre-commit-hooks.yaml, run by the real pre-commit on a real git repository.

pre-commit installs the hook repository into its own virtualenv (pip, from PyPI), as it would
for a user. The hook repository is a snapshot of this checkout's files as they are on disk
(what `pre-commit try-repo` would use), committed in a temporary repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cachefix.discovery import is_dockerfile_name

ROOT = Path(__file__).resolve().parent.parent
UNCACHED = "FROM python:3.12-slim\nRUN pip install --no-cache-dir flask\n"


def git(cwd: Path, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=check, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    return {**os.environ, "PRE_COMMIT_HOME": str(home / "pre-commit"), "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory, env) -> tuple[Path, str]:
    """This checkout's tracked and new files, committed in a repository of their own."""
    repo = tmp_path_factory.mktemp("hook-repo")
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", env=env).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git(repo, "init", "-q", env=env)
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "-m", "snapshot", env=env)
    return repo, git(repo, "rev-parse", "HEAD", env=env).stdout.strip()


@pytest.fixture()
def project(tmp_path, hook_repo, env) -> Path:
    """A git repository using both hooks, with pre-commit installed as its git hook."""
    repo, rev = hook_repo
    config = {"repos": [{"repo": str(repo), "rev": rev,
                         "hooks": [{"id": "cachefix"}, {"id": "cachefix-check"}]}]}
    (tmp_path / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    git(tmp_path, "init", "-q", env=env)
    subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=600)
    return tmp_path


def pre_commit(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)


def test_the_hook_manifest_matches_the_names_cachefix_finds() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"cachefix", "cachefix-check"}
    names = ["Dockerfile", "Containerfile", "api.Dockerfile", "x.containerfile", "Dockerfile.prod",
             "Dockerfile-dev", "dockerfile", "Dockerfile.dockerignore", ".dockerignore", "mydockerfile",
             "README.md", "Dockerfiles", "ops/Containerfile.gpu", "Dockerfile/notes.txt"]
    for hook in hooks:
        for name in names:
            matched = bool(re.search(hook["files"], name)) and not re.search(hook["exclude"], name)
            assert matched == is_dockerfile_name(name.rsplit("/", 1)[-1]), name


def test_check_hook_fails_and_changes_nothing(project: Path, env) -> None:
    (project / "Containerfile").write_text(UNCACHED)
    git(project, "add", "Containerfile", env=env)
    run = pre_commit(project, env, "run", "cachefix-check", "--files", "Containerfile")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "CF101" in run.stdout
    assert (project / "Containerfile").read_text() == UNCACHED


def test_a_commit_is_fixed_then_the_next_one_passes(project: Path, env) -> None:
    (project / "services").mkdir()
    for name in ("Dockerfile", "services/api.Dockerfile", "Containerfile.gpu"):
        (project / name).write_text(UNCACHED)
    (project / "README.md").write_text("pip install --no-cache-dir flask\n")
    git(project, "add", "-A", env=env)

    first = git(project, "commit", "-m", "add images", env=env, check=False)
    assert first.returncode != 0, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout + first.stderr
    for name in ("Dockerfile", "services/api.Dockerfile", "Containerfile.gpu"):
        fixed = (project / name).read_text()
        assert "RUN --mount=type=cache,target=/root/.cache/pip pip install flask" in fixed, name
    assert (project / "README.md").read_text() == "pip install --no-cache-dir flask\n"
    assert git(project, "log", "--oneline", env=env, check=False).returncode != 0  # nothing committed

    git(project, "add", "-A", env=env)
    second = git(project, "commit", "-m", "add images", env=env, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert git(project, "status", "--porcelain", env=env).stdout == ""
