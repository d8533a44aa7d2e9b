"""The shell analysis finds the commands a RUN really executes, and where each one sits."""

from __future__ import annotations

import pytest

from cachefix.rewriter.shell import commands, exec_form_commands, removal_spans


def names(script: str) -> list[str]:
    return [c.name for c in commands(script)]


@pytest.mark.parametrize(("script", "expected"), [
    ("cd /app && python3 -m pip install -r r.txt", ["cd", "python3"]),
    ('echo "pip install x"', ["echo"]),
    ("a; b || c | d", ["a", "b", "c", "d"]),
    ("(cd /x && make) && { pip install .; }", ["cd", "make", "pip"]),
    ("sh -c 'apt-get update && apt-get install -y curl'", ["sh", "apt-get", "apt-get"]),
    ('bash -ec "pip install x"', ["bash", "pip"]),
    ("if [ -f r.txt ]; then pip install -r r.txt; fi", ["pip"]),
    ("X=$(pip download -d /w x) && echo $X", ["pip", "echo"]),
    ("/usr/local/bin/pip3 install x", ["pip3"]),
])
def test_finds_the_commands_that_run(script: str, expected: list[str]) -> None:
    assert names(script) == expected


def test_static_values_drop_quotes_and_keep_dynamic_words_unknown() -> None:
    cmd = commands("""pip install 'a b' "c" d\\ e "$EXTRA" --index-url=${URL}""")[0]
    assert cmd.values() == ["pip", "install", "a b", "c", "d e", None, None]


def test_assignments_are_not_words() -> None:
    cmd = commands("PIP_NO_CACHE_DIR=1 HOME=/x pip install y")[0]
    assert [(a.name, a.value) for a in cmd.assignments] == [("PIP_NO_CACHE_DIR", "1"), ("HOME", "/x")]
    assert cmd.name == "pip"


def test_command_substitution_is_marked() -> None:
    found = commands('cp -rL "$(hf download org/m --quiet)"/. /models/m')
    assert [(c.name, c.substituted) for c in found] == [("cp", False), ("hf", True)]


def removed(script: str, *indexes: int) -> str:
    found = commands(script, list(range(len(script))))
    spans = removal_spans([found[i] for i in indexes])
    assert spans is not None, "expected the commands to be removable"
    for start, end in sorted(spans, reverse=True):
        script = script[:start] + script[end:]
    return script


@pytest.mark.parametrize(("script", "index", "expected"), [
    ("apt-get install -y gcc && rm -rf /var/lib/apt/lists/*", 1, "apt-get install -y gcc"),
    ("rm -rf /x && pip install y", 0, "pip install y"),
    ("a && rm x && b", 1, "a && b"),
    # The operator kept is the one that makes `b` run exactly when it ran before.
    ("a && rm x; b", 1, "a; b"),
    ("a; rm x && b", 1, "a; b"),
    ("set -e\napt-get clean\npip install x", 1, "set -e\npip install x"),
])
def test_removal_keeps_the_rest_meaning_the_same(script: str, index: int, expected: str) -> None:
    assert removed(script, index) == expected


@pytest.mark.parametrize(("script", "indexes", "expected"), [
    ("apt-get install x && apt-get clean && rm -rf /var/lib/apt/lists/*", (1, 2), "apt-get install x"),
    ("apt-get clean && rm -rf /l && apt-get install x", (0, 1), "apt-get install x"),
    ("a && apt-get clean && b && rm -rf /l", (1, 3), "a && b"),
])
def test_consecutive_removals_join_into_one(script: str, indexes: tuple[int, ...], expected: str) -> None:
    assert removed(script, *indexes) == expected


@pytest.mark.parametrize("script", ["a || rm x", "rm x || a", "rm x | tee log", "rm x"])
def test_commands_whose_status_matters_are_not_removable(script: str) -> None:
    cmd = next(c for c in commands(script, list(range(len(script)))) if c.name == "rm")
    assert removal_spans([cmd]) is None


def test_spans_map_through_the_offset_table() -> None:
    # The script as the shell sees it, and where each character sits in the Dockerfile.
    dockerfile_text = "RUN pip install \\\n    --no-cache-dir x"
    script = "pip install     --no-cache-dir x"
    offsets = [4 + i for i in range(12)] + [18 + i for i in range(len(script) - 12)]
    cmd = commands(script, offsets)[0]
    flag = cmd.words[2]
    assert dockerfile_text[flag.span[0]:flag.span[1]] == "--no-cache-dir"


def test_sh_c_inner_commands_map_into_the_file_when_quoting_is_plain() -> None:
    script = "sh -c 'pip install --no-cache-dir uvicorn'"
    inner = commands(script, list(range(len(script))))[1]
    start, end = inner.words[2].span
    assert script[start:end] == "--no-cache-dir"


def test_exec_form_is_one_command_and_sees_through_sh_c() -> None:
    found = exec_form_commands(["/bin/sh", "-c", "pip install x && apt-get clean"])
    assert [c.name for c in found] == ["sh", "pip", "apt-get"]
    assert all(c.span is None for c in found)  # JSON strings are not edited in place


def test_non_ascii_text_keeps_character_offsets() -> None:
    script = "echo 'héllo wörld' && pip install x"
    pip = commands(script, list(range(len(script))))[1]
    assert script[pip.span[0]:pip.span[1]] == "pip install x"
