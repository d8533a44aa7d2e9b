"""The FROM image of each stage that mounts a cache: dockerd's throwaway copy build runs `tar` in it,
since the project's own base images are the ones a builder is most likely to have."""

from __future__ import annotations

from collections.abc import Iterable

from cachefix.files import UnreadableFile, read_dockerfile
from cachefix.mounts.cachemap import host_platform_args
from cachefix.mounts.project import Build
from cachefix.rewriter.context import replay
from cachefix.rewriter.dockerfile import DockerfileSyntaxError, parse


def stage_images(builds: Iterable[Build]) -> dict[tuple[str, str], str]:
    """(Dockerfile path, stage label as the cache map gives it) -> the image its root stage is FROM,
    build arguments expanded; stages FROM scratch are left out."""
    images: dict[tuple[str, str], str] = {}
    for build in builds:
        try:
            dockerfile = parse(read_dockerfile(build.dockerfile).text)
        except (UnreadableFile, DockerfileSyntaxError):
            continue  # the cache map reports it
        for stage in replay(dockerfile, build_args={**host_platform_args(), **build.build_args}).stages:
            if stage.base_image and stage.base_image.lower() != "scratch":
                images[(str(build.dockerfile), stage.name or str(stage.index))] = stage.base_image
    return images
