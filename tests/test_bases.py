"""A base image built by another Dockerfile of the same tree (`ARG BASE_IMAGE=org/foundation`,
`FROM $BASE_IMAGE`, with `../foundation/Dockerfile` beside it, as in Jupyter's docker-stacks) is
read for what it sets: its ENV, its USER and that user's uid. Findings say where from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import write

FOUNDATION = """FROM debian:bookworm
ENV PIP_CACHE_DIR=/opt/pip-cache \\
    NB_USER=jovyan NB_UID=1000
RUN useradd --no-log-init --create-home --shell /bin/bash --uid "${NB_UID}" "${NB_USER}"
USER ${NB_UID}
"""
NOTEBOOK = """ARG REGISTRY=quay.io
ARG OWNER=example
ARG BASE_IMAGE=$REGISTRY/$OWNER/foundation
FROM $BASE_IMAGE
RUN pip install notebook
"""


def cachefix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachefix", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_the_sibling_foundation_decides_where_the_cache_is_and_for_whom(tmp_path: Path) -> None:
    write(tmp_path / "images" / "foundation" / "Dockerfile", FOUNDATION)
    notebook = write(tmp_path / "images" / "notebook" / "Dockerfile", NOTEBOOK)
    findings = json.loads(cachefix("check", "--format", "json", "images/notebook", cwd=tmp_path).stdout)["findings"]
    assert [(f["line"], f["code"]) for f in findings] == [(5, "CF101")]
    assert "read from ../foundation/Dockerfile" in findings[0]["message"]
    assert cachefix("fix", "--syntax", "none", "images/notebook", cwd=tmp_path).returncode == 0
    assert notebook.read_text().splitlines()[4] == (
        "RUN --mount=type=cache,target=/opt/pip-cache,uid=1000,gid=1000 pip install notebook")


def test_without_the_sibling_the_base_is_unknown(tmp_path: Path) -> None:
    notebook = write(tmp_path / "images" / "notebook" / "Dockerfile", NOTEBOOK)
    assert cachefix("fix", "--syntax", "none", "images/notebook", cwd=tmp_path).returncode == 0
    assert notebook.read_text().splitlines()[4] == (
        "RUN --mount=type=cache,target=/root/.cache/pip pip install notebook")


def test_an_official_image_is_never_taken_for_a_folder(tmp_path: Path) -> None:
    write(tmp_path / "python" / "Dockerfile", "FROM debian\nENV PIP_CACHE_DIR=/elsewhere\n")
    app = write(tmp_path / "app" / "Dockerfile", "FROM python:3.12\nRUN pip install flask\n")
    assert cachefix("fix", "--syntax", "none", "app", cwd=tmp_path).returncode == 0
    assert "target=/root/.cache/pip " in app.read_text()


def test_a_stack_that_loops_ends(tmp_path: Path) -> None:
    write(tmp_path / "a" / "Dockerfile", "FROM org/b\nENV PIP_CACHE_DIR=/from-a\n")
    write(tmp_path / "b" / "Dockerfile", "FROM org/a\nENV PIP_CACHE_DIR=/from-b\n")
    app = write(tmp_path / "c" / "Dockerfile", "FROM org/a\nRUN pip install flask\n")
    assert cachefix("fix", "--syntax", "none", "c", cwd=tmp_path).returncode == 0
    assert "target=/from-a " in app.read_text()


JUPYTER_FOUNDATION = """ARG ROOT_IMAGE=ubuntu:24.04
FROM $ROOT_IMAGE
ARG NB_USER="jovyan"
ARG NB_UID="1000"
ARG NB_GID="100"
USER root
ENV CONDA_DIR=/opt/conda \\
    NB_USER="${NB_USER}" NB_UID=${NB_UID} NB_GID=${NB_GID} HOME="/home/${NB_USER}"
ENV PATH="${CONDA_DIR}/bin:${PATH}"
RUN useradd --no-log-init --create-home --shell /bin/bash --uid "${NB_UID}" --no-user-group "${NB_USER}" && \\
    mkdir -p "${CONDA_DIR}" && chown "${NB_USER}:${NB_GID}" "${CONDA_DIR}"
USER ${NB_UID}
RUN ./micromamba install --root-prefix="${CONDA_DIR}" --prefix="${CONDA_DIR}" --yes 'python' 'mamba' && \\
    mamba clean --all -f -y
"""
JUPYTER_BASE = """ARG REGISTRY=quay.io
ARG OWNER=jupyter
ARG BASE_IMAGE=$REGISTRY/$OWNER/docker-stacks-foundation
FROM $BASE_IMAGE
RUN mamba install --yes 'jupyterlab' && \\
    jupyter server --generate-config && \\
    mamba clean --all -f -y
"""


def test_a_jupyter_style_stack_gets_mamba_cached_for_its_user(tmp_path: Path) -> None:
    """The foundation installs mamba into CONDA_DIR as jovyan (uid 1000, group users); the image
    built on it runs `mamba install` by bare name: the tree shows where and for whom."""
    write(tmp_path / "images" / "docker-stacks-foundation" / "Dockerfile", JUPYTER_FOUNDATION)
    base = write(tmp_path / "images" / "base-notebook" / "Dockerfile", JUPYTER_BASE)
    done = cachefix("fix", "--syntax", "none", "images", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert base.read_text().splitlines()[4:] == [
        "RUN --mount=type=cache,target=/var/cache/conda-1000,sharing=locked,uid=1000,gid=100 "
        "CONDA_PKGS_DIRS=/var/cache/conda-1000 mamba install --yes 'jupyterlab' && \\",
        "    jupyter server --generate-config"]
