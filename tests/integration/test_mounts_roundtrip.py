"""The proof of `cachefix mounts export/import` (issue 12), on dockerd and buildah: a CI runner
that starts with an empty builder still rebuilds a rewritten two-service stack without
downloading its packages again.

One test per engine builds scenarios/mounts-stack (a compose file: an api with root's pip cache,
a worker with a non-root pip cache at uid/gid 1000 and a Go-style read-only module tree) after
`cachefix fix compose.yaml`, then:
  export -> wipe the builder -> import -> rebuild with the install layers busted: <= 1% of the bytes;
  wipe -> rebuild without an import: everything again (so the test is live).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .engines import DOCKER, Build
from .harness import SCENARIOS_DIR, Lab

pytestmark = pytest.mark.integration

STACK = SCENARIOS_DIR / "mounts-stack"
SERVICES = ("api", "worker")
MAX_REBUILD_SHARE = 0.01
MiB = 1024 * 1024
ENGINE_OPTION = {"dockerd": "docker", "buildah": "buildah"}
EXPECTED_CACHES = {("/root/.cache/pip", "0", "0"), ("/var/cache/pip-1000", "1000", "1000"), ("gomod", "0", "0")}


def _cachefix(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CACHEFIX_DOCKER": DOCKER}  # Debian's 20.10 client: the one on PATH needs buildx
    return subprocess.run([sys.executable, "-m", "cachefix", *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=900)


def _build_stack(lab: Lab, engine_name: str, stack: Path, bust: str) -> tuple[int, list[Build]]:
    """Build both services; the bytes the package servers sent meanwhile, and the builds."""
    engine = lab.engines[engine_name]
    marks = lab._mark()  # the harness's own byte counting (the servers' request logs)
    builds = [engine.build(stack / name, stack / name / "Dockerfile", f"cachefix-test/mounts-{name}:{engine_name}",
                           {"CACHE_BUST": bust}) for name in SERVICES]
    lab._images[engine_name].extend(b.image_id for b in builds)  # removed with the session's images
    return lab._bytes_since(marks, builds[-1]).body_bytes, builds


@pytest.mark.parametrize("engine_name", ["dockerd", "buildah"])
def test_caches_survive_an_empty_builder_through_export_and_import(lab: Lab, engine_name: str,
                                                                   tmp_path: Path) -> None:
    engine = lab.engines[engine_name]
    stack = tmp_path / "stack"
    shutil.copytree(STACK, stack)
    fixed = _cachefix("fix", "compose.yaml", cwd=stack)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    archives = tmp_path / "ci-cache"
    nonce = uuid.uuid4().hex[:12]
    option = ENGINE_OPTION[engine_name]

    engine.prune_cache_mounts()
    first, first_builds = _build_stack(lab, engine_name, stack, f"{nonce}-1")
    assert first >= 9 * MiB, f"the first build fetched only {first} bytes"

    exported = _cachefix("mounts", "export", "--engine", option, str(archives), "compose.yaml", cwd=stack)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    caches = json.loads((archives / "manifest.json").read_text())["caches"]
    assert {(c["id"], c["uid"], c["gid"]) for c in caches} == EXPECTED_CACHES, exported.stdout
    assert all(c["files"] > 0 for c in caches), caches

    engine.prune_cache_mounts()  # the next CI run's empty builder
    imported = _cachefix("mounts", "import", "--engine", option, str(archives), "compose.yaml", cwd=stack)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert imported.stdout.count("imported ") == 3, imported.stdout

    # The worker's Go step checks that a module found in the cache is still read-only (0444).
    rebuilt, builds = _build_stack(lab, engine_name, stack, f"{nonce}-2")
    assert rebuilt <= MAX_REBUILD_SHARE * first, f"rebuild after import fetched {rebuilt} of {first} bytes"
    # ... and the installs really ran again (a layer-cache hit would fetch nothing too)
    assert [b.image_id for b in builds] != [b.image_id for b in first_builds]
    checks = {"api": (("python3", "-c", "import cfxdemo_core, cfxdemo_plot; print('api ok')"), "api ok"),
              "worker": (("sh", "-c", "cfx-tool && python3 -c 'import cfxdemo_core, cfxdemo_cli; print(1)'"),
                         "cfx-tool 2.0.0\n1")}
    for build, name in zip(builds, SERVICES, strict=True):
        argv, expect = checks[name]
        proc = engine.run(build.tag, argv)
        assert proc.returncode == 0 and expect in proc.stdout, (name, proc.stdout, proc.stderr)

    engine.prune_cache_mounts()  # the same rebuild without the import downloads everything again
    again, _ = _build_stack(lab, engine_name, stack, f"{nonce}-3")
    assert again >= 0.95 * first, f"without the import the rebuild fetched only {again} of {first} bytes"
