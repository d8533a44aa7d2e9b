"""Base images built from another Dockerfile of the same tree.

Image stacks (Jupyter's docker-stacks, say) build each image FROM the one beside it:
`ARG BASE_IMAGE=quay.io/jupyter/docker-stacks-foundation` then `FROM $BASE_IMAGE`, with the
foundation's Dockerfile in `../docker-stacks-foundation/`. What that base image sets (`ENV
CONDA_DIR=/opt/conda`, `USER jovyan` with its uid) decides where caches live, and a Dockerfile
does not show its base image's settings. When the tree holds the base's Dockerfile, cachefix
reads it (and its own base, the same way) instead of guessing, and findings say so.

Only a name with an organisation (`org/name`, any registry) is followed: `FROM python` is the
official image even when the tree has a `python/` folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cachefix.files import read_text_or_none
from cachefix.limits import OverLimit
from cachefix.rewriter.context import BaseImage, image_name, replay
from cachefix.rewriter.dockerfile import DockerfileSyntaxError, parse
from cachefix.rewriter.stages import lineage

MAX_DEPTH = 4  # foundation → base → minimal → scipy: a stack deeper than this is not followed further


class SiblingBases:
    """A lookup from image reference to the base image a sibling folder's Dockerfile builds.

    `read` reads a sibling's Dockerfile (None: it cannot be read); the result cache passes one
    that records what was read, so that an entry is used again only while those files are the same.
    """

    def __init__(self, path: Path, depth: int = 0, cache: dict[Path, BaseImage | None] | None = None,
                 read: Callable[[Path], str | None] = read_text_or_none) -> None:
        self.path = path
        self.depth = depth
        self.cache = {} if cache is None else cache
        self.read = read

    def __call__(self, reference: str) -> BaseImage | None:
        name = image_name(reference)
        if "/" not in name or self.depth >= MAX_DEPTH:
            return None
        candidate = self.path.parent.parent / name.rsplit("/", 1)[-1] / "Dockerfile"
        if candidate in self.cache:
            return self.cache[candidate]
        self.cache[candidate] = None  # a stack that loops back reads as unknown, not forever
        found = self._read(candidate)
        self.cache[candidate] = found
        return found

    def _read(self, candidate: Path) -> BaseImage | None:
        if candidate.resolve() == self.path.resolve():
            return None
        text = self.read(candidate)  # the runner's reader: regular files only, within the size limit
        if text is None:
            return None
        try:
            dockerfile = parse(text)
        except (DockerfileSyntaxError, OverLimit):
            return None
        replayed = replay(dockerfile, SiblingBases(candidate, self.depth + 1, self.cache, self.read))
        if not replayed.stages:
            return None
        last = replayed.stages[-1]
        built = set(lineage(replayed.stages, last.index))
        root = replayed.stages[max(built)] if built else last  # the stage the lineage starts from
        runs = (*root.base_runs, *(r for r in replayed.runs if r.stage.index in built))
        return BaseImage(last, os.path.relpath(candidate, self.path.parent), runs)
