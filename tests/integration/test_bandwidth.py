"""The proof that a cachefix rewrite works: on dockerd and buildah, the second build of the
rewritten Dockerfile downloads (almost) nothing, and its image still has what it had.

Every scenario is also built as written, which shows the servers count bytes and the
original's second build downloads everything again.
"""

from __future__ import annotations

import pytest

from .harness import BY_NAME, ORIGINAL, REWRITTEN, SCENARIOS, Lab, Measurement, Scenario

pytestmark = pytest.mark.integration

ENGINES = ("dockerd", "buildah")
MAX_SECOND_BUILD_SHARE = 0.01


def _describe(m: Measurement) -> str:
    return (f"{m.scenario} ({m.variant}) on {m.engine}: first build {m.first.body_bytes} bytes in "
            f"{m.first.requests} requests, second {m.second.body_bytes} bytes in {m.second.requests} "
            f"requests\n--- Dockerfile ---\n{m.dockerfile}")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_original_downloads_everything_again(lab: Lab, scenario: Scenario, engine: str) -> None:
    m = lab.measure(scenario, engine, ORIGINAL)
    assert m.first.body_bytes >= scenario.min_bytes, _describe(m)
    assert m.second.body_bytes >= 0.95 * m.first.body_bytes, _describe(m)
    assert lab.failed_checks(scenario, engine, m.image) == [], _describe(m)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_rewrite_keeps_what_the_image_has(lab: Lab, scenario: Scenario, engine: str) -> None:
    m = lab.measure(scenario, engine, REWRITTEN)
    assert lab.failed_checks(scenario, engine, m.image) == [], _describe(m)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_rewrite_second_build_downloads_almost_nothing(lab: Lab, scenario: Scenario, engine: str) -> None:
    m = lab.measure(scenario, engine, REWRITTEN)
    assert m.first.body_bytes >= scenario.min_bytes, _describe(m)
    # The install step really ran again (a layer-cache hit would also fetch nothing).
    assert m.second.requests > 0, _describe(m)
    assert m.second.body_bytes <= MAX_SECOND_BUILD_SHARE * m.first.body_bytes, _describe(m)


@pytest.mark.parametrize("engine", ENGINES)
def test_rewrite_leaves_nonroot_cache_home_writable(lab: Lab, engine: str) -> None:
    """A cache mount under ~/.cache leaves ~/.cache root-owned in the image (buildkit#2682):
    the user's programs then cannot cache at run time. The rewrite must avoid that."""
    scenario = BY_NAME["pip-user-nonroot"]
    m = lab.measure(scenario, engine, REWRITTEN)
    probe = ('id -un; mkdir -p "$HOME/.cache/cachefix-probe" && touch "$HOME/.cache/cachefix-probe/ok" '
             '&& echo writable')
    proc = lab.run(engine, m.image, ("sh", "-c", probe))
    listing = lab.run(engine, m.image, ("ls", "-la", scenario.nonroot_home or "/", f"{scenario.nonroot_home}/.cache"))
    assert proc.stdout.split() == ["app", "writable"], (
        f"{proc.stdout}{proc.stderr}\n{listing.stdout}\n{_describe(m)}")
