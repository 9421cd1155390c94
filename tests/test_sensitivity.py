"""Sobol sensitivity: closed forms (Ishigami, additive functions), failure under a criterion, dense maps."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import semkit
from semkit import plot
from semkit.trust import sensitivity, sensitivity_summary

CUBE = semkit.Space({"x1": (-np.pi, np.pi), "x2": (-np.pi, np.pi), "x3": (-np.pi, np.pi)})
A, B = 7.0, 0.1


def ishigami(points):
    p = np.asarray(points)
    return np.sin(p[:, 0]) + A * np.sin(p[:, 1]) ** 2 + B * p[:, 2] ** 4 * np.sin(p[:, 0])


def ishigami_indices():
    """Closed forms (Ishigami & Homma 1990): first-order and total indices of x1, x2, x3."""
    v1 = 0.5 * (1 + B * np.pi**4 / 5) ** 2
    v2 = A**2 / 8
    v13 = B**2 * np.pi**8 * (1 / 18 - 1 / 50)
    total = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / total, np.array([v1 + v13, v2, v13]) / total


def test_sobol_indices_of_the_ishigami_function_match_their_closed_forms():
    s1, st = ishigami_indices()
    result = sensitivity(ishigami, space=CUBE, n_samples=2048, n_resamples=100, random_state=0)
    assert result["S1"].dims == ("output", "parameter") and list(result.output.values) == ["score"]
    assert np.abs(result.S1.sel(output="score").values - s1).max() < 0.05
    assert np.abs(result.ST.sel(output="score").values - st).max() < 0.05
    inside = (result.S1_low <= result.S1) & (result.S1 <= result.S1_high) & (result.ST_low <= result.ST) & (result.ST <= result.ST_high)
    assert bool(inside.all())
    assert result.attrs["queries"] == 2048 * 5 and result.attrs["criterion"] == "none (score only)"
    assert "x2 explains most of the variance of the score: 44%" in sensitivity_summary(result)


def test_an_additive_function_has_equal_first_order_and_total_indices():
    space = semkit.Space({"a": (0.0, 1.0), "b": (0.0, 1.0), "c": (0.0, 1.0)})
    result = sensitivity(lambda p: (p[:, 0] + 2 * p[:, 1] + 0 * p[:, 2]) / 3, space=space, n_samples=1024,
                         random_state=1).sel(output="score")
    expected = np.array([1, 4, 0]) / 5  # variances 1/12, 4/12, 0
    assert np.abs(result.S1.values - expected).max() < 0.05 and np.abs(result.ST.values - expected).max() < 0.05


def test_failure_under_a_criterion_gets_its_own_indices_and_the_same_seed_the_same_result():
    space = semkit.Space({"a": (0.0, 1.0), "b": (0.0, 1.0)})

    def f(p):
        return np.asarray(p)[:, 0] * 0.3 + np.asarray(p)[:, 1] * 0.7

    result = sensitivity(f, space=space, criterion="score >= 0.9", n_samples=512, n_resamples=50, random_state=3)
    assert list(result.output.values) == ["score", "failure"] and result.attrs["criterion"] == "score >= 0.9"
    failure = result.sel(output="failure")
    assert float(failure.ST.sel(parameter="b")) > float(failure.ST.sel(parameter="a"))  # b decides failure
    again = sensitivity(f, space=space, criterion="score >= 0.9", n_samples=512, n_resamples=50,
                        random_state=np.random.default_rng(3))
    assert result.attrs["random_state"] == 3 and again.attrs.pop("random_state").startswith("a numpy Generator")
    xr.testing.assert_identical(result.drop_attrs(deep=False), again.drop_attrs(deep=False))
    assert {k: v for k, v in result.attrs.items() if k != "random_state"} == again.attrs
    never = sensitivity(f, space=space, criterion="score >= 0", n_samples=64, n_resamples=10, random_state=0)
    assert np.isnan(never.S1.sel(output="failure")).all() and float(never.variance.sel(output="failure")) == 0
    assert "does not vary" in sensitivity_summary(never)


def additive_map() -> xr.Dataset:
    """A dense map over (azimuth, elevation) for two networks and two shapes: score additive in both."""
    space = semkit.Space.paper()
    grid = space.grid(step=(10.0, 10.0))
    az, el = np.meshgrid(grid["azimuth"], grid["elevation"], indexing="ij")
    base = 0.5 + 0.3 * np.cos(np.radians(az)) + 0.004 * (el - 40)
    scores = np.stack([np.stack([base, 0.5 + (base - 0.5) * 0.5]), np.stack([base, base])])  # network, shape
    return xr.Dataset({"score": (("network", "shape", "azimuth", "elevation"), scores),
                       "correct": (("network", "shape", "azimuth", "elevation"), scores >= 0.5)},
                      coords={"network": ["n1", "n2"], "shape": ["s1", "s2"], **grid},
                      attrs={"space": json.dumps(space.to_dict())})


def test_sensitivity_of_a_map_is_exact_for_its_grid_and_needs_no_renders():
    data = additive_map()
    result = sensitivity(data)
    assert result.S1.dims == ("output", "parameter", "network", "shape") and result.attrs["queries"] == 0
    az = np.radians(data.azimuth.values)
    el = data.elevation.values
    v_az, v_el = np.var(0.3 * np.cos(az)), np.var(0.004 * el)
    score = result.sel(output="score")
    assert np.allclose(score.S1.sel(parameter="azimuth"), v_az / (v_az + v_el))
    assert np.allclose(score.S1, score.ST) and np.allclose(score.S1_low, score.S1_high)  # additive; exact
    failure = result.sel(output="failure", network="n1", shape="s1")
    assert float(failure.ST.sum()) >= float(failure.S1.sum()) - 1e-12  # a pass/fail cut makes interactions
    text = sensitivity_summary(result)
    assert len(text.splitlines()) == 4 and text.startswith("n1 on s1: azimuth explains most of the variance")
    one = result.sel(network="n1", shape="s1")
    ax = plot.sensitivity(one)
    assert len(ax.patches) == 2 * 4 and [t.get_text() for t in ax.get_xticklabels()] == ["azimuth", "elevation"]
    plt.close("all")
    with pytest.raises(ValueError, match="select one first"):
        plot.sensitivity(result)


def test_a_map_of_a_real_function_and_bad_input(tmp_path):
    space = semkit.Space({"x1": (-np.pi, np.pi), "x2": (-np.pi, np.pi), "x3": (-np.pi, np.pi)})
    data = semkit.semantic_map(ishigami, space=space, step=2 * np.pi / 24, progress=False)
    s1, st = ishigami_indices()
    result = sensitivity(data).sel(output="score")
    assert list(result.parameter.values) == ["x1", "x2", "x3"] and "failure" not in result.output.values
    assert np.abs(result.S1.values - s1).max() < 0.05 and np.abs(result.ST.values - st).max() < 0.05
    with pytest.raises(ValueError, match="score"):
        sensitivity(data.drop_vars("score"))
    with pytest.raises(ValueError, match="n_samples"):
        sensitivity(ishigami, space=space, n_samples=1)
    with pytest.raises(ValueError, match="confidence"):
        sensitivity(ishigami, space=space, confidence=95)
    with pytest.raises(ValueError, match="needs a Space"):
        sensitivity(ishigami)


def test_sensitivity_of_a_real_network_at_a_tiny_size(mug, lite0):
    f = semkit.SemanticFunction(mug, lite0, renderer=semkit.Renderer(image_size=32))
    result = sensitivity(f, n_samples=8, n_resamples=20, random_state=0, progress=False)
    assert f.queries == 8 * 4 and result.attrs["criterion"] == "top-1 correct" and result.attrs["network"] == lite0.name
    assert list(result.output.values) == ["score", "failure"] and result.S1.shape == (2, 2)
    with pytest.raises(ValueError, match=r"f\[network\]"):
        sensitivity(semkit.SemanticFunctions(mug, [lite0]))
