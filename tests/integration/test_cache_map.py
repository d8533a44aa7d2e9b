"""What `cachefix mounts list` says about shared caches, checked on the builders themselves.

Three Dockerfiles mount one target without an id (as three services of a stack do): the map
groups the two that write no uid/gid/mode as one cache, and counts the one that writes `uid=0`
as another (BuildKit bases such a cache on a folder made with those settings). The builds show
it: the second file reads what the first wrote; on dockerd the third does not, on buildah it
does (buildah keys a cache by its id alone, a folder under /var/tmp/buildah-cache*), as the
README says. A target unique to each run keeps the test live: no earlier build filled it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .harness import Lab

pytestmark = pytest.mark.integration

BASE = "cachefix-test/debian:bookworm"


def _write(folder: Path, mount_options: str, script: str) -> None:
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(f"FROM {BASE}\nRUN --mount=type=cache,{mount_options} sh -c '{script}'\n")


@pytest.mark.parametrize("engine_name", ["dockerd", "buildah"])
def test_mounts_the_map_groups_share_one_cache_in_the_builder(lab: Lab, engine_name: str, tmp_path: Path) -> None:
    engine = lab.engines[engine_name]
    nonce = uuid.uuid4().hex[:12]
    target = f"/var/cache/cfx-map-{nonce}"
    stack = tmp_path / "stack"
    _write(stack / "writer", f"target={target}", f"echo {nonce} > {target}/marker")
    _write(stack / "reader", f"target={target},sharing=locked",
           f"cat {target}/marker > /seen 2>/dev/null || echo none > /seen")
    _write(stack / "owner", f"target={target},uid=0", f"cat {target}/marker > /seen 2>/dev/null || echo none > /seen")

    listed = subprocess.run([sys.executable, "-m", "cachefix", "mounts", "list", "--format", "json", "."],
                            cwd=stack, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    caches = {(c["id"], c["explicit"]): c["mounts"] for c in json.loads(listed.stdout)["caches"]}
    assert caches == {(target, False): 2, (target, True): 1}

    seen = {}
    for name in ("writer", "reader", "owner"):
        build = engine.build(stack / name, stack / name / "Dockerfile", f"cachefix-test/map-{name}:{engine_name}", {})
        lab._images[engine_name].append(build.image_id)  # removed with the session's images
        if name != "writer":
            proc = engine.run(build.tag, ["cat", "/seen"])
            assert proc.returncode == 0, proc.stderr
            seen[name] = proc.stdout.strip()
    assert seen["reader"] == nonce  # one cache, as the map groups them
    assert seen["owner"] == ("none" if engine_name == "dockerd" else nonce)
