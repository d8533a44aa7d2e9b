"""The README, run as a new user would run it, so that what it says cannot drift from what cachefix does.

The quickstart's snippets are taken out of README.md and run as pasted: `pip install .` in a clone
of this repository (into a fresh virtualenv), the commands on a copy of `examples/ai-stack/` (never
on the repository itself), and both pre-commit blocks in a fresh git repository, offline: the local
hook uses the installed `cachefix`; the pinned one is installed by pre-commit from a tagged clone,
with pip reading the machine's package index configuration. Every link, path and option the README
names is checked too. A missing tool (git, pre-commit, the `cachefix` command) fails the tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.helpers import write

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
OWN_DOCS = [ROOT / "README.md", *(ROOT / "docs" / name for name in ("ci.md", "design.md", "measurements.md"))]
EXAMPLE = ROOT / "examples" / "ai-stack"
PLACEHOLDER_REPO = "<URL of your clone or fork>"
UNCACHED = "FROM python:3.12-slim\nRUN pip install --no-cache-dir flask\n"
TIMEOUT = 900


def section(title: str) -> str:
    """The text under `## title`, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no section `## {title}`"
    return match.group(1)


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of one language, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def prose(text: str) -> str:
    """Markdown without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[str]:
    """A shell block's command lines without their trailing `# comments`, as a user pastes them."""
    return [re.sub(r"\s+# .*$", "", line).strip() for line in block.splitlines() if line.strip()]


def sh(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def git(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          check=True)


def pre_commit(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes: to tell exactly what a command wrote."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A user's environment: a fresh HOME, git identity, and the installed `cachefix` first on PATH."""
    home = tmp_path_factory.mktemp("home")
    path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    for tool in ("cachefix", "git", "bash"):
        if shutil.which(tool, path=path) is None:
            pytest.fail(f"`{tool}` is not on PATH: run scripts/test, which installs what the tests need")
    if importlib.util.find_spec("pre_commit") is None:
        pytest.fail("pre-commit is not installed: run scripts/test (it is in the test extra)")
    return {**os.environ, "PATH": path, "HOME": str(home), "PRE_COMMIT_HOME": str(home / "pre-commit"),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory, env) -> Path:
    """A clone of this repository (what is committed), with a tag of its own, as a user or pre-commit gets it."""
    path = tmp_path_factory.mktemp("clone") / "cachefix"
    git(ROOT, env, "clone", "-q", str(ROOT), str(path))
    git(path, env, "tag", "v0.0.0-readme-test")
    return path


def new_repo(folder: Path, env: dict[str, str], config: str, files: dict[str, str]) -> Path:
    """A git repository holding `files`, all staged, with `config` as its .pre-commit-config.yaml."""
    for name, text in {**files, ".pre-commit-config.yaml": config}.items():
        write(folder / name, text)
    git(folder, env, "init", "-q")
    git(folder, env, "add", "-A")
    return folder


def test_the_first_screen_commands_install_and_show_the_patch(clone, env, tmp_path) -> None:
    first_screen = README.split("\n## ", 1)[0]
    install_and_diff, run_tests = commands(blocks(first_screen, "sh")[0])
    assert run_tests == "scripts/test" and os.access(ROOT / "scripts" / "test", os.X_OK)
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()

    subprocess.run([sys.executable, "-m", "virtualenv", "-q", str(tmp_path / "venv")], check=True, timeout=TIMEOUT)
    user = {**env, "PATH": os.pathsep.join([str(tmp_path / "venv" / "bin"), env["PATH"]])}
    shown = sh(install_and_diff, clone, user)
    assert shown.returncode == 1, shown.stderr  # 1: changes would be made
    assert "\n--- a/examples/ai-stack/api/Dockerfile\n" in shown.stdout  # after pip's own output
    assert "+RUN --mount=type=cache" in shown.stdout
    assert git(clone, env, "status", "--porcelain", "--untracked-files=no").stdout == ""  # nothing written

    (install,) = commands(blocks(section("Quickstart"), "sh")[0])
    installed = sh(install, clone, user)
    assert installed.returncode == 0, installed.stderr
    probe = [str(tmp_path / "venv" / "bin" / "python"), "-c", "import cachefix; print(cachefix.__file__)"]
    where = subprocess.run(probe, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "venv")  # a real install, not the clone's files
    assert shutil.which("cachefix", path=user["PATH"]) == str(tmp_path / "venv" / "bin" / "cachefix")


def test_the_quickstart_commands_do_what_it_says(tmp_path, env) -> None:
    project, preview = shutil.copytree(EXAMPLE, tmp_path / "project"), shutil.copytree(EXAMPLE, tmp_path / "preview")
    diff, apply, check = commands(blocks(section("Quickstart"), "sh")[1])
    assert (diff, apply, check) == ("cachefix --diff .", "cachefix .", "cachefix check .")
    original = tree(project)

    assert sh(check, project, env).returncode == 1  # an uncached install remains

    shown = sh(diff, project, env)
    assert shown.returncode == 1 and "would fix" in shown.stderr, shown.stderr
    assert "+RUN --mount=type=cache" in shown.stdout and tree(project) == original  # a patch; nothing written
    applied = subprocess.run(["git", "apply", "-"], input=shown.stdout, cwd=preview, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr

    fixed = sh(apply, project, env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr  # every finding fixed, the models included
    assert tree(project) == tree(preview) != original  # wrote exactly the patch --diff showed
    assert sh(check, project, env).returncode == 0
    before_rerun = tree(project)
    assert sh(apply, project, env).returncode == 0 and tree(project) == before_rerun  # nothing left to do


def test_the_quickstart_advice_silences_what_cannot_be_fixed(tmp_path, env) -> None:
    """A finding that needs a guess stays `not fixed`; the README's comment, above the instruction, silences it."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM registry.example/base\nRUN useradd -m app\nUSER app\nRUN pip install flask\n")
    fixed = sh("cachefix .", tmp_path, env)
    assert fixed.returncode == 1 and "not fixed" in fixed.stdout, fixed.stdout + fixed.stderr
    suppression = re.search(r"`(# cachefix: ignore\[[^`]*)`", section("Quickstart")).group(1)
    assert "[CF101]" in suppression
    lines = dockerfile.read_text().splitlines(keepends=True)
    dockerfile.write_text("".join([*lines[:3], suppression + "\n", *lines[3:]]))
    assert sh("cachefix check .", tmp_path, env).returncode == 0


def test_the_example_diff_is_the_tools_output(tmp_path, env) -> None:
    text = section("What it does")
    command = re.search(r"\(`(cachefix --diff [^`]+)`\)", text).group(1)
    (shown,) = blocks(text, "diff")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    result = sh(command, tmp_path, env)
    assert (result.returncode, result.stdout) == (1, shown)


def test_the_quickstart_pre_commit_block_runs_with_the_installed_cachefix(tmp_path, env) -> None:
    (block,) = blocks(section("Quickstart"), "yaml")
    assert yaml.safe_load(block)["repos"][0]["repo"] == "local"
    repo = new_repo(tmp_path, env, block, {"Dockerfile": UNCACHED, "tools/dockerfile.py": '"""Not a Dockerfile."""\n',
                                           "docs/Dockerfile.md": "# How we build\n"})

    first = pre_commit(repo, env, "run", "--all-files")
    assert first.returncode == 1 and "CF101" in first.stdout, first.stdout + first.stderr
    assert "dockerfile.py" not in first.stdout and "Dockerfile.md" not in first.stdout  # not read
    assert (repo / "Dockerfile").read_text() == UNCACHED  # a check changes nothing

    assert sh("cachefix .", repo, env).returncode == 0
    git(repo, env, "add", "-A")
    second = pre_commit(repo, env, "run", "--all-files")
    assert second.returncode == 0, second.stdout + second.stderr


def test_the_pinned_pre_commit_block_installs_cachefix_from_a_clone(tmp_path, env, clone) -> None:
    (block,) = [b for b in blocks(section("In CI and on commit"), "yaml") if "rev:" in b]
    assert f"repo: {PLACEHOLDER_REPO}" in block and "pre-commit autoupdate" in section("In CI and on commit")
    repo = new_repo(tmp_path, env, block.replace(PLACEHOLDER_REPO, str(clone)), {"Dockerfile": UNCACHED})

    update = pre_commit(repo, env, "autoupdate")
    assert update.returncode == 0, update.stdout + update.stderr
    rev = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())["repos"][0]["rev"]
    assert rev in git(clone, env, "tag", "--points-at", "HEAD").stdout.split()

    first = pre_commit(repo, env, "run", "--all-files")
    assert first.returncode == 1 and "files were modified by this hook" in first.stdout, first.stdout + first.stderr
    assert "RUN --mount=type=cache,target=/root/.cache/pip pip install flask" in (repo / "Dockerfile").read_text()
    git(repo, env, "add", "-A")
    second = pre_commit(repo, env, "run", "--all-files")
    assert second.returncode == 0, second.stdout + second.stderr


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a markdown file's headings."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", OWN_DOCS, ids=lambda p: p.name)
def test_every_link_and_path_named_exists(doc: Path) -> None:
    text = prose(doc.read_text())
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"https?://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.exists(), f"{doc.name}: link to {target}"
        if anchor:
            assert anchor in _anchors(path), f"{doc.name}: no heading for {target}"
    for name in re.findall(r"`((?:examples|docs|scripts|cachefix|fixtures|benchmarks|tests|\.ci)/[^`<\s]*)`", text):
        assert (ROOT / name).exists(), f"{doc.name}: `{name}` does not exist"


def _help(env: dict[str, str], *command: str) -> str:
    result = subprocess.run(["cachefix", *command, "--help"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _options(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def _defined(help_text: str) -> set[str]:
    """The options a --help output defines (its option lines), not those its prose mentions."""
    return set(re.findall(r"^ {2}(?:-\w(?: \S+)?, )?(--[a-z][a-z0-9-]*)", help_text, re.MULTILINE))


def test_every_option_named_is_accepted_and_every_lint_option_is_named(env) -> None:
    table = "\n".join(line for line in section("Commands and options").splitlines() if line.startswith("|"))
    lint_options = _defined(_help(env, "fix")) | _defined(_help(env, "check"))
    assert _options(table) <= lint_options
    assert lint_options - {"--help"} <= _options(table)
    lines = [line for block in blocks(README, "sh") for line in commands(block)]
    lines += re.findall(r"`([^`]+)`", prose(README))
    for line in (line for line in lines if line.startswith("cachefix ")):
        words = line.split()
        if words[1] == "cache":
            command = words[1:3]
        elif words[1] in ("fix", "check", "rules", "explain", "fetch", "shell-init"):
            command = words[1:2]
        else:
            command = ["fix"]  # `cachefix PATH...` is `cachefix fix PATH...`
        assert _options(line) <= _defined(_help(env, *command)), line


@pytest.mark.parametrize(("command", "status"), [
    ("cachefix", 2),  # no PATH: the help, not a rewrite of the current folder
    ("cachefix check no-such-folder/", 2),
    ("cachefix explain CF201", 0),
    ("cachefix explain apt-cache-mount", 0),
    ("cachefix explain apt", 0),
])
def test_what_the_readme_says_about_the_command_line(tmp_path, env, command: str, status: int) -> None:
    result = sh(command, tmp_path, env)
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    if command.startswith("cachefix explain"):
        assert "CF201" in result.stdout
    assert tree(tmp_path) == {}  # nothing written


def test_rules_can_be_listed_as_json(tmp_path, env) -> None:
    assert "`--format json` for scripts" in section("Commands and options")
    result = sh("cachefix rules --format json", tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "CF101" in json.dumps(json.loads(result.stdout))


def test_discovery_reads_the_names_the_readme_lists_and_skips_the_rest(tmp_path, env) -> None:
    text = section("Which files it reads")
    read = ["Dockerfile.dev", "Dockerfile.prod", "Dockerfile.gpu", "dockerfile", "api.DockerFile", "CONTAINERFILE.gpu"]
    assert all(f"`{name}`" in text for name in read)
    skipped_bullet = text.split("\n- ")[1]
    skipped = [f"Dockerfile.{ext}" for ext in re.findall(r"`\.([a-z0-9]+)`", skipped_bullet)]
    skipped += ["dockerfile.py", "Dockerfile.md", "Dockerfile.j2", "Dockerfile~"]
    assert len(skipped) > 30
    for number, name in enumerate(read):  # one folder each: `dockerfile` and `Dockerfile.dev` may be one name
        write(tmp_path / str(number) / name, UNCACHED)
    for name in skipped:
        write(tmp_path / "skipped" / name, "not a Dockerfile {{ at all }}\n")

    result = sh("cachefix check --format json .", tmp_path, env)
    report = json.loads(result.stdout)
    assert (result.returncode, report["errors"]) == (1, [])
    assert sorted(Path(f["file"]).name for f in report["findings"]) == sorted(read)


@pytest.mark.parametrize(("dockerfile", "mount"), [
    ("FROM python:3.12-slim\nUSER 1000\nRUN pip install flask\n", "uid=1000,gid=1000"),
    ("FROM python:3.12-slim\nRUN useradd -u 1234 -m app\nUSER app\nRUN pip install flask\n", "uid=1234"),
    ("FROM python:3.12-slim\nRUN adduser --uid 1234 --disabled-password app\nUSER app\nRUN pip install flask\n",
     "uid=1234"),
    ("FROM python:3.12-slim\nARG UID=10001\nRUN adduser --disabled-password --uid \"${UID}\" appuser\n"
     "USER appuser\nRUN pip install flask\n", "uid=${UID},gid=${UID}"),
    ("FROM node:20\nUSER node\nRUN npm ci\n", "uid=1000,gid=1000"),
    ("FROM mambaorg/micromamba:1.5\nRUN micromamba install -y numpy\n", "uid=57439,gid=57439"),
    ("FROM python:3.12-slim\nUSER nobody\nRUN pip install --user flask\n", "uid=65534,gid=65534"),
    ("FROM python:3.12-slim\nRUN useradd -m app\nUSER app\nRUN pip install flask\n", "uid=1000,gid=1000"),
    ("FROM node:20\nRUN useradd -m app\nUSER app\nRUN npm ci\n", "uid=1001,gid=1001"),
])
def test_the_uid_comes_from_the_file_or_the_known_images(tmp_path, env, dockerfile: str, mount: str) -> None:
    assert all(word in section("What it does") for word in ("`node` 1000", "`mambauser` 57439", "`nobody` 65534",
                                                            "`useradd -u`", "`adduser --uid`", "`ARG UID=10001`",
                                                            "`useradd app`"))
    write(tmp_path / "Dockerfile", dockerfile)
    result = sh("cachefix --diff --syntax none Dockerfile", tmp_path, env)
    assert mount in result.stdout, result.stdout + result.stderr


def test_a_user_whose_uid_the_file_does_not_show_gets_a_finding_not_a_guess(tmp_path, env) -> None:
    write(tmp_path / "Dockerfile", "FROM registry.example/base\nRUN useradd -m app\nUSER app\nRUN pip install flask\n")
    result = sh("cachefix check -q Dockerfile", tmp_path, env)
    assert result.returncode == 1 and "uid" in result.stdout, result.stdout + result.stderr
    assert sh("cachefix .", tmp_path, env).returncode == 1
    assert (tmp_path / "Dockerfile").read_text().count("--mount") == 0


@pytest.mark.skipif(sys.platform != "linux", reason="the README names the Linux folder; platformdirs picks others")
def test_the_download_cache_lives_where_the_readme_says(tmp_path, env) -> None:
    text = section("The download cache, outside containers")
    assert "`~/.cache/cachefix`" in text and "`CACHEFIX_CACHE_DIR`" in text
    plain = {k: v for k, v in env.items() if k not in ("XDG_CACHE_HOME", "CACHEFIX_CACHE_DIR")}
    assert sh("cachefix cache dir", tmp_path, plain).stdout.strip() == str(Path(env["HOME"]) / ".cache" / "cachefix")
    moved = {**plain, "CACHEFIX_CACHE_DIR": str(tmp_path / "elsewhere")}
    assert sh("cachefix cache dir", tmp_path, moved).stdout.strip() == str(tmp_path / "elsewhere")
