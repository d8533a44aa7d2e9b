"""What one cache mount is, and what makes two mounts share one cache in the builder.

BuildKit keys a cache mount by its id (the target when no id is given) together with uid, gid and
mode (moby/buildkit#3041): `id=pip,uid=1000` and `id=pip` are two caches. Whether any of the three
is written counts too: with one, the Dockerfile frontend makes the cache from a folder with those
settings ("[internal] settings cache mount permissions", dockerfile2llb's dispatchRunMounts), so
`id=pip,uid=0` is a third cache, though its values are the defaults. `sharing` only says how
concurrent builds use it, so it is not part of the identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class CacheIdentity:
    """One cache in the builder. Values are as written in the mount, build arguments resolved."""

    id: str
    uid: str = "0"
    gid: str = "0"
    mode: str = "0755"
    explicit: bool = False  # uid, gid or mode is written in the mount


@dataclass(frozen=True)
class CacheMount:
    """One `--mount=type=cache` flag of one RUN: where it is, and the cache it uses."""

    identity: CacheIdentity
    target: str
    sharing: str  # shared (BuildKit's default), private or locked
    stage: str  # the stage's name, or its index when it has none
    path: str  # the Dockerfile, as given or found
    line: int  # 1-based line of the RUN
    # The image the stage is built FROM ("" for scratch): dockerd's throwaway copy build runs `tar`
    # in it, since a project's own base images are the ones its builder most likely has. Not part
    # of what makes two mounts one entry of the map.
    image: str = field(default="", compare=False)
