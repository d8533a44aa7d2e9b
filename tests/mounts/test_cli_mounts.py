"""`cachefix mounts list` through the real command line: the table, the JSON contract, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cachefix.cli import main

PIP = "FROM python:3.11\nRUN --mount=type=cache,target=/root/.cache/pip pip install -r r.txt\n"
NON_ROOT = ("FROM python:3.11 AS app\nARG UID=1000\n"
            "RUN --mount=type=cache,target=/var/cache/pip-${UID},uid=${UID},gid=${UID} pip install x\n"
            "RUN --mount=type=cache,target=/root/.cache/pip pip install y\n")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "api").mkdir()
    (tmp_path / "worker").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text(PIP)
    (tmp_path / "worker" / "Dockerfile").write_text(NON_ROOT)
    (tmp_path / "README.md").write_text("RUN --mount=type=cache,target=/not/a/dockerfile\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    status = main(["mounts", "list", "--format", "json", *argv])
    return status, json.loads(capsys.readouterr().out)


def test_json_lists_every_mount_and_groups_the_shared_caches(project, capsys):
    status, document = _json(capsys)
    assert status == 0
    assert document["version"] == 1 and document["errors"] == []
    assert document["files"] == ["api/Dockerfile", "worker/Dockerfile"]
    assert [(m["file"], m["line"], m["id"], m["uid"], m["stage"]) for m in document["mounts"]] == [
        ("api/Dockerfile", 2, "/root/.cache/pip", "0", "0"),
        ("worker/Dockerfile", 3, "/var/cache/pip-1000", "1000", "app"),
        ("worker/Dockerfile", 4, "/root/.cache/pip", "0", "app"),
    ]
    root_pip = next(c for c in document["caches"] if c["id"] == "/root/.cache/pip")
    assert root_pip == {"id": "/root/.cache/pip", "uid": "0", "gid": "0", "mode": "0755", "explicit": False,
                        "mounts": 2, "targets": ["/root/.cache/pip"], "services": []}
    assert [m["explicit"] for m in document["mounts"]] == [False, True, False]
    assert len(document["caches"]) == 2


def test_json_is_the_same_text_on_every_run(project, capsys):
    main(["mounts", "list", "--format", "json"])
    first = capsys.readouterr().out
    main(["mounts", "list", "--format", "json", "."])
    assert capsys.readouterr().out == first  # `.` is the default


def test_build_arg_moves_the_cache_and_so_the_key(project, capsys):
    _, document = _json(capsys, "--build-arg", "UID=1001", "worker")
    assert next((m["id"], m["uid"], m["gid"]) for m in document["mounts"]) == ("/var/cache/pip-1001", "1001", "1001")


def test_build_arg_without_value_reads_the_environment(project, capsys, monkeypatch):
    monkeypatch.setenv("UID", "4242")
    _, document = _json(capsys, "--build-arg", "UID", "worker/Dockerfile")
    assert document["mounts"][0]["uid"] == "4242"


def test_text_table_has_the_columns_and_a_shared_by_count(project, capsys):
    assert main(["mounts", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "target", "uid", "gid", "mode", "sharing", "stage", "file:line", "shared",
                                "by"]
    shared = [line.split() for line in lines[1:] if line.startswith("/root/.cache/pip")]
    assert [row[7] for row in shared] == ["api/Dockerfile:2", "worker/Dockerfile:4"]
    assert all(row[-1] == "2" for row in shared)
    assert lines[-1] == "3 cache mounts using 2 caches in 2 Dockerfiles"


def test_a_file_named_is_read_whatever_its_name(project, capsys):
    (project / "build.docker").write_text(PIP)
    _, document = _json(capsys, "build.docker")
    assert document["files"] == ["build.docker"]


def test_a_missing_path_is_one_line_and_exit_2(project, capsys):
    assert main(["mounts", "list", "nothere"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "cachefix: error: nothere: no such file or folder\n"


def test_a_broken_file_is_an_error_but_the_others_are_listed(project, capsys):
    (project / "bad").mkdir()
    (project / "bad" / "Dockerfile").write_text("FROM debian\nRUN --mount=type=cache,target=/c,uid=me true\n")
    (project / "worse").mkdir()
    (project / "worse" / "Dockerfile").write_bytes(b"FROM debian\nRUN \x00\n")
    status, document = _json(capsys)
    assert status == 2
    assert len(document["mounts"]) == 3
    assert document["errors"] == ["bad/Dockerfile:2: invalid value 'me' for uid in a cache mount",
                                  "worse/Dockerfile: binary file (contains NUL bytes), not a Dockerfile"]


def test_no_cache_mount_is_an_empty_map_not_an_error(tmp_path, capsys):
    (tmp_path / "Dockerfile").write_text("FROM debian\nRUN true\n")
    assert main(["mounts", "list", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "0 cache mounts using 0 caches in 1 Dockerfile\n"


def test_help_names_every_subcommand_with_examples_and_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["mounts", "--help"])
    text = capsys.readouterr().out
    assert all(word in text for word in ("list", "export", "import", "examples:"))
    for sub in ("list", "export", "import"):
        with pytest.raises(SystemExit):
            main(["mounts", sub, "--help"])
        assert "exit status:" in capsys.readouterr().out


def test_on_a_terminal_the_table_is_drawn_by_rich_with_the_same_cells(project, monkeypatch):
    import io

    from cachefix.mounts.listing import rows, write_text
    from cachefix.mounts.project import cache_map

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    found = cache_map(["."])
    terminal, plain = Terminal(), io.StringIO()
    write_text(found, terminal)
    write_text(found, plain)
    assert terminal.getvalue() != plain.getvalue()  # rich aligns and styles it its own way
    for row in rows(found):
        assert all(cell in terminal.getvalue() for cell in row)
    assert terminal.getvalue().splitlines()[-1] == plain.getvalue().splitlines()[-1]


def test_a_file_built_twice_with_other_args_is_one_file_with_both_maps(project, capsys):
    (project / "compose.yaml").write_text("services:\n"
                                          "  a: {build: {context: worker, args: {UID: '1001'}}}\n"
                                          "  b: {build: {context: worker, args: {UID: '1002'}}}\n")
    status, document = _json(capsys, "compose.yaml")
    assert status == 0 and document["files"] == ["worker/Dockerfile"]
    assert [(m["uid"], m["services"]) for m in document["mounts"]] == [
        ("1001", ["a"]), ("0", ["a", "b"]), ("1002", ["b"])]


def test_target_keeps_the_stages_that_build_it(tmp_path, capsys):
    (tmp_path / "Dockerfile").write_text(
        "FROM golang:1.22 AS deps\nRUN --mount=type=cache,target=/go/pkg/mod go mod download\n"
        "FROM deps AS build\nRUN --mount=type=cache,target=/root/.cache/go-build go build -o /app\n"
        "FROM debian:12 AS docs\nRUN --mount=type=cache,target=/var/cache/apt apt-get update\n"
        "FROM python:3.12 AS tools\nRUN --mount=type=cache,target=/root/.cache/pip pip install x\n"
        "FROM debian:12 AS runtime\nCOPY --from=build /app /app\n"
        "RUN --mount=type=bind,from=tools,source=/usr,target=/t --mount=type=cache,target=/var/lib/apt/lists true\n")
    _, everything = _json(capsys, str(tmp_path))
    assert len(everything["mounts"]) == 5
    _, runtime = _json(capsys, "--target", "runtime", str(tmp_path))
    assert [m["stage"] for m in runtime["mounts"]] == ["deps", "build", "tools", "runtime"]  # not docs
    _, deps = _json(capsys, "--target", "DEPS", str(tmp_path))
    assert [m["stage"] for m in deps["mounts"]] == ["deps"]
    assert main(["mounts", "list", "--target", "nope", str(tmp_path)]) == 2
    assert capsys.readouterr().err.endswith("Dockerfile: no stage named 'nope' (the build's target)\n")


def test_the_configurations_exclude_applies_as_in_check(project, capsys):
    (project / ".cachefix.toml").write_text('exclude = ["worker/"]\n')
    _, document = _json(capsys)
    assert document["files"] == ["api/Dockerfile"]
    (project / ".cachefix.toml").write_text('exclude = 3\n')
    assert main(["mounts", "list"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("cachefix: error: ") and "exclude" in err[0]
