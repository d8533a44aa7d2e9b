"""A run over a large tree keeps, per file, only what its report reads: the texts of files with
nothing to list are released, and whether a file changed survives that."""

from __future__ import annotations

from pathlib import Path

from cachefix.model import FileResult, Finding, Position

FINDING = Finding("CF101", "pip", "pip downloads without a cache mount", Position(2, 5), Position(2, 20))


def test_a_checked_file_keeps_its_text_only_when_it_has_findings() -> None:
    clean = FileResult(Path("a"), original="FROM x\n", fixed="FROM x\n")
    listed = FileResult(Path("b"), findings=[FINDING], remaining=[FINDING], original="FROM x\nRUN pip install y\n",
                        fixed="FROM x\nRUN pip install y\n")
    for result in (clean, listed):
        result.release_texts(fixing=False)
    assert (clean.original, clean.fixed, clean.changed) == ("", None, False)
    assert (listed.original, listed.changed) == ("FROM x\nRUN pip install y\n", False)


def test_a_fixed_file_keeps_whether_it_changed_and_the_text_its_remaining_findings_refer_to() -> None:
    fixed = FileResult(Path("a"), findings=[FINDING], original="old\n", fixed="new\n")
    left = FileResult(Path("b"), findings=[FINDING], remaining=[FINDING], original="old\n", fixed="new\n")
    for result in (fixed, left):
        result.release_texts(fixing=True)
    assert fixed.changed and (fixed.original, fixed.fixed) == ("", None)
    assert left.changed and left.original == "new\n"
