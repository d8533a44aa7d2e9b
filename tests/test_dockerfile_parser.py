"""Tests for cachefix.rewriter.dockerfile: agreement with BuildKit, and exact spans.

The oracle is the ``dockerfile`` package (BuildKit v0.12's Go parser).  Every corpus file,
BuildKit's own parser test files and a set of inline edge cases are parsed by both; spans
are checked against the text itself so a rewrite that splices them keeps the file intact.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import pickle
import random
import re
import time
from pathlib import Path

import pytest

from cachefix.rewriter.dockerfile import (
    INSTRUCTIONS,
    Dockerfile,
    DockerfileSyntaxError,
    Instruction,
    parse,
)

dockerfile = pytest.importorskip("dockerfile", reason="the BuildKit oracle (pip install dockerfile)")

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
TESTFILES = CORPUS / "moby__buildkit" / "frontend" / "dockerfile" / "parser" / "testfiles"
NAMES = re.compile(r"(^|[./])(Dockerfile|Containerfile)([.-].*)?$|\.(dockerfile|containerfile)$", re.I)
EMBEDDINGS = CORPUS / "MasterofNull__NixOS-Dev-Quick-Deploy/ai-stack/mcp-servers/embeddings-service/Dockerfile"
NO_CORPUS = pytest.mark.skip(reason=f"corpus not found at {CORPUS}")


def _corpus_params(paths: list[Path]) -> list:
    if not paths:
        return [pytest.param(None, marks=NO_CORPUS)]
    return [pytest.param(p, id=str(p.relative_to(CORPUS))) for p in paths]


CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and NAMES.search(p.name)) if CORPUS.is_dir() else []
TESTFILE_DIRS = sorted(p for p in TESTFILES.iterdir() if (p / "Dockerfile").is_file()) if TESTFILES.is_dir() else []


# --------------------------------------------------------------------------- oracle helpers


def _oracle(text: str):
    """(commands, error message) from BuildKit's parser."""
    try:
        return dockerfile.parse_string(text), None
    except Exception as e:  # GoParseError, or UnicodeDecodeError when Go emits invalid UTF-8
        return None, str(e)


def _nul(s: str) -> str:
    """The oracle's C bridge truncates strings at NUL; BuildKit itself keeps them."""
    return s.split("\x00", 1)[0]


def _flag_token(f) -> str:
    return "--" + f.name + ("" if f.value is None else "=" + f.value)


def assert_agrees(text: str) -> Dockerfile | None:
    """Parse with both; same instructions, or both reject.  Returns our parse (None if rejected).

    Deliberate differences, all tested separately: an empty or comment-only file is fine
    (oracle: "file with no instructions"); unknown top-level instructions are rejected
    (as BuildKit's next step does); ONBUILD heredocs are reported (the oracle's wrapper reads
    them from the wrapped node, where BuildKit does not put them).
    """
    cmds, err = _oracle(text)
    must_fail = err is not None and err != "file with no instructions"
    if cmds and any((c.cmd or "").upper() not in INSTRUCTIONS for c in cmds):
        must_fail = True
    try:
        df = parse(text)
    except DockerfileSyntaxError as e:
        assert must_fail, f"we raised {e!s} but BuildKit accepts the file"
        return None
    assert not must_fail, f"BuildKit rejects the file ({err}) but we parsed it"
    cmds = cmds or []
    assert len(df.instructions) == len(cmds)
    for c, ins in zip(cmds, df.instructions, strict=True):
        want = {
            "cmd": c.cmd.upper(),
            "sub_cmd": c.sub_cmd.upper() if c.sub_cmd else None,
            "flags": tuple(c.flags),
            "value": tuple(c.value),
            "json": c.json,
            "lines": (c.start_line, c.end_line),
            "heredocs": tuple((h.name, h.content) for h in c.heredocs),
        }
        got = {
            "cmd": ins.keyword,
            "sub_cmd": ins.inner.keyword if ins.inner else None,
            "flags": tuple(_nul(_flag_token(f)) for f in ins.flags),
            "value": tuple(_nul(v) for v in ins.value),
            "json": ins.json,
            "lines": (ins.start_line, ins.end_line),
            "heredocs": () if ins.inner else tuple((h.name, h.content) for h in ins.heredocs),
        }
        assert got == want, f"line {c.start_line}"
    assert_spans(df)
    return df


# --------------------------------------------------------------------------- span checks


def _check_instruction(df: Dockerfile, ins: Instruction) -> None:
    t = df.text
    lo, hi = ins.keyword_span
    kw = t[lo:hi]
    if "\n" not in kw:
        assert kw.upper() == ins.keyword
    assert ins.span[0] == lo
    assert ins.span[1] == len(t) or t[ins.span[1]] in "\r\n"
    assert df.line_of(ins.span[1]) == ins.end_line
    assert df.line_of(lo) >= ins.start_line
    last = hi
    for f in ins.flags:
        assert t[f.span[0] : f.span[1]].startswith("--"), f
        assert f.span[0] >= last
        last = f.span[1]
    a0, a1 = ins.args_span
    assert last <= a0 <= a1 <= ins.span[1]
    if a0 < a1:
        assert not t[a0].isspace()
    for h in ins.heredocs:
        b0, b1 = h.body_span
        assert t[b0:b1] == h.content
        assert h.span[0] == b0 and h.span[1] <= ins.span[1]
        assert b0 >= a1
        term = t[b1 : h.span[1]]
        assert (term.lstrip("\t") if h.chomp else term) == h.name
    script, offsets = ins.shell_source()
    assert len(script) == len(offsets)
    assert all(a < b for a, b in itertools.pairwise(offsets))
    assert all(t[o] == c for o, c in zip(offsets, script, strict=True))
    if offsets:
        assert a0 <= offsets[0] and offsets[-1] < a1
    if ins.keyword == "RUN" and not ins.json:
        assert script == (ins.value[0] if ins.value else "")
    if ins.inner is not None:
        assert ins.inner.span[1] == ins.span[1]
        assert ins.inner.heredocs == ins.heredocs
        assert ins.inner.keyword_span[0] >= a0
        _check_instruction(df, ins.inner)


def assert_spans(df: Dockerfile) -> None:
    """Every span is exact: keyword, flags, args, heredocs, shell_source's map."""
    prev_end = 0
    for ins in df.instructions:
        assert ins.span[0] >= prev_end
        prev_end = ins.span[1]
        _check_instruction(df, ins)
    for d in df.directives:
        assert df.text[d.span[0] : d.span[1]].startswith("#")
        assert df.line_of(d.span[0]) == d.line


# --------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("path", _corpus_params(CORPUS_FILES))
def test_corpus_file_agrees_with_buildkit(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    df = assert_agrees(text)
    if df is not None:
        assert df.newline == "\n" or "\r\n" in text
    if "\r" not in text and "\n" in text:  # the same file with CRLF line endings
        crlf = assert_agrees(text.replace("\n", "\r\n"))
        assert (crlf is None) == (df is None)
        if crlf is not None:
            assert crlf.newline == "\r\n"


def test_corpus_has_the_expected_size() -> None:
    if not CORPUS_FILES:
        pytest.skip(f"corpus not found at {CORPUS}")
    assert len(CORPUS_FILES) >= 340


def test_embeddings_service_is_rejected_at_line_14() -> None:
    if not EMBEDDINGS.is_file():
        pytest.skip(f"corpus not found at {CORPUS}")
    with pytest.raises(DockerfileSyntaxError) as info:
        parse(EMBEDDINGS.read_text(encoding="utf-8"))
    assert info.value.line == 14
    assert info.value.message == "unknown instruction: before"
    assert str(info.value) == "line 14: unknown instruction: before"


def test_corpus_parses_fast() -> None:
    """A pre-commit hook parses every Dockerfile; measured ~0.07 s for the whole corpus."""
    if not CORPUS_FILES:
        pytest.skip(f"corpus not found at {CORPUS}")
    texts = [p.read_bytes().decode("utf-8") for p in CORPUS_FILES]
    t0 = time.perf_counter()
    for text in texts:
        with contextlib.suppress(DockerfileSyntaxError):
            parse(text)
    assert time.perf_counter() - t0 < 1.0  # generous for slow CI; the target is < 0.2 s


# --------------------------------------------------------------------------- BuildKit testfiles


def _parse_dump(dump: str) -> list[tuple]:
    """BuildKit's Node.Dump(): ``(cmd ["--flag"] "v1" "v2")``, ONBUILD as a nested node.

    Returns (cmd, flags, values, child) tuples, child being the nested node or None.
    """
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[()\[\]]|[^\s()\[\]"]+', dump)
    pos = 0

    def node() -> tuple:
        nonlocal pos
        assert tokens[pos] == "("
        pos += 1
        cmd = tokens[pos]
        pos += 1
        flags: list[str] = []
        values: list[str] = []
        child = None
        if tokens[pos] == "[":
            pos += 1
            while tokens[pos] != "]":
                flags.append(ast.literal_eval(tokens[pos]))
                pos += 1
            pos += 1
        while tokens[pos] != ")":
            if tokens[pos] == "(":
                child = node()
            else:
                values.append(ast.literal_eval(tokens[pos]))
                pos += 1
        pos += 1
        return cmd, tuple(flags), tuple(values), child

    out = []
    while pos < len(tokens):
        out.append(node())
    return out


def _as_dump(ins: Instruction) -> tuple:
    values = ins.value
    child = _as_dump(ins.inner) if ins.inner else None
    if ins.inner:
        values = ()
    return ins.keyword.lower(), tuple(_flag_token(f) for f in ins.flags), values, child


def _drop_env_separators(node: tuple) -> tuple:
    """Newer BuildKit dumps ENV/LABEL as key, value, separator ("=" or ""); v0.12 has no separator."""
    cmd, flags, values, child = node
    if cmd in ("env", "label"):
        assert all(sep in ("", "=") for sep in values[2::3]), values
        values = tuple(v for i, v in enumerate(values) if i % 3 != 2)
    return cmd, flags, values, _drop_env_separators(child) if child else None


@pytest.mark.parametrize("case", _corpus_params(TESTFILE_DIRS))
def test_buildkit_testfile_matches_result(case: Path) -> None:
    """BuildKit's own expected AST dumps (all of testfiles/ must parse; negatives live elsewhere)."""
    text = (case / "Dockerfile").read_bytes().decode("utf-8")
    df = parse(text)
    expected = [_drop_env_separators(n) for n in _parse_dump((case / "result").read_text(encoding="utf-8"))]
    assert [_as_dump(i) for i in df.instructions] == expected
    assert_agrees(text)


# --------------------------------------------------------------------------- inline cases

HEREDOC_AFTER = "FROM a\nRUN <<EOF\nhi\nEOF\n"
CASES = {
    # line endings, BOM, whitespace
    "crlf": "FROM a\r\nRUN apt-get update \\\r\n && apt-get install -y x\r\n",
    "crlf-trailing-blank-after-escape": "RUN a \\ \r\n b\r\n",
    "cr-then-space-is-not-continuation": "RUN a \\\r \n b\n",
    "lone-cr-inside-line": "RUN a\r\rb\nRUN c\rd\\\r\ne\n",
    "bom": "\ufeffFROM a\nRUN x\n",
    "bom-directive": "\ufeff# escape=`\nRUN a `\n b\n",
    "no-final-newline": "FROM a\nRUN x",
    "continue-at-eof": "FROM a\nRUN something \\",
    "lone-escape-at-eof": "FROM a\n\\",
    "lone-escape-line-starts-instruction": "\\\nRUN x\n",
    "indented": "\tFROM a\n   RUN\tx\n",
    "unicode-space": "\u2003RUN x\u2003\nRUN\u00a0x\n",
    "escaped-escape-at-eol": "RUN a \\\\\nRUN b\n",
    "escaped-escape-then-continuation": "RUN a \\\\ \\\nb\n",
    "keyword-split-by-continuation": "RUN a\nRU\\\nN b\n",
    "lower-case": "from a\nrun echo hi\ncopy --from=a /x /y\n",
    "mixed-case": "From a\nRuN echo hi\n",
    # continuations with comments and blank lines
    "comment-in-continuation": "RUN a \\\n# comment\n  b\n",
    "indented-comment-in-continuation": "RUN a \\\n    # comment \\\n  b\n",
    "blank-in-continuation": "RUN a \\\n\n  \n\tb\n",
    "blank-lines-join-next-instruction": "RUN a \\\n\nRUN b\n",
    "comment-ends-file-in-continuation": "RUN a \\\n# trailing\n",
    "comment-is-not-continued": "# a \\\nRUN x\n",
    "buildkit-empty-continuation-warning": (
        "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n"
        "    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n"
        "   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t"
    ),
    # escape directive
    "backtick-escape": "# escape=`\nFROM a\nRUN echo a `\n    b `\n    c\nRUN dir c:\\ \n",
    "backtick-escape-env": '# escape=`\nENV a=b` c d=`"e`"\n',
    "backtick-flag-escape-is-backslash": "# escape=`\nRUN --mount=a` b x\n",
    "escape-directive-spaces": "#escape =   `  \nRUN a `\n b\n",
    "escape-directive-upper": "# ESCAPE=`\nRUN a `\n b\n",
    "escape-directive-indented": "  # escape=`\nRUN a `\n b\n",
    "escape-after-blank-is-comment": "\n# escape=`\nRUN a\n",
    "escape-after-comment-is-comment": "# hello\n# escape=`\nRUN a\n",
    "escape-after-empty-comment": "#\n# escape=`\nRUN a\n",
    "escape-after-unknown-directive": "# foo=bar\n# escape=`\nRUN a `\n b\n",
    "escape-after-syntax": "# syntax=docker/dockerfile:1\n# escape=`\nRUN a `\n b\n",
    "escape-after-syntax-and-blank": "# syntax=x\n\n# escape=`\nRUN a `\n b\n",
    "escape-crlf": "# escape=`\r\nRUN a `\r\n b\r\n",
    "escape-late-is-comment": "RUN a\n# escape=x\nRUN b\n",
    "duplicate-escape": "# escape=`\n# escape=`\nRUN a\n",
    "duplicate-syntax": "# syntax=a\n# syntax=b\nRUN a\n",
    "invalid-escape": "# escape=` x\nRUN a\n",
    "invalid-escape-vt": "# escape=`\x0b\nRUN a\n",
    # heredocs
    "heredoc": "FROM a\nRUN <<EOF\nset -e\napt-get update\nEOF\nRUN after\n",
    "heredoc-chomp": "RUN <<-EOF\n\t\tindented\n\tEOF\nRUN x",
    "heredoc-chomp-spaces-do-not-end": "RUN <<-EOF\n\thi\n  EOF\nEOF\n",
    "heredoc-quoted": "RUN <<'EOF' <<\"E2\" cat\na $x\nEOF\nb\nE2\n",
    "heredoc-partly-quoted": 'RUN <<E"O"F\nhi\nEOF\n',
    "heredoc-two": "RUN cat <<EOF && cat <<-EOT\na\nEOF\n\tb\n\tEOT\n",
    "heredoc-after-continuation": (
        "RUN --mount=type=cache,target=/root/.cache \\\n    <<EOF \\\n    && echo\npip install x\nEOF\n"
    ),
    "heredoc-crlf": "RUN <<EOF\r\nhi\r\nEOF\r\n",
    "heredoc-terminator-with-crs": "RUN <<EOF\nEOF\r\r\n",
    "heredoc-terminator-trailing-space": "RUN <<EOF\nEOF \nEOF\n",
    "heredoc-empty": "RUN <<EOF\nEOF",
    "heredoc-at-eof-no-newline": "RUN <<EOF >/x\nhi\nEOF",
    "heredoc-fd": "RUN 2<<EOF\nhi\nEOF\n",
    "heredoc-dollar-name": "RUN <<$X\nhi\n$X\n",
    "heredoc-quoted-space-name": "RUN <<'E F'\nhi\nE F\n",
    "heredoc-escaped-space-name": "RUN <<E\\ F\nhi\nE F\n",
    "heredoc-copy": "COPY <<EOF /x\nhi\nEOF\n",
    "heredoc-add": "ADD <<EOF /x\nhi\nEOF\n",
    "heredoc-with-mount": "RUN --mount=type=cache,target=/x <<EOF\nhi\nEOF\n",
    "heredoc-repeated": "RUN <<EOF\nhi\nEOF\nRUN <<EOF\nho\nEOF\n",
    "heredoc-not-for-cmd": "CMD <<EOF\nhi\nEOF\n",
    "heredoc-not-in-json": 'RUN ["<<EOF"]\nhi\nEOF\n',
    "heredoc-glued-is-not": "RUN cat<<EOF\nhi\nEOF\n",
    "heredoc-in-quotes-is-not": 'RUN echo "<<EOF"\nhi\nEOF\n',
    "heredoc-after-unmatched-quote-is-not": "RUN echo 'it s <<EOF\nhi\nEOF\n",
    "heredoc-two-in-one-word-is-not": "RUN <<EOF<<EOF2\nhi\nEOF\n",
    "heredoc-empty-name-is-not": 'RUN <<""\nhi\nEOF\n',
    "heredoc-escaped-space-before-is-not": "RUN a\\ <<EOF\nhi\nEOF\n",
    "heredoc-after-expansion": "RUN ${a:-x y} $ ${#} ${a:-${b}} <<EOF\nhi\nEOF\n",
    "heredoc-after-bad-expansion-is-not": "RUN ${a%b} <<EOF\nhi\nEOF\n",
    "heredoc-after-bang-expansion-is-not": "RUN ${!a} <<EOF\nhi\nEOF\n",
    "heredoc-unterminated": "RUN <<EOF\nhi",
    "heredoc-continued-name": "RUN <<EOF\\\nhi\nEOF\n",
    "heredoc-backtick-escape": "# escape=`\nRUN <<EOF `\n && x\nhi\nEOF\n",
    "onbuild-heredoc": "ONBUILD RUN --mount=x <<EOF\nhi\nEOF\n",
    "onbuild-add-heredoc": "ONBUILD ADD <<EOF /x\nhi\nEOF\n",
    # flags
    "flags": 'RUN --mount="type=cache,target=/x y" --link a b\n',
    "flag-space-value-is-not-a-value": "RUN --mount type=cache x\n",
    "flag-escaped-space": "RUN --mount=a\\ b x\n",
    "flag-double-dash": "RUN -- --mount=a x\nRUN --mount=a -- x\nRUN --mount=a --\n",
    "flag-quoted-double-dash": 'RUN --mount=a "--" x\n',
    "flag-empty-values": "RUN --x='' --y= x\n",
    "flag-escapes-in-quotes": "RUN --a=\"b\\\"c\" --d='e\\'f' x\n",
    "flag-unterminated-quote": 'RUN --a="unterminated x\n',
    "flag-trailing-escape": "RUN --x=a\\\n",
    "flag-only": "RUN --mount=type=cache,target=/x\n",
    "flag-three-dashes": "RUN ---x y\n",
    "flag-bare-dashes": "RUN --\nRUN -- \nRUN -\nRUN --=x y\n",
    "flag-across-continuation": "RUN --mount=type=cache,\\\ntarget=/x pip install y\n",
    "flag-non-ascii": "RUN --mount=target=/é x\n",
    "flag-nbsp": "RUN --mount=a\u00a0b x\n",
    # JSON forms
    "json": 'RUN    ["a",  "b"]  \nCMD []\nENTRYPOINT [ "x" ]\nSHELL ["/bin/sh", "-c"]\n',
    "json-with-flags": 'COPY --from=a --chown=1:1 ["a b", "c"]\nCMD --doit [ "a", "b" ]\n',
    "json-trailing-text": 'RUN ["a"] junk\nRUN ["a"]]\n',
    "json-invalid": 'RUN ["a" "b"]\nRUN [\'a\']\nRUN ["a\\x"]\nRUN [NaN]\nRUN [1e999]\n',
    "json-not-strings": 'RUN ["a", 1]\n',
    "json-nested": 'CMD [ "echo", [ "nested json" ] ]\n',
    "json-across-lines": 'RUN ["a",\n "b"]\n',
    "json-continued": 'RUN ["a", \\\n "b"]\n',
    "json-unicode": 'RUN ["a\\u00e9", "\\u2603"]\n',
    "json-single-quoted-string": 'CMD \'["echo", "hi"]\'\n',
    # ONBUILD
    "onbuild-run": "ONBUILD RUN --mount=type=cache,target=/root/.cache pip install x\n",
    "onbuild-json": 'onbuild run --mount=x ["a"]\n',
    "onbuild-empty": "ONBUILD\nONBUILD RUN\n",
    "onbuild-own-flag": "ONBUILD --x RUN a\n",
    "onbuild-onbuild": "ONBUILD ONBUILD RUN x\n",
    "onbuild-unknown": "ONBUILD FOO\n",
    # per-instruction argument parsing
    "env-forms": 'ENV a b c\nENV a="b c" d=e\\ f\nENV\nENV a=b\\\n c=d\n',
    "env-one-word": "FROM busybox\n\nENV PATH\n",
    "env-missing-equals": "ENV a=b c\n",
    "label-forms": 'LABEL a="b c" d=e\nLABEL "a b"\n',
    "label-one-word": "LABEL a\n",
    "arg": "ARG\nARG a b=c\nARG a=\"b c\" 'd e'\n",
    "whitespace-lists": 'FROM a AS b\nFROM --platform=$X a\nEXPOSE 80  443\nVOLUME /a /b\nVOLUME ["/a"]\n',
    "strings": "STOPSIGNAL  SIGTERM \nUSER a b\nWORKDIR  /a b \nMAINTAINER a <b>\n",
    "healthcheck": (
        "HEALTHCHECK\nHEALTHCHECK NONE\nHEALTHCHECK CMD\n"
        'HEALTHCHECK --interval=5s CMD ["a"]\nHEALTHCHECK --retries=3 CMD curl -f http://x || exit 1\n'
    ),
    "no-arguments": "CMD\nRUN\nRUN \\\n\n",
    # rejected files
    "unknown-instruction": "FROM a\nBEFORE x\n",
    "unknown-lower-case": "FROM a\nfoo\n",
    "unknown-after-heredoc-lookalike": "FROM a\nRUN echo \\\n\nnot an instruction\n",
    # empty input
    "empty": "",
    "only-comment": "# just a comment\n",
    "only-blank": "\n\n",
    "only-directive": "# syntax=docker/dockerfile:1\n",
    "trailing-blank-lines": "FROM a\n\n\n",
}


@pytest.mark.parametrize("text", list(CASES.values()), ids=list(CASES))
def test_inline_case_agrees_with_buildkit(text: str) -> None:
    assert_agrees(text)
    if "\r" not in text and "\n" in text:
        assert_agrees(text.replace("\n", "\r\n"))


@pytest.mark.parametrize("name", ["brimstone-consuldock", "continueIndent", "escape", "lk4d4-the-edge-case-generator"])
def test_buildkit_testfile_with_crlf(name: str) -> None:
    path = TESTFILES / name / "Dockerfile"
    if not path.is_file():
        pytest.skip(f"corpus not found at {CORPUS}")
    df = assert_agrees(path.read_text(encoding="utf-8").replace("\n", "\r\n"))
    assert df is not None and df.newline == "\r\n"


# --------------------------------------------------------------------------- exact results


def test_spans_of_a_run_with_flags_and_continuation() -> None:
    text = "FROM a\nRUN --mount=type=cache,target=/root/.cache/pip \\\n    pip install --no-cache-dir x\n"
    df = parse(text)
    run = df.instructions[1]
    assert run.keyword == "RUN" and text[slice(*run.keyword_span)] == "RUN"
    (mount,) = run.flags
    assert (mount.name, mount.value) == ("mount", "type=cache,target=/root/.cache/pip")
    assert text[slice(*mount.span)] == "--mount=type=cache,target=/root/.cache/pip"
    assert text[slice(*run.args_span)] == "pip install --no-cache-dir x"
    assert text[slice(*run.span)] == text[7:-1]
    assert (run.start_line, run.end_line) == (2, 3)
    assert run.flag_values("mount") == ("type=cache,target=/root/.cache/pip",)
    assert run.has_flag("mount") and not run.has_flag("link")
    script, offsets = run.shell_source()
    assert script == "pip install --no-cache-dir x" == run.value[0]
    start = script.index("--no-cache-dir")
    assert text[offsets[start] : offsets[start + len("--no-cache-dir") - 1] + 1] == "--no-cache-dir"


def test_shell_source_skips_comments_blank_lines_and_continuations() -> None:
    text = "RUN apt-get update \\\n  # why\n\n  && rm -rf /var/lib/apt/lists/*\n"
    run = parse(text).instructions[0]
    script, offsets = run.shell_source()
    assert script == "apt-get update   && rm -rf /var/lib/apt/lists/*"
    i = script.index("rm -rf")
    assert text[offsets[i] :].startswith("rm -rf /var/lib/apt/lists/*\n")
    assert offsets[script.index("  &&")] == text.index("  &&")


def test_shell_source_with_backtick_escape_and_crlf() -> None:
    text = "# escape=`\r\nRUN echo a `\r\n    b\r\n"
    df = parse(text)
    assert df.escape == "`" and df.newline == "\r\n"
    assert [(d.name, d.value, d.line) for d in df.directives] == [("escape", "`", 1)]
    script, offsets = df.instructions[0].shell_source()
    assert script == "echo a     b"
    assert "".join(text[o] for o in offsets) == script


def test_bare_flag_and_quoted_flag() -> None:
    text = 'COPY --link --chown="a b" src dst\n'
    (copy,) = parse(text).instructions
    assert [(f.name, f.value) for f in copy.flags] == [("link", None), ("chown", "a b")]
    assert [text[slice(*f.span)] for f in copy.flags] == ["--link", '--chown="a b"']
    assert text[slice(*copy.args_span)] == "src dst"


def test_heredoc_spans() -> None:
    text = "RUN <<EOF cat <<-'TAB'\necho $HOME\nEOF\n\tliteral\n\tTAB\nCMD x\n"
    run, cmd = parse(text).instructions
    a, b = run.heredocs
    assert (a.name, a.chomp, a.expand, a.content) == ("EOF", False, True, "echo $HOME\n")
    assert (b.name, b.chomp, b.expand, b.content) == ("TAB", True, False, "\tliteral\n")
    assert text[slice(*a.span)] == "echo $HOME\nEOF"
    assert text[slice(*b.span)] == "\tliteral\n\tTAB"
    assert text[slice(*run.span)] == text[: text.index("\nCMD")]
    assert text[slice(*run.args_span)] == "<<EOF cat <<-'TAB'"
    assert (run.end_line, cmd.start_line) == (5, 6)


def test_onbuild_inner_keeps_its_flags() -> None:
    text = "ONBUILD RUN --mount=type=cache,target=/x pip install x\n"
    (ins,) = parse(text).instructions
    assert ins.keyword == "ONBUILD" and ins.flags == ()
    assert ins.value == ("pip install x",)
    inner = ins.inner
    assert inner is not None and inner.keyword == "RUN"
    assert [text[slice(*f.span)] for f in inner.flags] == ["--mount=type=cache,target=/x"]
    assert text[slice(*inner.keyword_span)] == "RUN"
    assert text[slice(*inner.args_span)] == "pip install x"
    assert inner.shell_source()[0] == "pip install x"
    assert text[slice(*ins.args_span)] == text[8:-1]


def test_onbuild_heredoc_is_attached_to_both() -> None:
    (ins,) = parse("ONBUILD RUN <<EOF\nhi\nEOF\n").instructions
    assert [h.content for h in ins.heredocs] == ["hi\n"]
    assert ins.inner is not None and ins.inner.heredocs == ins.heredocs


def test_lower_case_keyword_is_normalised() -> None:
    text = "from a\nrun echo hi\n"
    run = parse(text).instructions[1]
    assert run.keyword == "RUN" and text[slice(*run.keyword_span)] == "run"


def test_bom_stays_in_text() -> None:
    text = "\ufeffFROM a\n"
    df = parse(text)
    assert df.text == text
    assert df.instructions[0].keyword_span == (1, 5)


def test_check_directive_does_not_end_the_header() -> None:
    """BuildKit >= 0.14 knows ``# check=``; the v0.12 oracle ignores the escape after it."""
    text = "# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nRUN a `\n b\n"
    df = parse(text)
    assert [(d.name, d.value, d.line) for d in df.directives] == [
        ("syntax", "docker/dockerfile:1", 1),
        ("check", "skip=all", 2),
        ("escape", "`", 3),
    ]
    assert df.escape == "`"
    assert [i.value for i in df.instructions] == [("a  b",)]
    oracle, _ = _oracle(text)
    assert oracle is not None and len(oracle) == 2  # documented divergence


def test_directives_stop_at_blank_line_and_comment() -> None:
    df = parse("# syntax=x\n\n# escape=`\nFROM a\n")
    assert [d.name for d in df.directives] == ["syntax"] and df.escape == "\\"
    df = parse("# hello\n# syntax=x\nFROM a\n")
    assert df.directives == ()


def test_duplicate_check_directive() -> None:
    with pytest.raises(DockerfileSyntaxError, match="only one check parser directive"):
        parse("# check=a\n# check=b\nFROM a\n")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM a\nRUN <<EOF\nhi\n", 2, "unterminated heredoc"),
        ('FROM a\n\nRUN ["a", 1]\n', 3, "when using JSON array syntax, arrays must be comprised of strings only"),
        ("FROM a\nENV a\n", 2, "ENV must have two arguments"),
        ("LABEL a\n", 1, "LABEL must have two arguments"),
        ("ENV a=b c\n", 1, 'Syntax error - can\'t find = in "c". Must be of the form: name=value'),
        ("# escape=x\nFROM a\n", 1, "invalid escape token 'x' does not match ` or \\"),
        ("# syntax=a\n# escape=\\\n# escape=`\nFROM a\n", 3, "only one escape parser directive can be used"),
        ("FROM a\nfoo bar\n", 2, "unknown instruction: foo"),
        ("FROM a\nRU\\\nNN x\n", 2, "unknown instruction: RUNN"),
        ("FROM a\n\\", 2, "unknown instruction: "),
        ("FROM a\nBEFORE x\nRUN <<EOF\n", 3, "unterminated heredoc"),  # parse errors come first
        ("FROM a\nLABEL x=" + "a" * 65536 + "\n", 2, "dockerfile line greater than max allowed size of 65535"),
        ("FROM a\nRUN <<EOF\n" + "a" * 70000 + "\nEOF\n", 2, "unterminated heredoc"),  # Go stops reading
        ("FROM a\nRUN x \\\n" + "é" * 40000 + "\n", 3, "dockerfile line greater than max allowed size of 65535"),
    ],
)
def test_errors_carry_buildkit_line_and_message(text: str, line: int, message: str) -> None:
    with pytest.raises(DockerfileSyntaxError) as info:
        parse(text)
    assert (info.value.line, info.value.message) == (line, message)
    assert str(info.value) == f"line {line}: {message}"
    cmds, err = _oracle(text)
    assert err is not None or any((c.cmd or "").upper() not in INSTRUCTIONS for c in cmds)


def test_longest_allowed_line() -> None:
    assert_agrees("FROM a\nLABEL x=" + "a" * (65535 - 8) + "\n")


def test_error_pickles() -> None:
    e = pickle.loads(pickle.dumps(DockerfileSyntaxError(3, "boom")))
    assert (e.line, e.message, str(e)) == (3, "boom", "line 3: boom")


def test_empty_file_is_valid() -> None:
    for text in ("", "\n", "# only a comment\n", "# syntax=x\n"):
        df = parse(text)
        assert df.instructions == () and df.text == text


def test_line_of_and_position() -> None:
    text = "FROM a\r\nRUN x \\\r\n  y\r\n"
    df = parse(text)
    assert df.newline == "\r\n"
    run = df.instructions[1]
    assert df.line_of(0) == 1 and df.position(0) == (1, 1)
    assert df.position(run.span[0]) == (2, 1)
    y = text.index("y")
    assert df.line_of(y) == 3 and df.position(y) == (3, 3)
    assert df.position(len(text)) == (4, 1)


def test_newline_detection() -> None:
    assert parse("FROM a\n").newline == "\n"
    assert parse("FROM a").newline == "\n"
    assert parse("FROM a\r\nRUN b\r\n").newline == "\r\n"


def test_splicing_a_mount_keeps_everything_else() -> None:
    """What the rewriter does: insert after the keyword, delete a flag, via spans only."""
    text = 'FROM python\n# deps\nRUN pip install \\\n      --no-cache-dir \\\n      requests\nCMD ["python"]\n'
    run = parse(text).instructions[1]
    script, offsets = run.shell_source()
    i = script.index("--no-cache-dir")
    lo, hi = offsets[i], offsets[i + len("--no-cache-dir") - 1] + 1
    ins = run.keyword_span[1]
    new = text[:ins] + " --mount=type=cache,target=/root/.cache/pip" + text[ins:lo] + text[hi:]
    df = assert_agrees(new)
    assert df is not None
    new_run = df.instructions[1]
    assert new_run.flag_values("mount") == ("type=cache,target=/root/.cache/pip",)
    assert new_run.value[0].split() == ["pip", "install", "requests"]
    assert new.replace(" --mount=type=cache,target=/root/.cache/pip", "") == text.replace("--no-cache-dir", "")


# --------------------------------------------------------------------------- random agreement

FRAGMENTS = [
    "RUN", "run", "COPY", "ADD", "ONBUILD RUN", "ENV", "LABEL", "ARG", "CMD", "HEALTHCHECK", "FROM", "EXPOSE",
    "ENTRYPOINT", "SHELL", "USER", "WORKDIR", "VOLUME", "STOPSIGNAL", "MAINTAINER",
    " ", "  ", "\t", "\\", "`", "\n", "\r\n", "\n\n", "#", "# c", "<<EOF", "<<-EOF", "<<'EOF'", '<<"EOF"', "EOF",
    "\tEOF", "--mount=type=cache,target=/x", "--link", "--", '"', "'", "a=b", "a", "b c", "[", "]", '["a"',
    ', "b"]', "$X", "${X}", "${X:-y}", "\\ ", "echo", "&&", "é", "=", ",", "2<<EOF", "cat<<EOF", "x\\\\",
    "# escape=`", "# syntax=x",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(8))
def test_random_fragment_soup_agrees_with_buildkit(seed: int) -> None:
    """Documents glued from grammar fragments: both parsers accept/reject alike, spans exact."""
    rng = random.Random(seed)
    for _ in range(250):
        parts = [rng.choice(["# escape=`\n", "# syntax=x\n", ""])]
        for _ in range(rng.randint(1, 25)):
            parts.append(rng.choice(FRAGMENTS))
            if rng.random() < 0.5:
                parts.append(" ")
        text = "".join(parts)
        try:
            assert_agrees(text)
        except AssertionError as e:
            raise AssertionError(f"{text!r}: {e}") from None
