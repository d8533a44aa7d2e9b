"""The proof that a cachefix rewrite works: on dockerd and buildah, the second build of the
rewritten Dockerfile downloads (almost) nothing, and its image still has what it had.

Every scenario is also built as written, which shows the servers count bytes, the checks
pass on the original image, and the original's second build downloads everything again.
"""

from __future__ import annotations

import pytest

from .harness import ORIGINAL, PENDING, REWRITTEN, SCENARIOS, Lab, Measurement, Scenario

pytestmark = pytest.mark.integration

ENGINES = ("dockerd", "buildah")
MAX_SECOND_BUILD_SHARE = 0.01

# Rewriter bugs a test shows before they are fixed, by (scenario, engine, kind): each test on
# the rewritten file is then an expected failure (strict: it turns red once fixed, so the entry
# gets removed). The ones found so far are fixed; docs/integration.md tells their story.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _params(kind: str, scenarios: tuple[Scenario, ...] = SCENARIOS,
            variants: tuple[str, ...] = (REWRITTEN,)) -> list[object]:
    """(scenario, engine, variant) params; a known bug marks the rewritten variant xfail(strict), and a
    scenario in PENDING (cachefix does not rewrite it yet) skips it."""
    params = []
    for scenario in scenarios:
        for engine in ENGINES:
            bug = KNOWN_BUGS.get((scenario.name, engine, kind)) or KNOWN_BUGS.get((scenario.name, engine, "builds"))
            for variant in variants:
                marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug and variant == REWRITTEN else []
                if variant == REWRITTEN and scenario.name in PENDING:
                    marks = [pytest.mark.skip(reason=f"rule not written yet: {PENDING[scenario.name]}")]
                params.append(pytest.param(scenario, engine, variant, id=f"{scenario.name}-{engine}-{variant}",
                                           marks=marks))
    return params


def _describe(m: Measurement) -> str:
    return (f"{m.scenario} ({m.variant}) on {m.engine}: first build {m.first.body_bytes} bytes in "
            f"{m.first.requests} requests, second {m.second.body_bytes} bytes in {m.second.requests} "
            f"requests\n--- Dockerfile ---\n{m.dockerfile}")


@pytest.mark.parametrize(("scenario", "engine", "variant"), _params("original", variants=(ORIGINAL,)))
def test_original_downloads_everything_again(lab: Lab, scenario: Scenario, engine: str, variant: str) -> None:
    m = lab.measure(scenario, engine, variant)
    assert m.first.body_bytes >= scenario.min_bytes, _describe(m)
    assert m.second.body_bytes >= 0.95 * m.first.body_bytes, _describe(m)
    assert lab.failed_checks(scenario, engine, m.image) == [], _describe(m)


@pytest.mark.parametrize(("scenario", "engine", "variant"), _params("contents"))
def test_rewrite_keeps_what_the_image_has(lab: Lab, scenario: Scenario, engine: str, variant: str) -> None:
    m = lab.measure(scenario, engine, variant)
    assert lab.failed_checks(scenario, engine, m.image) == [], _describe(m)


@pytest.mark.parametrize(("scenario", "engine", "variant"), _params("bytes"))
def test_rewrite_second_build_downloads_almost_nothing(lab: Lab, scenario: Scenario, engine: str,
                                                       variant: str) -> None:
    m = lab.measure(scenario, engine, variant)
    assert m.first.body_bytes >= scenario.min_bytes, _describe(m)
    # The install step really ran again (a layer-cache hit would also fetch nothing): only RUNs
    # after `ARG CACHE_BUST` change their cache key, so a new image means one of them ran again,
    # and an install that ran again asks the index, unless it may trust its cached pages.
    assert m.images[0] != m.images[1], _describe(m)
    assert m.second.requests > 0 or scenario.quiet_rebuild, _describe(m)
    assert m.second.body_bytes <= MAX_SECOND_BUILD_SHARE * m.first.body_bytes, _describe(m)


NONROOT = tuple(s for s in SCENARIOS if s.runtime_cache)


@pytest.mark.parametrize(("scenario", "engine", "variant"), _params("runtime-cache", NONROOT, (ORIGINAL, REWRITTEN)))
def test_nonroot_user_can_still_write_its_cache(lab: Lab, scenario: Scenario, engine: str, variant: str) -> None:
    """A cache mount under the user's cache folder leaves that folder root-owned in the image
    (buildkit#2682, #3153): the user's programs can then not cache at run time. The original
    shows the probe passes without a rewrite; the rewrite must keep it so."""
    m = lab.measure(scenario, engine, variant)
    ok, evidence = lab.runtime_cache_writable(scenario, engine, m.image)
    assert ok, f"{evidence}\n{_describe(m)}"
