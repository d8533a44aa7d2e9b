"""The CI glue for `cachefix mounts`: the composite GitHub Action (action.yml) and the README's
GitHub and GitLab snippets. They run commands of this version of cachefix, so a renamed
subcommand or option must fail here, not in a user's pipeline; the action's cache-map step is run."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cachefix.cli import main

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS = ACTION["runs"]["steps"]
README = (ROOT / "README.md").read_text()
SECTION = README.split("## Cache mounts in CI", 1)[1].split("\n## ", 1)[0]
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def _step(name: str) -> dict:
    return next(step for step in STEPS if step["name"] == name)


def test_the_action_is_a_composite_action_whose_references_resolve():
    assert {"name", "description", "inputs", "outputs", "runs"} <= ACTION.keys()
    assert ACTION["runs"]["using"] == "composite"
    ids = {step.get("id") for step in STEPS}
    text = (ROOT / "action.yml").read_text()
    for expression in EXPRESSION.findall(text):
        for name in re.findall(r"\binputs\.([\w-]+)", expression):
            assert name in ACTION["inputs"], expression
        for name in re.findall(r"\bsteps\.([\w-]+)\.outputs", expression):
            assert name in ids, expression
    for step in STEPS:
        assert ("run" in step) != ("uses" in step), step["name"]
        if "run" in step:
            assert step["shell"] == "bash", step["name"]
        else:
            assert step["uses"] in ("actions/cache/restore@v4", "actions/cache/save@v4"), step["uses"]
    for name, output in ACTION["outputs"].items():
        assert EXPRESSION.search(output["value"]), name
    order = [step["name"] for step in STEPS]
    assert order.index("Restore the caches") < order.index("Import them into the builder")
    assert order.index("Export the caches from the builder") < order.index("Save them")
    assert _step("Restore the caches")["if"] == "inputs.step == 'restore'"
    assert _step("Save them")["if"] == "always() && inputs.step == 'save' && steps.map.outcome == 'success'"


def _cachefix_lines() -> list[str]:
    scripts = [step["run"] for step in STEPS if "run" in step]
    blocks = _yaml_blocks(SECTION)
    lines = [line for text in [*scripts, *blocks] for line in text.splitlines() if "cachefix mounts" in line]
    return [line[line.index("cachefix mounts"):] for line in lines]


def test_every_cachefix_command_the_snippets_run_exists_with_its_options(capsys):
    lines = _cachefix_lines()
    used = {line.split()[2] for line in lines}
    assert used == {"list", "import", "export"}
    overview = _help(capsys, "mounts")
    for line in lines:
        sub = line.split()[2]
        assert re.search(rf"^\s+{sub}\s", overview, re.M), sub
        options = _help(capsys, "mounts", sub)
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
            assert option in options, (sub, option)


def test_the_gitlab_job_caches_the_folder_it_imports_from_and_exports_to():
    (job,) = [yaml.safe_load(block) for block in _yaml_blocks(SECTION) if "before_script" in block]
    build = job["build"]
    folder = build["cache"]["paths"][0].rstrip("/")
    assert build["cache"]["when"] == "always" and build["cache"]["key"]
    assert any(f"cachefix mounts import {folder} " in line for line in build["before_script"])
    assert any(f"{folder} compose.yaml" in line and "cachefix mounts export" in line for line in build["after_script"])


def _run_step(name: str, workdir: Path, runner: Path, inputs: dict[str, str], outputs: dict[str, str],
              extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one `run:` step of the action as the runner would: its `env:` with the expressions filled
    in, the runner's variables, and the files it writes outputs and environment to."""
    step = _step(name)
    values = {f"inputs.{key}": inputs.get(key, spec.get("default", "")) for key, spec in ACTION["inputs"].items()}
    values |= {f"steps.map.outputs.{key}": value for key, value in outputs.items()}
    env = {**os.environ, **(extra_env or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the cachefix of this checkout
    env |= {"RUNNER_TEMP": str(runner), "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "GITHUB_RUN_ID": "42",
            "GITHUB_RUN_ATTEMPT": "1", "GITHUB_ACTION_PATH": str(ROOT)}
    for variable in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH"):
        env[variable] = str(runner / variable)
    for key, value in step.get("env", {}).items():
        env[key] = EXPRESSION.sub(lambda m: values[m.group(1)], value)
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=120)


def _outputs(runner: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (runner / "GITHUB_OUTPUT").read_text().splitlines())


def _map_hash(workdir: Path, *argv: str) -> str:
    listed = subprocess.run([sys.executable, "-m", "cachefix", "mounts", "list", "--format", "json", *argv],
                            cwd=workdir, capture_output=True, text=True, check=True).stdout
    return hashlib.sha256(listed.encode()).hexdigest()[:16]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    (work / "api").mkdir(parents=True)
    (work / "api" / "Dockerfile").write_text(
        "FROM python:3.11\nARG UID=1000\nRUN --mount=type=cache,target=/root/.cache/pip,uid=${UID} pip install x\n")
    (work / "compose.yaml").write_text("services:\n  api:\n    build: api\n")
    return work


def _map_step(project: Path, runner: Path, **inputs: str) -> dict[str, str]:
    runner.mkdir(exist_ok=True)
    for name in ("GITHUB_OUTPUT", "GITHUB_ENV"):
        (runner / name).write_text("")
    assert _run_step("Install cachefix", project, runner, inputs, {}).returncode == 0
    done = _run_step("The cache map", project, runner, inputs, {})
    assert done.returncode == 0, done.stderr
    return _outputs(runner)


def test_the_action_keys_the_cache_on_the_cache_map(project, tmp_path):
    outputs = _map_step(project, tmp_path / "runner", paths="compose.yaml", **{"build-args": "UID=1001\n"})
    expected = _map_hash(project, "--build-arg", "UID=1001", "compose.yaml")
    assert outputs["key"] == f"cachefix-mounts-Linux-X64-{expected}-42-1"
    assert outputs["same-map"] == f"cachefix-mounts-Linux-X64-{expected}-"
    assert outputs["any-map"] == "cachefix-mounts-Linux-X64-"
    assert outputs["dir"] == str(tmp_path / "runner" / "cachefix-mounts")
    (project / "api" / "Dockerfile").write_text((project / "api" / "Dockerfile").read_text().replace("x\n", "y\n"))
    unchanged = _map_step(project, tmp_path / "runner", paths="compose.yaml", **{"build-args": "UID=1001"})["key"]
    assert unchanged == outputs["key"]  # another RUN command: the same caches, the same key
    moved = _map_step(project, tmp_path / "runner", paths="compose.yaml", **{"build-args": "UID=2002"})["key"]
    assert moved != outputs["key"]


def test_the_import_step_with_nothing_restored_yet_leaves_the_builder_alone(project, tmp_path):
    runner = tmp_path / "runner"
    outputs = _map_step(project, runner, paths="compose.yaml")
    environment = (runner / "GITHUB_ENV").read_text()
    arguments = environment.split("CACHEFIX_MOUNTS_ARGS<<CACHEFIX_EOF\n", 1)[1].split("CACHEFIX_EOF", 1)[0]
    assert arguments == "compose.yaml\n"
    done = _run_step("Import them into the builder", project, runner, {}, outputs,
                     {"CACHEFIX_MOUNTS_ARGS": arguments.rstrip("\n")})
    assert done.returncode == 0, done.stderr
    assert "nothing to import" in done.stdout


def test_the_readme_cache_map_example_is_what_list_prints(tmp_path, capsys, monkeypatch):
    example = re.search(r"\$ cachefix mounts list\n(.*?)```", SECTION, re.S).group(1).splitlines()
    stack = tmp_path / "ai-stack"
    subprocess.run(["cp", "-r", str(ROOT / "examples" / "ai-stack"), str(stack)], check=True)
    monkeypatch.chdir(stack)
    main(["fix", "."])
    capsys.readouterr()
    assert main(["mounts", "list"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == example[0] and printed[-1] == example[-1]
    at = 1
    for line in example[1:-1]:  # in order, `...` standing for rows left out
        if line != "...":
            at = printed.index(line, at) + 1
