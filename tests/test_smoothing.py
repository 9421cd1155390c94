"""Randomized smoothing: Smoothed.certify / predict against exact smoothed probabilities, and certified accuracy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm

import semkit
from semkit import plot
from semkit.trust import Smoothed, certified_accuracy

PLANE = semkit.Space({"x": (-50.0, 50.0), "y": (-50.0, 50.0)})
SIGMA = np.array([2.0, 0.5])
W, B = np.array([1.0, 3.0]), 1.0  # the half-plane w . x >= b


def half_plane(points):
    return (np.asarray(points) @ W >= B).astype(float)


def exact_plane_radius(x):
    """The whitened distance from x to the half-plane's edge: for a half-plane, Phi^-1(p) is exact."""
    return abs(W @ x - B) / np.linalg.norm(W * SIGMA)


def test_certified_radius_stays_below_the_exact_one_beyond_the_confidence_and_is_tight_with_many_samples():
    g = Smoothed(half_plane, SIGMA, criterion="score >= 0.5", space=PLANE)
    x = np.array([2.0, 0.6])  # w.x - b = 2.8: exact radius 2.8 / |(2, 1.5)| = 1.12
    exact = exact_plane_radius(x)
    loose = g.certify(np.repeat(x[None], 300, axis=0), n0=10, n=400, confidence=0.9, random_state=1)
    assert (loose.prediction != 0).all() and float(loose.correct.mean()) > 0.95  # n0 = 10 may pick fail: then abstain
    over = int((loose.radius > exact).sum())
    assert over <= 0.1 * 300 + 3 * np.sqrt(300 * 0.09), over  # at most 10% of the certificates, up to 3 sd
    assert over > 0  # at 90% confidence some do exceed it (a bound that never did would be loose)
    tight = g.certify(np.repeat(x[None], 15, axis=0), n0=100, n=10_000, confidence=0.999, random_state=2)
    assert float(tight.radius.max()) <= exact
    assert float(tight.radius.median()) >= 0.85 * exact
    assert np.allclose(tight.p_lower, norm.cdf(tight.radius))


def test_the_failing_side_is_certified_as_fail_with_its_own_radius():
    g = Smoothed(half_plane, SIGMA, criterion="score >= 0.5", space=PLANE)
    x = np.array([-3.0, 0.0])
    c = g.certify(x, n0=50, n=5000, random_state=0)
    assert int(c.prediction[0]) == 0 and not bool(c.correct[0])
    assert 0.85 * exact_plane_radius(x) <= float(c.radius[0]) <= exact_plane_radius(x)


def test_a_box_certificate_stays_below_phi_inverse_of_its_exact_probability():
    half = 1.5  # f passes inside [-1.5, 1.5]^2, sigma 1 per parameter

    def box(points):
        return (np.abs(np.asarray(points)) <= half).all(axis=1).astype(float)

    g = Smoothed(box, {"x": 1.0, "y": 1.0}, criterion="score >= 0.5", space=PLANE)
    x = np.array([0.3, -0.2])
    p = np.prod([norm.cdf(half - v) - norm.cdf(-half - v) for v in x])
    exact = norm.ppf(p)
    c = g.certify(np.repeat(x[None], 200, axis=0), n0=10, n=500, confidence=0.9, random_state=3)
    over = int((c.radius > exact).sum())
    assert over <= 0.1 * 200 + 3 * np.sqrt(200 * 0.09), over
    many = g.certify(np.repeat(x[None], 9, axis=0), n0=100, n=10_000, random_state=4)
    assert float(many.radius.median()) >= 0.85 * exact and float(many.radius.max()) <= exact


def test_at_the_edge_g_abstains_in_certify_and_predict():
    g = Smoothed(half_plane, SIGMA, criterion="score >= 0.5", space=PLANE)
    edge = np.array([[1.0, 0.0]] * 20)  # on the edge: p = 1/2 exactly
    c = g.certify(edge, n0=20, n=500, random_state=0)
    assert (c.prediction == -1).all() and (c.radius == 0).all() and not c.correct.any()
    p = g.predict(edge, n=500, confidence=0.999, random_state=0)
    assert int((p.prediction == -1).sum()) >= 18  # a wrong answer has probability <= 0.001 each
    far = g.predict([[20.0, 0.0], [-20.0, 0.0]], n=50, random_state=0)
    assert far.prediction.values.tolist() == [1, 0]
    assert "speaks of g, not of the network" in p.attrs["guarantee"]


def test_noise_wraps_on_periodic_parameters_and_is_clipped_on_bounded_ones():
    space = semkit.Space.paper()  # azimuth periodic [0, 360), elevation [-10, 90]
    seen = []

    def near_zero(points):  # passes within 15 degrees of azimuth 0 (not periodic by itself), near the top elevation
        points = np.asarray(points)
        seen.append(points)
        return (((points[:, 0] < 15) | (points[:, 0] >= 345)) & (points[:, 1] >= 89)).astype(float)

    g = Smoothed(near_zero, {"azimuth": 5.0, "elevation": 3.0}, criterion="score >= 0.5", space=space)
    c = g.certify([[355.0, 90.0]] * 4, n0=20, n=10_000, random_state=0)
    allowed = space.points(np.concatenate(seen))  # every evaluated view lies in the Space: wrapped or clipped
    assert np.array_equal(allowed, np.concatenate(seen))
    wrapped = (norm.cdf(20 / 5) - norm.cdf(-10 / 5)) * norm.cdf(1 / 3)  # azimuth in [345, 375) wrapped: 0.62
    unwrapped = (norm.cdf(5 / 5) - norm.cdf(-10 / 5)) * norm.cdf(1 / 3)  # without wrapping: 0.52
    assert (c.prediction == 1).all() and np.all(np.abs(c.p_lower - wrapped) < 0.03) and (c.p_lower < wrapped).all()
    p = g.predict([[355.0, 90.0]], n=20_000, confidence=0.9, random_state=1)
    share = int(p["count"][0]) / 20_000
    assert abs(share - wrapped) < 0.015 and abs(share - unwrapped) > 0.05
    assert "clipped" in c.attrs["bounds"] and json_sigma(c) == {"azimuth": 5.0, "elevation": 3.0}


def json_sigma(ds):
    import json

    return json.loads(ds.attrs["sigma"])


def test_same_random_state_same_certificates_whatever_the_batch_size():
    g = Smoothed(half_plane, SIGMA, criterion="score >= 0.5", space=PLANE, batch_size=64)
    points = [[2.0, 0.6], [1.5, 0.0], [-1.0, 1.0]]
    a = g.certify(points, n0=30, n=300, random_state=7)
    b = Smoothed(half_plane, SIGMA, criterion="score >= 0.5", space=PLANE, batch_size=1000).certify(
        points, n0=30, n=300, random_state=np.random.default_rng(7))
    assert a.attrs["random_state"] == 7 and b.attrs.pop("random_state").startswith("a numpy Generator")
    a.attrs.pop("random_state")
    xr.testing.assert_identical(a, b)
    assert not g.certify(points, n0=30, n=300, random_state=8).p_lower.equals(a.p_lower)
    assert a.attrs["queries"] == 3 * 330 and (a.queries == 330).all()


def test_bad_input_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="pass a criterion"):
        Smoothed(half_plane, SIGMA, space=PLANE)
    with pytest.raises(ValueError, match="missing"):
        Smoothed(half_plane, {"x": 1.0}, criterion="score >= 0.5", space=PLANE)
    with pytest.raises(ValueError, match="positive"):
        Smoothed(half_plane, [1.0, 0.0], criterion="score >= 0.5", space=PLANE)
    g = Smoothed(half_plane, SIGMA, criterion="score >= 0.5", space=PLANE)
    with pytest.raises(ValueError, match="confidence"):
        g.certify([[0.0, 0.0]], confidence=1.0)
    with pytest.raises(ValueError, match="n0"):
        g.certify([[0.0, 0.0]], n0=0)
    with pytest.raises(ValueError, match="outside its range"):
        g.certify([[60.0, 0.0]])


def test_certified_accuracy_counts_correct_views_with_radius_at_least_r():
    certificates = xr.Dataset({"radius": ("point", [0.0, 0.5, 1.0, 2.0]), "correct": ("point", [False, True, True, False]),
                               "queries": ("point", [10] * 4)}, attrs={"confidence": 0.999, "sigma": "{}"})
    acc = certified_accuracy(certificates, [0.0, 0.5, 0.75, 1.0, 1.5])
    assert acc.values.tolist() == [0.5, 0.5, 0.25, 0.25, 0.0]
    assert (acc.ci_low <= acc).all() and (acc <= acc.ci_high).all() and float(acc.ci_high[-1]) < 1
    grid = certified_accuracy(certificates, sampled=False)
    assert "ci_low" not in grid.coords and float(grid.radius.max()) == 2.0 and len(grid.radius) == 25
    ax = plot.certified_accuracy(acc)
    assert len(ax.lines) == 1 and "sigma" in ax.get_xlabel()
    plt.close("all")
    with pytest.raises(ValueError, match="Smoothed.certify"):
        certified_accuracy(certificates.drop_vars("correct"))


def test_smoothed_real_network_renders_each_noisy_view_once_for_every_network(mug, lite0):
    renderer = semkit.Renderer(image_size=32)
    fs = semkit.SemanticFunctions(mug, [lite0, semkit.load_classifier("efficientnet_lite1")], renderer=renderer)
    g = Smoothed(fs, {"azimuth": 10.0, "elevation": 5.0})
    c = g.certify([[130.0, 30.0], [50.0, 20.0]], n0=2, n=3, confidence=0.9, random_state=0)
    assert c.sizes == {"network": 2, "point": 2} and str(c.shape.values) == "coffee_mug"
    assert fs.renders == 2 * 5 and all(f.queries == 2 * 5 for f in fs.functions)
    assert c.attrs["label"] == 504 and c.attrs["noisy_views"] == 10 and c.attrs["queries"] == 20
    assert ((c.prediction == -1) == (c.radius == 0)).all()
    one = Smoothed(fs["efficientnet_lite0"], [10.0, 5.0], criterion="top-5").certify([[130.0, 30.0]], n0=2, n=3,
                                                                                        confidence=0.9, random_state=0)
    assert set(one.prediction.values) <= {-1, 0, 1} and str(one.network.values) == "efficientnet_lite0"
    assert one.attrs["criterion"] == "top-5 correct"
    acc = certified_accuracy(c)
    assert acc.sizes["network"] == 2 and (acc.isel(radius=0) <= 1).all()


class Sectors:
    """A three-class function of the plane (a ScoreFunction): the class is the 120-degree sector of the point's angle."""

    space = PLANE
    queries = 0
    gradient_method = "none"

    def evaluate(self, points, k=1):
        from semkit.function import Evaluation

        p = np.asarray(points)
        cls = (np.floor(np.mod(np.degrees(np.arctan2(p[:, 1], p[:, 0])), 360) / 120).astype(int) + 1) * 100
        self.queries += len(p)
        return Evaluation((cls == 100).astype(float), cls, cls[:, None], np.ones((len(p), 1)))

    def __call__(self, points):
        return self.evaluate(points).score

    def gradient(self, points):
        raise NotImplementedError

    def describe(self):
        return {"label": 100, "label_name": "first sector"}


def test_several_classes_abstain_where_none_has_a_majority_and_certify_where_one_does():
    f = Sectors()
    g = Smoothed(f, 1.0)
    assert g.answer == "top-1 class"
    assert semkit.Criterion.from_attrs(g.certify([[1.0, 1.0]], n0=2, n=4).attrs) == semkit.Criterion.top1(100)
    centre = g.predict([[0.0, 0.0]] * 10, n=300, random_state=0)
    assert (centre.prediction == -1).all()  # each class 1/3: no answer
    c = g.certify([[0.0, 0.0], [5.0, 5.0], [-5.0, 2.0]], n0=20, n=2000, random_state=0)
    assert c.prediction.values.tolist() == [-1, 100, 200] and c.correct.values.tolist() == [False, True, False]
    # the nearest edge (the x axis) is 5 sigma away: every noisy view hits, and n = 2000 caps the bound
    assert float(c.p_lower[1]) == pytest.approx(0.001 ** (1 / 2000)) and float(c.radius[1]) == pytest.approx(norm.ppf(0.001 ** (1 / 2000)))
    assert f.queries == 6 + 10 * 300 + 3 * 2020
