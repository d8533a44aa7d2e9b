"""BuildKit's own parser (the `dockerfile` package) as a judge of what a fix changed.

Independent of cachefix's parser and shell analysis on purpose: a bug there must not hide
itself here. A fix may add or change cache mounts, drop cache-defeating flags and cache
clean-ups, keep apt's packages out of docker-clean's reach with `-o` options, point pip's,
uv's, poetry's, go's, composer's and Maven's caches elsewhere and set uv's link mode to copy;
nothing else.
"""

from __future__ import annotations

import re
import shlex

import dockerfile

# Simple commands whose only effect is on package caches.
CACHE_PLUMBING = [
    re.compile(r"^rm -(rf|fr|r|f|Rf) (/var/lib/apt/lists|/var/cache/apt)\S*( \S+)*$"),
    re.compile(r"^(apt-get|apt) (-\S+ )*(clean|autoclean)$"),
    re.compile(r"^(sudo )?rm -f /etc/apt/apt\.conf\.d/docker-clean$"),
    re.compile(r"^apk (-\S+ )*cache clean$"),
    re.compile(r"^(dnf|dnf5|yum|microdnf|tdnf) (-\S+ )*clean \S+$"),
    re.compile(r"^(\S*/)?uv (-\S+ )*(cache (clean|prune)|clean)( \S+)*$"),
    re.compile(r"^(\S*/)?(conda|mamba|micromamba) (-\S+ )*clean( \S+)*$"),
    re.compile(r"^(\S*/)?poetry (-\S+ )*cache clear( \S+)*$"),
    re.compile(r"^(npm (-\S+ )*cache (clean|clear|rm)|yarn (-\S+ )*cache clean|pnpm (-\S+ )*store prune)( \S+)*$"),
    re.compile(r"^go clean( -(cache|modcache|testcache|fuzzcache|x))+$"),
    re.compile(r"^(\S*/)?composer(\.phar)? (-\S+ )*(clear-cache|clearcache|cc)$"),
    re.compile(r"^(\S*/)?mvnw? (-\S+ )*dependency:purge-local-repository( -D\S+)*$"),
    re.compile(r"^(pip[0-9.]*|python[0-9.]* -m pip) cache purge$"),
]
CACHE_WORDS = re.compile(r"^(--no-cache-dir|PIP_NO_CACHE_DIR=\S*|PIP_CACHE_DIR=\S*"
                         r"|--no-cache|--update-cache"  # apk: --no-cache becomes --update-cache
                         r"|--setopt=keepcache=\S*"
                         r"|npm_config_cache=\S*|YARN_CACHE_FOLDER=\S*|YARN_GLOBAL_FOLDER=\S*|npm_config_store_dir=\S*"
                         r"|UV_NO_CACHE=\S*|UV_CACHE_DIR=\S*|UV_LINK_MODE=copy|POETRY_CACHE_DIR=\S*"
                         r"|GOMODCACHE=\S*|GOCACHE=\S*|COMPOSER_CACHE_DIR=\S*|-Dmaven\.repo\.local=\S*"
                         r"|dependency:purge-local-repository)$")
CACHE_PATH = re.compile(r"^(/var/lib/apt/lists|/var/cache/(apt|dnf|libdnf5|yum|tdnf|npm|yarn|pnpm)"
                        r"|\S*/\.npm|\S*/\.cache/yarn|\S*/pnpm/store"
                        r"|\S*/\.cache/(uv|pypoetry|pip)|/opt/conda/pkgs|\$\{?(UV|POETRY)_CACHE_DIR\}?"
                        r"|\S*/pkg/mod|\S*/\.cache/go-build|\S*/cargo/(registry|git)|\S*/\.cargo/(registry|git)"
                        r"|\S*/\.m2/repository|\S*/\.gradle/caches|\S*/bundle/cache)(/\S*)?$")
# apt options that only say where apt keeps its packages (`apt-get -o NAME=VALUE install`).
APT_CACHE_OPTION = re.compile(r"^(Dir::Cache::Archives=\S*|APT::Keep-Downloaded-Packages=true)$")
OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


def parse(text: str):
    """BuildKit's parse plus its next step's check for unknown instructions; raises on error."""
    commands = dockerfile.parse_string(text)
    for command in commands:
        if command.cmd.upper() not in INSTRUCTIONS:
            raise ValueError(f"line {command.start_line}: unknown instruction: {command.cmd}")
    return commands


def _simple_commands(text: str, mounted: tuple[str, ...] = ()) -> list[str]:
    """The simple commands, split at shell operators outside quotes, cache plumbing dropped
    (an `rm` of what the fixed RUN mounts as a cache is plumbing too)."""
    # newlines separate commands (heredoc scripts): `;` keeps the words on each side of one whole
    lexer = shlex.shlex(text.replace("\\\n", " ").replace("\n", " ; "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    out: list[str] = []
    current: list[str] = []
    for token in [*lexer, ";"]:
        if token in OPERATORS:
            words = [w for i, w in enumerate(current) if not CACHE_WORDS.match(w)
                     and not (w == "-o" and i + 1 < len(current) and APT_CACHE_OPTION.match(current[i + 1]))
                     and not (i and current[i - 1] == "-o" and APT_CACHE_OPTION.match(w))]
            if words and words[0] in ("uv", "uvx"):
                words = [w for w in words if w != "-n"]  # uv's short --no-cache
            if words and words[0] == "rm":
                words = [w for w in words if not CACHE_PATH.match(w)
                         and not any(w.rstrip("*").rstrip("/") in (m, m + "/") for m in mounted)]
                if all(w.startswith("-") for w in words[1:]):
                    words = []  # only caches were removed: the whole command was plumbing
            kept = " ".join(w.replace(" --no-cache-dir", "") for w in words)
            if kept and not any(p.match(kept) for p in CACHE_PLUMBING):
                out.append(kept)
            current = []
        else:
            current.append(token)
    return out


def _run_text(command) -> str:
    return " ".join(command.value) + "".join("\n" + h.content for h in command.heredocs)


def non_cache_changes(before: str, after: str) -> list[str]:
    """What differs between two files beyond cache mounts and cache plumbing."""
    b, a = parse(before), parse(after)
    if [c.cmd.upper() for c in b] != [c.cmd.upper() for c in a]:
        return ["the sequence of instructions changed"]
    problems = []
    for old, new in zip(b, a, strict=True):
        where = f"line {old.start_line} {old.cmd.upper()}"
        if old.cmd.upper() == "ONBUILD":
            old_text, new_text = (re.sub(r"--mount=type=cache\S*\s+", "", c.original) for c in (old, new))
            if old_text.replace(" --no-cache-dir", "") != new_text.replace(" --no-cache-dir", ""):
                problems.append(f"{where}: changed")
            continue
        if old.cmd.upper() != "RUN":
            if (old.flags, old.value, old.json, old.heredocs) != (new.flags, new.value, new.json, new.heredocs):
                problems.append(f"{where}: changed")
            continue
        if [f for f in old.flags if "type=cache" not in f] != [f for f in new.flags if "type=cache" not in f]:
            problems.append(f"{where}: flags other than cache mounts changed")
        mounted = tuple(re.sub(r".*\btarget=([^,]*).*", r"\1", f).rstrip("/") for f in new.flags if "type=cache" in f)
        if _simple_commands(_run_text(old), mounted) != _simple_commands(_run_text(new), mounted):
            problems.append(f"{where}: commands changed: {_simple_commands(_run_text(old), mounted)} -> "
                            f"{_simple_commands(_run_text(new), mounted)}")
    return problems
