"""Findings remembered per file content, so a hook that sees the same files commit after commit
does not lint them again (ruff's approach).

An entry is the `check` outcome of one text under one set of settings. Its key is a BLAKE2b digest of
everything the outcome depends on: the text, the file's path (sibling base images are looked
up from it), the settings (rules and their options, `--syntax`, configured images, the
per-file ignores), cachefix's version and the size and time of every one of its source files
(so an edited checkout or a reinstall starts afresh), the Python version, and the plugins'
modules. What the outcome read besides the file, the Dockerfiles of sibling base images
(`cachefix.bases`), is recorded in the entry with a digest of each (or that it was not
there) and compared again before the entry is used.

Entries are Python literals read with `ast.literal_eval` (never pickle: a file in a cache folder
must not be able to run code; and unlike json, ast is already imported by then), written to a
temporary file in the same folder and renamed into place, so concurrent runs never read half an
entry; an entry that does not parse, or names another key, is a miss. Entries are not
fsynced: a crash loses or truncates one, which is a miss, never a wrong result. A file that
could not be read, parsed or fixed is never cached.

The folder is platformdirs' user cache folder for `cachefix-lint` (`~/.cache/cachefix-lint` on
Linux; not the download cache's folder, whose layout `cachefix cache clear` checks), or none with
`--no-cache` or `CACHEFIX_NO_CACHE`.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from cachefix import __version__
from cachefix.model import Edit, Finding, Position, Severity

SCHEMA = 1
APP = "cachefix-lint"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by cachefix (lint results).\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
_FALSE = ("", "0", "false", "no", "off")


class Cached(NamedTuple):
    """A text's `check` outcome: the findings that count, those a comment silenced, and whether
    the file skips itself (`# cachefix: skip-file`)."""

    findings: list[Finding]
    ignored: list[Finding]
    skipped: bool


def disabled_by_environment() -> bool:
    return os.environ.get("CACHEFIX_NO_CACHE", "").strip().lower() not in _FALSE


def default_root() -> Path:
    """platformdirs' user cache folder for cachefix's lint results.

    On Linux with an absolute `$XDG_CACHE_HOME` or `$HOME` (nearly always) the folder is worked
    out here the way platformdirs does, because importing platformdirs (it imports tempfile)
    costs more than a whole cached check; a test holds the two to the same answer.
    """
    if sys.platform == "linux":
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        if os.path.isabs(xdg):
            return Path(xdg, APP)
        home = os.environ.get("HOME", "")
        if os.path.isabs(home):
            return Path(home, ".cache", APP)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP, appauthor=False))


def _digest(*parts: str | bytes) -> str:
    try:  # hashlib would load OpenSSL, about 3 ms (a tenth of a cached check), for a few small digests
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b

    hasher = blake2b(digest_size=32)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "big"))
        hasher.update(data)
    return hasher.hexdigest()


def text_digest(text: str | None) -> str | None:
    return None if text is None else _digest(text)


def _code_state(plugin_modules: Iterable[str]) -> str:
    """cachefix's version and its files' sizes and times, the plugins' modules', Python's version.

    Installed from a wheel, the installation's RECORD stands for its files (any reinstall writes
    it again); a source checkout (an editable install) has each of its files looked at.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    record = os.path.join(os.path.dirname(package), f"cachefix-{__version__}.dist-info", "RECORD")
    files: list[str] = [record] if os.path.isfile(record) else []
    for folder, subfolders, names in [] if files else os.walk(package):
        subfolders[:] = sorted(s for s in subfolders if s != "__pycache__")
        files.extend(os.path.join(folder, name) for name in sorted(names) if name.endswith(".py"))
    for name in sorted(plugin_modules):
        module = sys.modules.get(name)
        files.append(getattr(module, "__file__", None) or name)
    stamps = []
    for file in files:
        try:
            status = os.stat(file)
            stamps.append(f"{file}\0{status.st_size}\0{status.st_mtime_ns}")
        except OSError:
            stamps.append(f"{file}\0-")
    return "\n".join([__version__, sys.version, *stamps])


class ResultCache:
    """Cached outcomes under `root`; `settings_key` says what of a run's settings an entry depends on."""

    def __init__(self, root: Path, plugin_modules: Iterable[str] = ()) -> None:
        self.root = root
        self._state = _digest(str(SCHEMA), _code_state(plugin_modules))

    def key(self, path: Path, text: str, settings: str) -> str:
        return _digest(self._state, os.path.abspath(path), settings, text)

    def _entry_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.py-literal"

    def get(self, key: str, read_source: Callable[[Path], str | None]) -> Cached | None:
        """The entry for `key`, if there is one and what it read besides the file is unchanged."""
        try:
            with open(self._entry_path(key), encoding="utf-8") as handle:
                entry = ast.literal_eval(handle.read())
            if entry.get("key") != key:
                return None
            for source, digest in entry["sources"].items():
                if text_digest(read_source(Path(source))) != digest:
                    return None
            return Cached([_finding(f) for f in entry["findings"]], [_finding(f) for f in entry["ignored"]],
                          bool(entry["skipped"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, SyntaxError, MemoryError, RecursionError):
            return None  # none yet, unreadable, or not an entry of this cachefix: a miss

    def put(self, key: str, outcome: Cached, sources: Mapping[Path, str | None]) -> None:
        """Remember an outcome; a cache that cannot be written is no reason to fail a lint."""
        entry = {"key": key, "skipped": outcome.skipped,
                 "sources": {str(path): digest for path, digest in sources.items()},
                 "findings": [_plain(f) for f in outcome.findings], "ignored": [_plain(f) for f in outcome.ignored]}
        target = self._entry_path(key)
        try:
            self._make_folder(target.parent)
            temp = target.with_name(f".{key}.{os.getpid()}.tmp")
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(repr(entry))
            os.replace(temp, target)
        except OSError:
            return

    def _make_folder(self, folder: Path) -> None:
        if folder.is_dir():
            return
        if not self.root.is_dir():
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.exists():
                tag.write_text(CACHEDIR_TAG, encoding="utf-8")
        folder.mkdir(mode=0o700, exist_ok=True)


def _plain(finding: Finding) -> dict[str, Any]:
    return {"code": finding.code, "manager": finding.manager, "message": finding.message,
            "start": list(finding.start), "end": list(finding.end), "severity": finding.severity.value,
            "edits": [list(edit) for edit in finding.edits],
            "related": [[list(start), list(end)] for start, end in finding.related],
            "mounts": list(finding.mounts), "fix_title": finding.fix_title}


def _finding(data: dict[str, Any]) -> Finding:
    return Finding(str(data["code"]), str(data["manager"]), str(data["message"]), Position(*data["start"]),
                   Position(*data["end"]), Severity(data["severity"]),
                   tuple(Edit(int(s), int(e), str(r)) for s, e, r in data["edits"]),
                   tuple((Position(*start), Position(*end)) for start, end in data["related"]),
                   tuple(str(m) for m in data["mounts"]), str(data["fix_title"]))
