"""Issue 8.19 and issue 9 (download half): bad input is a one-line usage error with exit 2,
never "internal error"; every option says what it does; output says what it means."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cachefix.cli import main
from cachefix.downloads.commands import add_commands
from tests.downloads import conftest

cache_dir = conftest.cache_dir  # the download tests' fixture, shared

URL = "http://127.0.0.1:9/f"
HUGE = "9" * 400


@pytest.mark.parametrize("args", [
    ["fetch", "http://[::1"],
    ["fetch", "http://127.0.0.1:99999/f"],
    ["fetch", "http://a host/f"],
    ["fetch", URL, "--timeout", "-1"],
    ["fetch", URL, "--timeout", "nan"],
    ["fetch", URL, "--connect-timeout", "inf"],
    ["fetch", URL, "--max-time", "0"],
    ["fetch", URL, "--retries", "0"],
    ["fetch", URL, "--max-members", "-5"],
    ["fetch", URL, "--extract", "x", "--max-extract-size", HUGE],
    ["fetch", URL, "--speed-limit", "fast"],
    ["fetch", URL, "--max-age", "3600"],
    ["cache", "clean", "--max-size", HUGE],
    ["cache", "clean", "--older-than", ""],
    ["cache", "clean", "--older-than", "", "--max-size", "10G"],
    ["cache", "clean", "--older-than", "30"],
])
def test_usage_errors_are_one_line_and_exit_2(cache_dir: Path, capsys: pytest.CaptureFixture[str],
                                              args: list[str]) -> None:
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own usage errors
        code = exit.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "internal error" not in err and "Traceback" not in err
    assert not cache_dir.exists()  # refused before touching the cache


def test_older_than_without_a_unit_names_the_accepted_forms(cache_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "clean", "--older-than", "30"]) == 2
    err = capsys.readouterr().err
    assert "unit is required" in err and "30d" in err and "12h" in err


def test_a_manifest_that_is_not_utf8_names_the_line(cache_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "deps.txt"
    manifest.write_bytes(b"# deps\n" + URL.encode() + b"/\xff\xfe\n")
    assert main(["fetch", "--manifest", str(manifest)]) == 2
    assert capsys.readouterr().err == f"cachefix: error: {manifest}:2: the manifest is not UTF-8 text\n"


def test_a_manifest_without_end_is_refused(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "--manifest", "/dev/zero"]) == 2
    assert "larger than" in capsys.readouterr().err


def _subcommands() -> list[argparse.ArgumentParser]:
    root = argparse.ArgumentParser()
    add_commands(root.add_subparsers())
    found, todo = [], [root]
    while todo:
        parser = todo.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += action.choices.values()
        found.append(parser)
    return found[1:]


def test_every_fetch_and_cache_option_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parsers = _subcommands()
    assert {p.prog.split()[-1] for p in parsers} >= {"fetch", "stats", "clean", "clear", "verify"}
    for parser in parsers:
        for action in parser._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                assert action.help, f"{parser.prog} {action.option_strings or action.dest} has no help"


def test_stats_where_column_shows_places_not_commands(cache_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\nprintf 'ID RECLAIMABLE SIZE LAST\\nabc true 1.5GB now\\n'\n")
    docker.chmod(0o755)
    monkeypatch.setenv("CACHEFIX_DOCKER", str(docker))
    assert main(["cache", "stats"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("buildkit"))
    assert "buildx" not in row and str(docker) not in row and "Docker daemon" in row
