"""judge_claim: "A is more accurate but less robust than B", judged per criterion on a comparison, on maps built by
hand where the answer is known."""

import json

import numpy as np
import pytest
import xarray as xr

import semkit
from semkit.studies import judge_claim

AZIMUTH, ELEVATION = np.arange(0, 360, 30.0), np.arange(-10, 90, 20.0)


def maps_of(patterns: dict[str, np.ndarray], shapes: int = 8) -> xr.Dataset:
    """A map study: each network passes (score 0.9, else 0.1) where its pattern [azimuth, elevation] is True."""
    score = np.stack([np.stack([np.where(p, 0.9, 0.1) for _ in range(shapes)]) for p in patterns.values()])
    dims = ("network", "shape", "azimuth", "elevation")
    return xr.Dataset({"score": (dims, score), "correct": (dims, score >= 0.5)},
                      coords={"network": list(patterns), "shape": [f"s{i}" for i in range(shapes)],
                              "azimuth": AZIMUTH, "elevation": ELEVATION},
                      attrs={"space": json.dumps(semkit.Space.paper().to_dict())})


A, E = np.meshgrid(np.arange(len(AZIMUTH)), np.arange(len(ELEVATION)), indexing="ij")
SCATTERED = (A + E) % 2 == 0  # half the views, none with a passing neighbour: accurate, not robust
BAND = A < 5  # 5 of 12 azimuths at every elevation: less accurate, robust inside the band


def comparison(patterns):
    return semkit.compare_networks(maps_of(patterns), radius=(0, 30), criterion=["top-1", "score >= 0.5"],
                                   n_resamples=200, progress=False)


def test_the_claim_holds_where_it_is_true_and_is_contradicted_reversed():
    c = comparison({"scattered": SCATTERED, "band": BAND})
    claim = judge_claim(c, "scattered", "band")
    assert claim.holds.all() and not claim.contradicted.any()
    assert (claim.direction.sel(metric="accuracy over the space") == 1).all()
    assert (claim.direction.sel(metric="robust accuracy r=30") == -1).all()
    assert "robust accuracy r=0" not in claim.metric.values  # r = 0 is accuracy, not robustness
    assert all("the claim holds" in v for v in claim.verdict.values)
    reversed_ = judge_claim(c, "band", "scattered")
    assert reversed_.contradicted.all() and not reversed_.holds.any()
    assert all("is contradicted" in v for v in reversed_.verdict.values)


def test_identical_networks_show_nothing():
    claim = judge_claim(comparison({"a": BAND, "b": BAND.copy()}), "a", "b")
    assert not claim.holds.any() and not claim.contradicted.any() and (claim.direction == 0).all()
    assert all("is not shown" in v for v in claim.verdict.values)


@pytest.mark.parametrize("args, fragment", [
    (("scattered", "nobody"), "not 'nobody'"),
    (("band", "band"), "compares two networks"),
])
def test_bad_claims_are_named(args, fragment):
    with pytest.raises(ValueError, match=fragment):
        judge_claim(comparison({"scattered": SCATTERED, "band": BAND}), *args)


def test_a_comparison_without_robustness_is_refused():
    c = semkit.compare_networks(maps_of({"scattered": SCATTERED, "band": BAND}), radius=(0,), n_resamples=50,
                                progress=False)
    with pytest.raises(ValueError, match="radius above 0"):
        judge_claim(c, "scattered", "band")


def test_too_few_shapes_to_show_anything_is_said():
    c = semkit.compare_networks(maps_of({"scattered": SCATTERED, "band": BAND}, shapes=4), radius=(0, 30),
                                n_resamples=50, progress=False)
    claim = judge_claim(c, "scattered", "band")
    assert not claim.holds.any() and all("no p-value can fall below 0.05" in v for v in claim.verdict.values)
