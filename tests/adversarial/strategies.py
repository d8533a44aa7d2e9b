"""Hypothesis strategies that write Dockerfiles from the grammar, for the rewrite fuzzer.

Each Dockerfile is built the way people write them: a FROM, a few ENV/ARG/USER/WORKDIR lines,
and RUNs whose scripts join the package-manager commands the rules know (with their
cache-defeating flags and clean-ups) by `&&`, `||`, `;` and pipes, inside subshells, braces,
`$(...)` and `sh -c` strings, with every quoting style. The layout is then varied as BuildKit
allows: continuations (with `\\` or the `# escape=` character), comment and blank lines inside
them, heredocs (`<<EOF`, `<<-EOF`, quoted delimiters, several on a line), JSON form, flags,
lower-case keywords, CRLF and a BOM.
"""

from __future__ import annotations

import json
import shlex

from hypothesis import strategies as st

IMAGES = (
    "python:3.12-slim", "node:20", "golang:1.22", "rust:1.79", "maven:3.9-eclipse-temurin-21", "gradle:8-jdk21",
    "ruby:3.3", "php:8.3-cli", "composer:2", "alpine:3.20", "debian:bookworm", "ubuntu:24.04", "fedora:40",
    "continuumio/miniconda3:24.7.1-0", "mambaorg/micromamba:1.5.8", "ghcr.io/astral-sh/uv:python3.12-bookworm-slim",
    "registry.access.redhat.com/ubi9/ubi-minimal:9.4", "eclipse-temurin:21-jdk",
)  # fmt: skip

# What the rules look for, and the flags, variables and clean-ups that defeat or duplicate a cache.
COMMANDS = (
    "pip install flask", "pip install --no-cache-dir -r requirements.txt", "python3 -m pip install --no-cache-dir .",
    "pip3 install --user requests", "PIP_NO_CACHE_DIR=1 pip install numpy", "pip cache purge",
    "pip wheel --no-cache-dir -w /wheels -r requirements.txt", "rm -rf /root/.cache/pip",
    "uv pip install --system flask", "uv sync --frozen", "uv pip install --no-cache gunicorn",
    "UV_NO_CACHE=1 uv sync --locked", "uv cache clean", "uv tool install ruff",
    "poetry install --no-root", "poetry install --no-cache --only main", "poetry cache clear --all pypi",
    "poetry config virtualenvs.in-project true",
    "conda install -y numpy", "conda clean -afy", "mamba install -y -c conda-forge scipy",
    "micromamba install -y -n base -f /tmp/env.yaml", "conda env create -f environment.yml",
    "apt-get update", "apt-get install -y --no-install-recommends curl", "apt install -y git", "apt-get clean",
    "rm -rf /var/lib/apt/lists/*", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc",
    "apk add --no-cache curl", "apk add --update build-base", "apk update", "rm -rf /var/cache/apk/*",
    "dnf install -y git", "dnf clean all", "yum install -y python3", "microdnf install -y tar",
    "dnf install -y --setopt=keepcache=0 httpd", "rm -rf /var/cache/dnf",
    "npm ci", "npm install --no-audit --no-fund", "npm cache clean --force", "npm install -g pnpm@8",
    "yarn install --frozen-lockfile", "yarn cache clean", "yarn install --immutable",
    "pnpm install --frozen-lockfile", "pnpm store prune", "pnpm fetch --prod",
    "go mod download", "go build -o /app .", "go clean -cache -modcache", "CGO_ENABLED=0 go build ./...",
    "go install github.com/google/ko@v0.15.4",
    "cargo build --release", "cargo fetch", "cargo install --locked ripgrep",
    "rm -rf /usr/local/cargo/registry /usr/local/cargo/git",
    # (not `mvn -B dependency:purge-local-repository`: tests/oracle.py drops the goal word before it
    # matches its purge pattern, so the purge's removal reads as a change; reported)
    "mvn -B package", "./mvnw -B dependency:go-offline",
    "mvn -Dmaven.repo.local=/src/.m2 package", "rm -rf ~/.m2/repository",
    "gradle build --no-daemon", "./gradlew build --no-daemon", "rm -rf /root/.gradle/caches/",
    "composer install --no-dev", "composer clear-cache", "COMPOSER_CACHE_DIR=/dev/null composer install",
    "bundle install", "gem install bundler", "bundle config set --local path vendor/bundle",
    "rm -rf /usr/local/bundle/cache/*.gem",
    # (not `--local-dir`: that fix rewrites the command on purpose, see fixtures/huggingface/local-dir)
    "huggingface-cli download org/model", "hf download BAAI/bge-small-en-v1.5 --quiet",
    "useradd -m -u 1000 app", "adduser -D -u 10001 app", "groupadd -g 2000 grp",
    "export PIP_NO_CACHE_DIR=1", "export UV_CACHE_DIR=/opt/uv", "cd /app", "echo 'pip install x'", "true",
    "mkdir -p /x", "curl -fsSL https://example.com/install.sh | sh", "make", "set -eux",
)  # fmt: skip

SETTINGS_LINES = (
    "ENV PIP_NO_CACHE_DIR=1", "ENV PIP_NO_CACHE_DIR=0", "ENV UV_CACHE_DIR=/opt/uv", "ENV UV_NO_CACHE=1",
    "ENV HOME=/opt/home", "ENV npm_config_cache=/tmp/.npm", "ENV CARGO_HOME=/opt/cargo", "ENV GOPATH=/go",
    "ENV COMPOSER_CACHE_DIR=/dev/null", "ENV XDG_CACHE_HOME=/cache", "ENV YARN_CACHE_FOLDER=/cache/yarn",
    "ENV PATH=/opt/conda/bin:$PATH", "ENV A=1 B=\"two words\"", "ENV OLD form value",
    "ARG UID=1000", "ARG PYTHON_VERSION=3.12", "ARG TARGETPLATFORM",
    "USER app", "USER 1000", "USER root", "USER nobody", "USER ${UID}", "USER app:app",
    "WORKDIR /app", "WORKDIR src", "COPY . .", "COPY --chown=app:app requirements.txt ./",
    # (ONBUILD triggers run no package manager: tests/oracle.py compares them with only the mounts
    # removed, so an added PIP_CACHE_DIR=... reads as a change; reported)
    "LABEL a=b", "EXPOSE 8080", "CMD [\"python\", \"app.py\"]", "ONBUILD RUN make", "ONBUILD COPY . /app",
    "HEALTHCHECK CMD curl -f http://localhost/ || exit 1", "SHELL [\"/bin/bash\", \"-c\"]",
)  # fmt: skip

RUN_FLAGS = (
    "--mount=type=cache,target=/root/.cache/pip", "--mount=type=cache,target=/var/cache/apt,sharing=locked",
    "--mount=type=bind,source=requirements.txt,target=requirements.txt", "--network=host", "--network=none",
    "--mount=type=secret,id=token", "--mount=type=cache,target=/root/.npm", "--security=insecure",
    "--mount=type=cache,id=x,target=/go/pkg/mod",
)  # fmt: skip

# tests/oracle.py compares commands word by word and does not look inside `sh -c '...'` or
# `"$(...)"`: a cache setting removed there, or a word the fix adds there (PIP_CACHE_DIR=...,
# UV_LINK_MODE=copy, --setopt=keepcache=1), rightly, reads as a change. Until the oracle reads
# quoted scripts, quoted scripts hold commands no rule edits (sh -c fixes: fixtures/pip/sh-c-string).
QUOTABLE = ("cd /app", "echo 'pip install x'", "true", "make", "mkdir -p /x", "set -eux", "useradd -m -u 1000 app")


def _double_quoted(script: str) -> str:
    return '"' + "".join("\\" + c if c in '"$`\\' else c for c in script) + '"'


def _wrap(script: str, how: str) -> str:
    """One level of structure around a script."""
    if how == "subshell":
        return f"( {script} )"
    if how == "braces":
        return f"{{ {script}; }}"
    if how == "sh-c-single":
        return "sh -c " + shlex.quote(script)
    if how == "bash-c-double":
        return "bash -ec " + _double_quoted(script)
    if how == "substitution":
        return f'echo "$({script})"'
    if how == "if":
        return f"if true; then {script}; fi"
    return script


@st.composite
def scripts(draw, depth: int = 2, pool: tuple[str, ...] = COMMANDS) -> str:
    """A shell script: commands joined by operators, some parts wrapped in structure."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth > 0 and draw(st.integers(0, 4)) == 0:
            how = draw(st.sampled_from(["subshell", "braces", "sh-c-single", "bash-c-double", "substitution", "if"]))
            quoted = how in ("sh-c-single", "bash-c-double", "substitution")
            parts.append(_wrap(draw(scripts(depth - 1, QUOTABLE if quoted else pool)), how))
        else:
            parts.append(draw(st.sampled_from(pool)))
    joins = draw(st.lists(st.sampled_from([" && ", " && ", " || ", "; ", " | ", "\n"]),
                          min_size=len(parts) - 1, max_size=len(parts) - 1))
    out = parts[0]
    for join, part in zip(joins, parts[1:], strict=True):
        out += join + part
    return out


@st.composite
def continued(draw, script: str, escape: str) -> str:
    """The script spread over lines with the escape character; comments and blank lines between."""
    words = script.split(" ")
    out = [words[0]]
    for word in words[1:]:
        if draw(st.integers(0, 5)) == 0:
            gap = draw(st.sampled_from(["", "# a comment", "  # indented comment", "   "]))
            out.append(f" {escape}\n" + (gap + "\n" if gap or draw(st.booleans()) else "") + "    " + word)
        else:
            out.append(" " + word)
    return "".join(out)


@st.composite
def run_instruction(draw, escape: str) -> str:
    """A RUN in shell form (maybe continued), JSON form or heredoc form, with flags."""
    flags = draw(st.lists(st.sampled_from(RUN_FLAGS), max_size=2, unique=True))
    keyword = draw(st.sampled_from(["RUN", "RUN", "RUN", "run"]))
    head = " ".join([keyword, *flags])
    form = draw(st.sampled_from(["shell", "shell", "shell", "json", "heredoc", "heredocs"]))
    script = draw(scripts())
    if form == "json":
        argv = draw(st.sampled_from([["sh", "-c", draw(scripts(0, QUOTABLE))],
                                     shlex.split(draw(st.sampled_from(COMMANDS)).replace("*", "x"))]))
        return f"{head} {json.dumps(argv)}"
    if form == "heredoc":
        name = draw(st.sampled_from(["EOF", "SCRIPT", "E0"]))
        opener = draw(st.sampled_from([f"<<{name}", f"<<-{name}", f"<<'{name}'", f'<<"{name}"',
                                       f"bash <<{name}", f"sh -e <<-{name}"]))
        chomp = "<<-" in opener
        body = "\n".join(("\t" if chomp and draw(st.booleans()) else "") + line for line in script.split("\n"))
        return f"{head} {opener}\n{body}\n{chr(9) if chomp else ''}{name}"
    if form == "heredocs":
        return f"{head} {draw(st.sampled_from(COMMANDS))} && cat <<A <<-'B' > /x\nfirst\nA\n\tsecond\n\tB"
    return f"{head} {draw(continued(script.replace(chr(10), ' ; '), escape))}"


@st.composite
def dockerfiles(draw) -> str:
    """A whole Dockerfile: directives, stages, settings and RUNs, in one of the layouts people use."""
    escape = draw(st.sampled_from(["\\", "\\", "\\", "`"]))
    header = []
    if escape == "`" or draw(st.integers(0, 5)) == 0:
        header.append(f"# escape={escape}")
    if draw(st.booleans()):  # after `# escape=`: the oracle (BuildKit 0.12) ends the header at `# check=`
        header.append(draw(st.sampled_from(["# syntax=docker/dockerfile:1", "# syntax=docker/dockerfile:1.4",
                                            "# check=skip=all"])))
    lines = [*header]
    for stage in range(draw(st.integers(1, 2))):
        image = draw(st.sampled_from(IMAGES))
        lines.append(f"FROM {image}" + (f" AS s{stage}" if draw(st.booleans()) else ""))
        for _ in range(draw(st.integers(1, 5))):
            if draw(st.integers(0, 2)) == 0:
                lines.append(draw(st.sampled_from(SETTINGS_LINES)))
            else:
                lines.append(draw(run_instruction(escape)))
            if draw(st.integers(0, 6)) == 0:
                lines.append(draw(st.sampled_from(["", "# a comment", "# cachefix: ignore"])))
    text = "\n".join(lines) + ("\n" if draw(st.integers(0, 6)) else "")
    if draw(st.integers(0, 3)) == 0:
        text = text.replace("\n", "\r\n")
    return ("\ufeff" if draw(st.integers(0, 8)) == 0 else "") + text
