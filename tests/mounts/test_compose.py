"""Compose projects: the Dockerfiles, build args and targets of a stack, in `mounts list`, `check` and `fix`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cachefix.cli import main
from cachefix.compose import ComposeError, looks_like_compose, read_compose

API = ("FROM python:3.11 AS base\nARG UID=1000\n"
       "RUN --mount=type=cache,target=/var/cache/pip-${UID},uid=${UID} pip install x\n"
       "FROM base AS test\nRUN --mount=type=cache,target=/root/.cache/pytest true\n"
       "FROM base AS runtime\nRUN --mount=type=cache,target=/root/.cache/pip pip install y\n")
WORKER = "FROM python:3.11\nRUN --mount=type=cache,target=/root/.cache/pip pip install z\n"
UNFIXED = "FROM python:3.11\nRUN pip install --no-cache-dir requests\n"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in (("api", API), ("worker", WORKER)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(text)
    (tmp_path / "worker" / "Dockerfile.gpu").write_text(WORKER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKER_DIR", raising=False)
    return tmp_path


def _write(stack: Path, text: str, name: str = "compose.yaml") -> Path:
    path = stack / name
    path.write_text(text)
    return path


def _listed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    """The JSON map; stderr is kept in `document["stderr"]`."""
    status = main(["mounts", "list", "--format", "json", *argv])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return {**json.loads(captured.out), "stderr": captured.err}


def test_every_build_form_gives_its_dockerfile_args_and_target(stack):
    compose = _write(stack, """
services:
  api:
    build:
      context: api
      args:
        UID: "1001"
        PYTHON: 3.10
        ENABLED: yes
      target: runtime
  worker:
    build: ./worker
  gpu:
    build:
      context: worker
      dockerfile: Dockerfile.gpu
      args: ["UID=7", "FROM_ENV", "NOT_SET"]
  db:
    image: postgres:16
""")
    builds = read_compose(compose, environ={"FROM_ENV": "e"})
    assert [(b.service, b.dockerfile, dict(b.build_args), b.target) for b in builds] == [
        ("api", stack / "api" / "Dockerfile", {"UID": "1001", "PYTHON": "3.10", "ENABLED": "yes"}, "runtime"),
        ("worker", stack / "worker" / "Dockerfile", {}, None),
        ("gpu", stack / "worker" / "Dockerfile.gpu", {"UID": "7", "FROM_ENV": "e"}, None),
    ]


def test_one_map_for_the_stack_with_services_and_only_the_target_stages(stack, capsys):
    _write(stack, """
services:
  api: {build: {context: ./api, target: runtime, args: {UID: "1001"}}}
  worker: {build: worker}
  worker2: {build: {context: worker}}
""")
    document = _listed(capsys, "compose.yaml")
    assert [(m["file"], m["line"], m["uid"], m["services"]) for m in document["mounts"]] == [
        ("api/Dockerfile", 3, "1001", ["api"]),  # base: runtime is built FROM it; `test` is not built
        ("api/Dockerfile", 7, "0", ["api"]),
        ("worker/Dockerfile", 2, "0", ["worker", "worker2"]),
    ]
    root_pip = next(c for c in document["caches"] if c["id"] == "/root/.cache/pip")
    assert root_pip["mounts"] == 2 and root_pip["services"] == ["api", "worker", "worker2"]


def test_command_line_build_args_win_over_the_compose_args(stack, capsys):
    _write(stack, "services:\n  api:\n    build:\n      context: api\n      args: {UID: '1001'}\n")
    document = _listed(capsys, "--build-arg", "UID=5", "compose.yaml")
    assert document["mounts"][0]["uid"] == "5"


def test_interpolation_default_forms_environment_and_dotenv(stack, capsys, monkeypatch):
    compose = _write(stack, "services:\n  w:\n    build: ${WORKER_DIR:-./worker}\n"
                            "  a:\n    build:\n      context: ${API_DIR-api}\n      args: {ID: '$${literal}'}\n")
    assert [b.dockerfile for b in read_compose(compose, environ={})] == [stack / "worker" / "Dockerfile",
                                                                         stack / "api" / "Dockerfile"]
    assert read_compose(compose, environ={})[1].build_args == {"ID": "${literal}"}
    assert read_compose(compose, environ={"WORKER_DIR": "api"})[0].dockerfile == stack / "api" / "Dockerfile"
    (stack / ".env").write_text("WORKER_DIR=api\n")
    assert read_compose(compose, environ={})[0].dockerfile == stack / "api" / "Dockerfile"
    assert read_compose(compose, environ={"WORKER_DIR": "worker"})[0].dockerfile == stack / "worker" / "Dockerfile"


@pytest.mark.parametrize("text, message", [
    ("services:\n  a:\n    build: ${NOPE}\n", r"\$NOPE is not set .* write \$\{NOPE:-default\}"),
    ("services:\n  a:\n    build: ${NOPE:?needed}\n", r"`\$\{NOPE:\?needed\}` is not supported"),
    ("services:\n  a:\n    build: ${A:-${B}}\n", "cannot read the variable"),
    ("services:\n  db:\n    image: postgres\n", "no service has a `build:` section"),
    ("services: [a, b]\n", r"not a compose file \(no top-level `services:` mapping\)"),
    ("services:\n  a:\n    build: {context: [x]}\n", "`context` must be a string"),
    ("services:\n  a:\n    build:\n      context: api\n      args: 3\n", "`args` must be a mapping or a list"),
    ("services:\n  a:\n    build: nowhere\n", r"its Dockerfile \S*nowhere/Dockerfile is not a file"),
    ("services:\n  a: {build: api\n", "line 3: invalid YAML"),
])
def test_a_compose_file_cachefix_cannot_read_is_one_line_and_exit_2(stack, capsys, text, message):
    _write(stack, text)
    with pytest.raises(ComposeError, match=message):
        read_compose(stack / "compose.yaml", environ={})
    for argv in (["mounts", "list", "compose.yaml"], ["check", "compose.yaml"], ["fix", "compose.yaml"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("cachefix") and "compose.yaml" in err[0], err


def test_inline_and_remote_dockerfiles_are_skipped_with_a_warning(stack, capsys):
    _write(stack, """
services:
  inline: {build: {dockerfile_inline: "FROM alpine\\n"}}
  remote: {build: "https://github.com/example/app.git#main"}
  worker: {build: worker}
""")
    document = _listed(capsys, "compose.yaml")
    assert [m["services"] for m in document["mounts"]] == [["worker"]]
    err = document["stderr"]
    assert "service 'inline': its Dockerfile is inline" in err
    assert "service 'remote': its build context is remote" in err


def test_detected_by_name_or_by_top_level_services(stack):
    assert looks_like_compose(_write(stack, "services: {w: {build: worker}}\n", "docker-compose.yml"))
    assert looks_like_compose(_write(stack, "services: {w: {build: worker}}\n", "stack.prod.yaml"))
    assert not looks_like_compose(_write(stack, "jobs: {}\n", "ci.yaml"))
    assert not looks_like_compose(_write(stack, "services: {}\n", "services.txt"))


def test_check_and_fix_work_on_every_dockerfile_the_stack_builds(stack, capsys):
    (stack / "api" / "Dockerfile").write_text(UNFIXED)
    (stack / "worker" / "Dockerfile").write_text(UNFIXED)
    (stack / "unrelated").mkdir()
    (stack / "unrelated" / "Dockerfile").write_text(UNFIXED)
    _write(stack, "services:\n  api: {build: api}\n  worker: {build: {context: ., dockerfile: worker/Dockerfile}}\n")
    assert main(["check", "--format", "json", "compose.yaml"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert sorted({f["file"] for f in report["findings"]}) == ["api/Dockerfile", "worker/Dockerfile"]
    assert main(["fix", "compose.yaml"]) == 0
    for name in ("api", "worker"):
        assert "--mount=type=cache" in (stack / name / "Dockerfile").read_text()
    assert (stack / "unrelated" / "Dockerfile").read_text() == UNFIXED
    assert (stack / "compose.yaml").read_text().startswith("services:")


def test_a_folder_with_a_compose_file_says_to_name_it(stack, capsys):
    _write(stack, "services:\n  api: {build: {context: api, args: {UID: '1001'}}}\n")
    document = _listed(capsys, ".")
    assert {m["uid"] for m in document["mounts"] if m["file"] == "api/Dockerfile"} == {"1000", "0"}
    assert document["stderr"] == ("cachefix: warning: compose.yaml is not read for .: give it as a PATH so that "
                                  "its services' build args and targets apply\n")
    assert _listed(capsys, "compose.yaml")["stderr"] == ""


def test_yaml_anchors_and_merge_keys_are_read_as_compose_reads_them(stack):
    compose = _write(stack, """
x-build: &build
  context: api
  args: {UID: "1001"}
services:
  api:
    build: *build
  api-debug:
    build:
      <<: *build
      target: test
""")
    builds = read_compose(compose, environ={})
    assert [(b.service, b.dockerfile.name, dict(b.build_args), b.target) for b in builds] == [
        ("api", "Dockerfile", {"UID": "1001"}, None), ("api-debug", "Dockerfile", {"UID": "1001"}, "test")]


def test_include_extends_and_override_files_are_named_in_warnings(stack):
    compose = _write(stack, "include: [other/compose.yaml]\nservices:\n  api: {build: api}\n"
                            "  api2: {extends: {service: api}}\n")
    _write(stack, "services: {}\n", "compose.override.yaml")
    heard: list[str] = []
    assert [b.service for b in read_compose(compose, environ={}, warn=heard.append)] == ["api"]
    assert len(heard) == 3
    assert "`include` is not read" in heard[0] and "service 'api2' extends" in heard[1]
    assert heard[2].startswith(f"{stack / 'compose.override.yaml'} is not merged")


def test_a_broken_dockerfile_built_twice_is_one_error(stack, capsys):
    (stack / "api" / "Dockerfile").write_text("FROM debian\nRUN --mount=type=cache,target=/c,uid=x true\n")
    _write(stack, "services:\n  a: {build: {context: api, args: {X: '1'}}}\n  b: {build: {context: api}}\n")
    assert main(["mounts", "list", "--format", "json", "compose.yaml"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] == ["api/Dockerfile:2: invalid value 'x' for uid in a cache mount"]
