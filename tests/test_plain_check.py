"""`cachefix check PATH...` without an option (a pre-commit hook's command line) is read without
argparse; what it prints, on stdout and stderr, and its exit status are those of the same check
read by argparse (`check -- PATH...`, which the plain reader leaves to argparse), cold and from
the result cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cachefix.arguments import build_parser
from cachefix.cli import plain_check
from tests.helpers import write

ROOT = Path(__file__).resolve().parent.parent
# Says, after the run, whether argparse was imported (it is not for the plain form), and whether
# any file was linted (the engine is imported only for a file not in the result cache).
RUN = ("import sys; from cachefix.cli import main; code = main(sys.argv[1:]); "
       "sys.stderr.write('ARGPARSE %s %s' % ('argparse' in sys.modules, 'cachefix.engine' in sys.modules)); "
       "sys.exit(code)")


@pytest.mark.parametrize("argv", [["check", "Dockerfile"], ["check", "a", "b/c", "check", "", "x y"]])
def test_the_plain_form_reads_as_argparse_reads_it(argv: list[str]) -> None:
    plain = plain_check(argv)
    assert plain is not None
    assert vars(plain) == vars(build_parser("check").parse_args(argv))


@pytest.mark.parametrize("argv", [[], ["check"], ["fix", "Dockerfile"], ["Dockerfile"], ["check", "--", "x"],
                                  ["check", "-q", "x"], ["check", "x", "--no-cache"], ["check", "--help"],
                                  ["check", "-"], ["rules"], ["check", "x", "-o", "out"], ["--version"]])
def test_every_other_form_is_left_to_argparse(argv: list[str]) -> None:
    assert plain_check(argv) is None


def run(args: list[str], cwd: Path, cache: Path) -> tuple[int, str, str, bool, bool]:
    """Exit status, stdout, stderr, whether argparse was imported and whether a file was linted."""
    done = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "XDG_CACHE_HOME": str(cache), "CACHEFIX_NO_CACHE": ""})
    stderr, _, imported = done.stderr.rpartition("ARGPARSE ")
    argparse_used, linted = imported.split()
    return done.returncode, done.stdout, stderr, argparse_used == "True", linted == "True"


def _tree(root: Path) -> list[str]:
    """Files with findings and without, a suppression, one that cannot be parsed, a configuration."""
    for name in ("apt/heredoc", "apt/mount-right", "composer/composer-phar", "npm/old-global-npm-cache-clear"):
        shutil.copy(ROOT / "fixtures" / name / "Dockerfile", write(root / name / "Dockerfile", ""))
    write(root / "quiet" / "Dockerfile", "FROM python:3.12\n# cachefix: ignore[CF101]\nRUN pip install flask\n")
    write(root / "configured" / ".cachefix.toml", 'ignore = ["CF201"]\n')
    write(root / "configured" / "Dockerfile", "FROM debian\nRUN apt-get update && apt-get install -y curl\n"
                                              "RUN pip install flask\n")
    write(root / "broken" / "Dockerfile", "FROM python:3.12\nRUN <<EOF\npip install flask\n")
    return sorted(str(path.relative_to(root)) for path in root.rglob("Dockerfile"))


# All the files, then one each: findings (a heredoc), none, unparsable, a configuration, a suppression.
@pytest.mark.parametrize("subset", [slice(None), slice(0, 1), slice(1, 2), slice(2, 3), slice(4, 5), slice(6, 7)])
def test_plain_and_argparse_runs_print_the_same_bytes_cold_and_cached(tmp_path: Path, subset: slice) -> None:
    tree = tmp_path / "tree"
    files = _tree(tree)[subset]
    seen = {}
    for form, args in (("plain", ["check", *files]), ("argparse", ["check", "--", *files])):
        cache = tmp_path / f"cache-{form}"
        cold, cached = run(args, tree, cache), run(args, tree, cache)
        assert cold[3] == cached[3] == (form == "argparse")  # the plain form really skipped argparse
        assert cold[4] and (not cached[4] or "broken/Dockerfile" in files)  # linted, then a cache hit
        seen[form] = (cold[:3], cached[:3])
    assert seen["plain"] == seen["argparse"]
    cold, cached = seen["plain"]
    assert cold == cached
    assert cold[0] == {"apt/mount-right/Dockerfile": 0, "quiet/Dockerfile": 0}.get(files[0], 1) or cold[0] == 2
