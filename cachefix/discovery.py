"""Which files are Dockerfiles: the names cachefix looks for, and the walk through folders.

A folder is walked as git would see it: `.git` and what each `.gitignore` ignores are skipped,
symbolic links to folders are not entered, and a symbolic link to a file is followed only when
its target is inside the folder given (a link to /proc/self/environ or ~/.ssh in a repository
must not be read by a CI job). A file named on the command line is linted whatever its name.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from cachefix.files import read_regular_file

# Dockerfile, Containerfile, Dockerfile.prod, Dockerfile-dev, api.Dockerfile, x.containerfile.
NAMES = re.compile(r"(^|\.)(dockerfile|containerfile)([.-].*)?$", re.IGNORECASE)

# The last extension of a name that says the file is something else: `dockerfile.py` is Python,
# `Dockerfile.md` documentation, `Dockerfile.j2` a template that only becomes a Dockerfile when
# rendered. `Dockerfile.dev`, `.prod`, `.gpu`, `.cuda`, `.ubuntu2204` are Dockerfiles. `.cachefix`
# is the suffix of the temporary files of cachefix before 0.2. The pre-commit hooks' `exclude`
# lists the same extensions (a test compares them).
NOT_DOCKERFILES = frozenset({
    "py", "pyi", "pyc", "pyx", "ipynb", "go", "rs", "js", "mjs", "cjs", "ts", "mts", "cts", "jsx", "tsx", "vue",
    "svelte", "rb", "java", "kt", "kts", "scala", "groovy",
    "gradle", "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "cs", "fs", "swift", "m", "php", "pl", "pm", "lua", "r",
    "jl", "dart", "ex", "exs", "erl", "hs", "ml", "clj", "elm", "nim", "zig",
    "sql", "sh", "bash", "zsh", "fish", "ps1", "psm1", "bat", "cmd", "nix", "mk", "cmake",
    "md", "markdown", "rst", "txt", "adoc", "asciidoc", "org", "html", "htm", "css", "scss", "pdf", "tex",
    "json", "jsonc", "json5", "yaml", "yml", "toml", "ini", "cfg", "conf", "xml", "csv", "tsv", "lock",
    "properties", "env",
    "j2", "jinja", "jinja2", "tpl", "tmpl", "template", "gotmpl", "erb", "mustache", "hbs", "handlebars", "njk",
    "liquid", "ejs",
    "bak", "orig", "rej", "swp", "swo", "patch", "diff", "log",
    "png", "jpg", "jpeg", "gif", "svg", "ico", "zip", "tar", "gz", "tgz", "bz2", "xz", "zst", "7z", "whl", "jar",
    "exe", "so", "dll", "o", "a",
    "asc", "sig", "sha256", "sha512", "md5",
    "dockerignore", "cachefix",
})
GITIGNORE_LIMIT = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Warn = Callable[[str], None]


class BadPath(Exception):
    """A path on the command line that cannot be linted (missing, an unreadable folder): one line."""


class BadPattern(ValueError):
    """A gitignore-style pattern that git would not accept either (`!`, `foo\\`): one line."""


class Found(NamedTuple):
    """A Dockerfile to lint, and the command-line argument that led to it."""

    path: Path
    given: str


def is_dockerfile_name(name: str) -> bool:
    """Whether a file of this name, found in a folder, is linted."""
    if not NAMES.search(name) or name.endswith("~"):
        return False
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return extension not in NOT_DOCKERFILES


def compile_patterns(patterns: Sequence[str], origin: str) -> Any:  # -> pathspec.GitIgnoreSpec
    """The patterns as one matcher, or BadPattern naming the first one git would reject."""
    import pathspec  # only when a .gitignore or --exclude is there: start-up time matters

    try:
        return pathspec.GitIgnoreSpec.from_lines(patterns)
    except ValueError:
        bad = next(p for p in patterns if not _valid([p]))
        raise BadPattern(f"{origin}: invalid pattern {bad!r}") from None


def _valid(lines: Sequence[str]) -> bool:
    import pathspec

    try:
        pathspec.GitIgnoreSpec.from_lines(lines)
    except ValueError:
        return False
    return True


def _gitignore(path: Path) -> Any | None:
    """The patterns of one .gitignore; lines git rejects are dropped, as git drops them."""
    try:
        lines = read_regular_file(path, GITIGNORE_LIMIT).decode("utf-8", "replace").splitlines()
    except OSError:
        return None  # as git does with a .gitignore it cannot read
    try:
        return compile_patterns(lines, str(path))
    except BadPattern:
        return compile_patterns([line for line in lines if _valid([line])], str(path))


def warn_on_stderr(message: str) -> None:
    print(f"cachefix: warning: {message}", file=sys.stderr)


def find_dockerfiles(paths: Sequence[str], exclude: Sequence[str] = (),
                     warn: Warn = warn_on_stderr) -> Iterator[Found]:
    """Files named on the command line, and Dockerfiles found below folders, each file once.

    `exclude` holds gitignore-style patterns matched against paths relative to the folder given.
    A path named that does not exist, cannot be listed or is not followed (see `_not_checked`) is
    BadPath; a file found in a folder that is not followed, or a subfolder that cannot be read,
    is a warning.
    """
    excluded = compile_patterns(exclude, "--exclude") if exclude else None
    seen: set[tuple[int, int]] = set()  # (device, inode): a hard link or a link to a file found already
    cwd = Path.cwd()
    for given in paths:
        path = Path(given)
        if not stat.S_ISDIR(_mode(path, given)):
            root = cwd if _inside(path.absolute(), cwd) else path.absolute().parent
            if problem := _not_checked(path, root):
                raise BadPath(problem)
            if _first_time(path, seen):
                yield Found(path, given)
            continue
        for candidate in _walk(path, given, excluded, warn):
            if problem := _not_checked(candidate, path):
                warn(problem)
            elif _first_time(candidate, seen):
                yield Found(candidate, given)


def _mode(path: Path, given: str) -> int:
    if not given:  # Path("") is the current folder: `cachefix fix "$UNSET"` must not fix it
        raise BadPath("an empty path on the command line (an unset variable?)")
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        problem = "a symbolic link to a missing file" if path.is_symlink() else "no such file or folder"
    except OSError as exc:
        problem = exc.strerror or str(exc)
    raise BadPath(f"{given}: {problem}")


def _walk(top: Path, given: str, excluded: Any, warn: Warn) -> Iterator[Path]:
    """The Dockerfile names below `top`, in a stable order, skipping what git would ignore.

    Walked with a stack, not recursion (os.walk's recursion fails 1,000 folders deep), entering
    no symbolic link to a folder.
    """
    # (folder, its path from top, the .gitignores above it)
    stack: list[tuple[Path, str, tuple[tuple[str, Any], ...]]] = [(top, "", ())]
    while stack:
        folder, relative, ignores = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            if folder is top:
                raise BadPath(f"{given}: cannot read this folder: {exc.strerror}") from None
            warn(f"{folder}: cannot read this folder ({exc.strerror}); the Dockerfiles in it are not checked")
            continue
        if any(entry.name == ".gitignore" for entry in entries):
            spec = _gitignore(folder / ".gitignore")
            ignores = ignores if spec is None else (*ignores, (relative, spec))
        subfolders = []
        for entry in entries:
            if _is_folder(entry):
                if (entry.name != ".git" and not entry.is_symlink()
                        and not _skipped(relative + entry.name + "/", excluded, ignores)):
                    subfolders.append((folder / entry.name, relative + entry.name + "/", ignores))
            elif is_dockerfile_name(entry.name) and not _skipped(relative + entry.name, excluded, ignores):
                yield folder / entry.name
        stack.extend(reversed(subfolders))


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # a link to a folder too: it is neither entered nor read as a file
    except OSError:
        return False


def _skipped(relative: str, excluded: Any, ignores: tuple[tuple[str, Any], ...]) -> bool:
    """Excluded on the command line, or ignored by a .gitignore above it (relative to that file)."""
    if excluded is not None and excluded.match_file(relative):
        return True
    return any(spec.match_file(relative[len(base):]) for base, spec in ignores)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _not_checked(path: Path, root: Path) -> str | None:
    """Why a file is not read: a path that reports cannot show (not UTF-8, which JSON and SARIF
    need, or with a control character, which would forge a report line), or a symbolic link
    whose target is outside `root`."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{text!a}: not checked: its path is not UTF-8, so a report could not name it"
    if _CONTROL.search(text):
        return f"{text!a}: not checked: its path holds a control character, so a report could not name it"
    if path.is_symlink() and not _inside(target := Path(os.path.realpath(path)), Path(os.path.realpath(root))):
        return f"{path}: not checked: a symbolic link to {target}, outside {root}"
    return None


def _first_time(path: Path, seen: set[tuple[int, int]]) -> bool:
    try:
        info = path.stat()
    except OSError:
        return True  # linting it will say what is wrong
    key = (info.st_dev, info.st_ino)
    if key in seen:
        return False
    seen.add(key)
    return True
