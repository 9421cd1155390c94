"""Guarantees with a stated criterion: radii, robust accuracy, worst views and verified boxes.

Checked against brute force on analytic functions whose answers can be
enumerated, and on a real SemanticFunction at a small size.
"""

import itertools

import numpy as np
import pytest
import xarray as xr

import semkit
from semkit.trust import Verified
from semkit import trust
from semkit.space import Space

SPACE = Space.paper()


def bumpy(seed: int):
    """A smooth random score over the paper's space, periodic in azimuth (half of it passes score >= 0.5)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([0, -10], [360, 90], (12, 2))
    widths, heights = rng.uniform(20, 60, 12), rng.uniform(-1, 1, 12)

    def f(points):
        p = np.atleast_2d(points)
        d0 = np.abs(p[:, None, 0] - centres[None, :, 0])
        d0 = np.minimum(d0, 360 - d0)
        d1 = p[:, None, 1] - centres[None, :, 1]
        return 0.5 + 0.5 * np.tanh(3 * (heights * np.exp(-(d0**2 + d1**2) / widths**2)).sum(1))

    return f


def lattice_box_points(x, k, delta=3.0):
    """The lattice points of [x - k delta, x + k delta] in the paper's space: azimuth wrapped, elevation clipped."""
    j = np.array(list(itertools.product(range(-k, k + 1), repeat=2)))
    p = x + j * delta
    p = p[(p[:, 1] >= -10 - 1e-9) & (p[:, 1] <= 90 + 1e-9)]
    p[:, 0] %= 360
    return p


def brute_radius(f, x, max_steps, t=0.5):
    if f(x[None])[0] < t:
        return -1
    for k in range(1, max_steps + 1):
        if (f(lattice_box_points(x, k)) < t).any():
            return k - 1
    return max_steps


def largest_box(good, i0, j0):
    """Cells of the largest all-good box holding cell (i0, j0) of a 2-D grid whose axis 0 is periodic."""
    A, E = good.shape
    bad = np.zeros((2 * A + 1, E), int)
    bad[1:] = np.cumsum(~np.concatenate([good, good], 0), 0)  # per column, the failing cells of rows [0, r)
    best = 0
    for i in (i0, i0 + A):  # boxes over rows [a, b] holding row i, at most one period wide
        a, b = np.arange(max(0, i - A + 1), i + 1)[:, None], np.arange(i, min(2 * A, i + A))[None, :]
        ok = bad[b + 1] - bad[a] == 0  # [a, b, column]: the column is all good over rows [a, b]
        down = np.logical_and.accumulate(ok[..., j0::-1], axis=-1).sum(-1)  # good columns from j0 down, unbroken
        up = np.logical_and.accumulate(ok[..., j0:], axis=-1).sum(-1)
        area = np.where(ok[..., j0] & (b - a < A), (b - a + 1) * (down + up - 1), 0)
        best = max(best, int(area.max()))
    return best


# ------------------------------------------------------------------ criterion
def test_plain_functions_need_a_score_criterion_and_nan_scores_are_refused():
    f = bumpy(0)
    with pytest.raises(ValueError, match="criterion=.score >= t."):
        trust.robustness_radius(f, [[0, 0]], space=SPACE)
    with pytest.raises(ValueError, match="NaN"):
        trust.robustness_radius(lambda p: np.full(len(p), np.nan), [[0, 0]], space=SPACE, criterion="score >= 0.5")
    assert trust.Criterion.score(0.3).name == "score >= 0.3" and trust.Criterion().name == "top-1 correct"


# ---------------------------------------------------------- robustness radius
def test_robustness_radius_is_exact_against_brute_force():
    f = bumpy(1)
    points = np.array([[a, e] for a in range(0, 360, 3) for e in range(-10, 91, 3)])[::23]
    ds = trust.robustness_radius(f, points, space=SPACE, criterion="score >= 0.5", step=3, max_steps=6, progress=False)
    expected = np.array([brute_radius(f, x, 6) for x in points])
    assert set(expected) >= {-1, 0, 6} or len(set(expected)) >= 4  # the test covers failing, tight and capped views
    np.testing.assert_array_equal(ds.steps.values, expected)
    k = expected[expected >= 0]
    np.testing.assert_allclose(ds.radius.values[expected >= 0], np.c_[k, k] * 3.0)
    assert ds.attrs["criterion"] == "score >= 0.5" and (ds.queries.values >= 1).all()


def test_robustness_radius_wraps_azimuth_and_clips_elevation():
    # passes everywhere except a thin wall at azimuth 5..6 degrees; views near 0 see it across 360 -> 0
    f = lambda p: np.where((np.atleast_2d(p)[:, 0] >= 5) & (np.atleast_2d(p)[:, 0] <= 6), 0.0, 1.0)  # noqa: E731
    ds = trust.robustness_radius(f, [[357.0, 89.0], [300.0, 40.0]], space=SPACE, criterion="score >= 0.5", step=3, max_steps=8,
                                 progress=False)
    assert ds.steps.values[0] == 2  # 357 + 3 * 3 = 366 = 6 degrees: the third step lands on the wall
    assert ds.steps.values[1] == 8  # elevation 40 +- 24 stays inside; the wall is far


def test_robustness_radius_on_a_real_network_uses_top1(mug, lite0):
    f = semkit.SemanticFunction(mug, lite0, renderer=semkit.Renderer(image_size=64))
    ds = trust.robustness_radius(f, [[30.0, 30.0], [200.0, 20.0]], step=10, max_steps=1, progress=False)
    ev = f.evaluate(np.array([[30.0, 30.0], [200.0, 20.0]]))
    for i, ok in enumerate(ev.top1 == f.label):
        assert (ds.steps.values[i] >= 0) == ok
    assert ds.attrs["criterion"] == "top-1 correct"


# ------------------------------------------------------------ robust accuracy
def test_robust_accuracy_equals_brute_force_erosion_of_the_map():
    f = bumpy(2)
    m = semkit.semantic_map(f, space=SPACE, step=6, progress=False)
    ra = trust.robust_accuracy(m, [0, 6, 12, 20], criterion="score >= 0.5")
    good = m.score.values >= 0.5
    az, el = m.azimuth.values, m.elevation.values
    for r, value in zip([0, 6, 12, 20], ra.values):
        k = int(r // 6)
        count = 0
        for i in range(len(az)):
            for j in range(len(el)):
                rows = [(i + di) % len(az) for di in range(-k, k + 1)]
                cols = [c for c in range(j - k, j + k + 1) if 0 <= c < len(el)]
                count += good[np.ix_(rows, cols)].all()
        assert value == pytest.approx(count / good.size)
    assert ra.values[0] == pytest.approx(good.mean()) and (np.diff(ra.values) <= 0).all()
    assert "score >= 0.5" in ra.attrs["long_name"]


def test_robust_accuracy_surface_over_min_scores_and_stacked_maps():
    maps = [semkit.semantic_map(bumpy(s), space=SPACE, step=10, progress=False) for s in (3, 4)]
    import xarray as xr

    stacked = xr.concat(maps, dim="shape").assign_coords(shape=["a", "b"])
    stacked.attrs = maps[0].attrs
    surface = trust.robust_accuracy(stacked, [0, 10, 20], criterion=[f"score >= {t}" for t in (0.3, 0.5, 0.7)])
    assert set(surface.dims) == {"criterion", "radius", "shape"} and surface.min_score.values.tolist() == [0.3, 0.5, 0.7]
    assert (surface.diff("criterion") <= 1e-12).all() and (surface.diff("radius") <= 1e-12).all()
    one = trust.robust_accuracy(maps[1], [10], criterion="score >= 0.5")
    assert float(surface.sel(criterion="score >= 0.5", radius=10, shape="b")) == pytest.approx(float(one[0]))


def test_robust_accuracy_from_samples_has_a_confidence_interval_around_the_truth():
    f = bumpy(5)
    m = semkit.semantic_map(f, space=SPACE, step=3, progress=False)
    exact = trust.robust_accuracy(m, [0, 6], criterion="score >= 0.5")
    sampled = trust.robust_accuracy(f, [0, 6], criterion="score >= 0.5", space=SPACE, n_samples=300, step=3, progress=False)
    assert (sampled.ci_low <= sampled).all() and (sampled <= sampled.ci_high).all()
    # sampled views are off the map's grid, so the two differ; both estimate the same share
    assert (np.abs(sampled.values - exact.values) < 0.12).all()
    assert sampled.attrs["n_samples"] == 300 and sampled.attrs["queries"] > 300


# ------------------------------------------------------------ worst views
@pytest.mark.parametrize("algorithm, within", [("random", 0.15), ("cmaes", 0.05)])
def test_find_failures_respects_max_queries_and_finds_the_minimum_near_the_start(algorithm, within):
    gaps, found = [], []
    for seed in (6, 7, 8, 9):
        f = bumpy(seed)
        starts = np.random.default_rng(seed).uniform([0, -10], [360, 90], (10, 2))
        ds = trust.find_failures(f, starts, 30, space=SPACE, criterion="score >= 0.5", max_queries=150, algorithm=algorithm,
                                 progress=False)
        assert (ds.queries.values == 150).all()  # all of max_queries, never more
        for s, x in enumerate(starts):
            az = np.arange(x[0] - 30, x[0] + 30.01, 0.5)
            el = np.clip(np.arange(x[1] - 30, x[1] + 30.01, 0.5), -10, 90)
            exact = f(np.array([[a % 360, e] for a in az for e in el])).min()
            gaps.append(ds.score.values[s] - exact)
            if exact < 0.5:
                found.append(bool(ds.failed.values[s]))
            offset = (ds.point.values[s] - x + 180) % 360 - 180
            assert abs(offset[0]) <= 30 + 1e-9 and abs(ds.point.values[s, 1] - x[1]) <= 30 + 1e-9
        hits = ds.queries_to_failure.values[ds.failed.values]
        assert ((hits >= 1) & (hits <= 150)).all()
    assert np.mean(np.array(gaps) <= within) >= 0.8, gaps
    assert np.mean(found) >= 0.9, found


def test_find_failures_reports_a_failing_start_and_rejects_bad_input():
    f = lambda p: np.zeros(len(np.atleast_2d(p)))  # noqa: E731
    ds = trust.find_failures(f, [[10, 10]], 5, space=SPACE, criterion="score >= 0.5", max_queries=3, algorithm="random",
                             progress=False)
    assert ds.failed.item() and ds.queries_to_failure.item() == 1 and ds.queries.item() == 3
    with pytest.raises(ValueError, match="max_queries"):
        trust.find_failures(f, [[10, 10]], 5, space=SPACE, criterion="score >= 0.5", max_queries=0)
    with pytest.raises(ValueError, match="radius"):
        trust.find_failures(f, [[10, 10]], -1, space=SPACE, criterion="score >= 0.5")
    with pytest.raises(ValueError, match="unknown failure search 'annealing'"):
        trust.find_failures(f, [[10, 10]], 5, space=SPACE, criterion="score >= 0.5", algorithm="annealing")
    twice = [trust.find_failures(f, [[10, 10], [50, 40]], 5, space=SPACE, criterion="score >= 0.5", max_queries=20,
                                 algorithm=trust.CMAESSearch(sigma=0.1), random_state=3, progress=False) for _ in range(2)]
    xr.testing.assert_identical(twice[0], twice[1])  # the same random_state, the same search


# ------------------------------------------------------------ verified boxes
def verified(f, starts, space=SPACE, **options):
    regions = semkit.find_regions(f, starts, Verified(**options), space=space, progress=False)
    return regions.sel(algorithm="verified")


def test_lattice_boxes_hold_no_failure_and_come_close_to_the_largest_box():
    ratios = []
    for seed in (7, 8, 9):
        f = bumpy(seed)
        m = semkit.semantic_map(f, space=SPACE, step=3, progress=False)
        good = m.score.values >= 0.5
        cells = np.argwhere(good)[::151]
        starts = np.array([[m.azimuth.values[i], m.elevation.values[j]] for i, j in cells])
        boxes = verified(f, starts, criterion="score >= 0.5", step=3, growth="lattice")
        for s, (i, j) in enumerate(cells):
            lo, hi = boxes.lower.values[s], boxes.upper.values[s]
            az, el = np.arange(lo[0], hi[0] + 1e-9, 3), np.arange(lo[1], hi[1] + 1e-9, 3)
            inside = np.array([[a % 360, e] for a in az for e in el])
            assert (f(inside) >= 0.5).all()
            ratios.append(len(inside) / largest_box(good, i, j))
        assert (boxes.start_passes == 1).all() and (boxes.queries > 0).all()
    assert np.mean(ratios) >= 0.7, ratios


def test_lattice_box_crosses_360_and_a_failing_start_is_empty():
    f = lambda p: np.where(np.abs((np.atleast_2d(p)[:, 0] + 180) % 360 - 180) <= 20, 1.0, 0.0)  # noqa: E731
    with pytest.warns(UserWarning, match=r"start\(s\) \(\[1\]\) fail the criterion"):
        boxes = verified(f, [[355.0, 40.0], [90.0, 40.0]], criterion="score >= 0.5", step=5)
    assert float(boxes.lower[0, 0]) == pytest.approx(340) and float(boxes.upper[0, 0]) == pytest.approx(380)
    assert float(boxes.lower[0, 1]) == pytest.approx(-10) and float(boxes.upper[0, 1]) == pytest.approx(90)
    assert boxes.start_passes.values.tolist() == [1.0, 0.0] and boxes.certified.values.tolist() == [1.0, 0.0]
    assert np.isnan(boxes.lower[1]).all() and np.isnan(boxes.upper[1]).all()  # a failing start has no box
    assert semkit.srvr(boxes.expand_dims(algorithm=["verified"])).item() > 0


def test_verified_boxes_with_the_paper_algorithms_in_one_search_and_on_a_real_network(mug, lite0):
    f = semkit.SemanticFunction(mug, lite0, renderer=semkit.Renderer(image_size=64))
    candidates = np.array([[a, e] for e in (10.0, 30.0, 50.0) for a in range(0, 360, 30)])
    right = candidates[f.evaluate(candidates).top1 == f.label]
    assert len(right) >= 1, "the network gets no candidate view right at 64 px"
    starts = np.concatenate([right[:1], candidates[f.evaluate(candidates).top1 != f.label][:1]])  # one passes, one fails
    regions = semkit.find_regions(f, starts, ("naive", Verified(step=15, max_queries=1500)), iterations=40, progress=False)
    boxes = regions.sel(algorithm="verified")
    assert boxes.start_passes.values.tolist()[:1] == [1.0] and not np.isnan(boxes.lower.values[0]).any()
    for s in range(len(starts)):
        lo, hi = boxes.lower.values[s], boxes.upper.values[s]
        if not boxes.start_passes.values[s]:  # top-1 criterion by default: a start the network gets wrong has no box
            assert f.evaluate(boxes.start_point.values[s][None]).top1[0] != f.label and np.isnan(lo).all()
            continue
        az, el = np.arange(lo[0], hi[0] + 1e-9, 15), np.arange(lo[1], hi[1] + 1e-9, 15)
        inside = np.array([[a % 360, e] for a in az for e in el])
        assert (f.evaluate(inside).top1 == f.label).all()
    assert "top-1 correct" in regions.attrs["algorithms"]


def test_an_interrupted_verified_search_resumes_without_querying_again(tmp_path):
    f = bumpy(9)
    starts = [[100.0, 30.0], [250.0, 50.0]]
    whole = verified(f, starts, criterion="score >= 0.5", step=3)
    calls = []

    def flaky(points):
        calls.append(len(points))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return f(points)

    store = tmp_path / "v.nc"
    with pytest.raises(KeyboardInterrupt):
        semkit.find_regions(flaky, starts, Verified(step=3), space=SPACE, store=store, key="bumpy9", criterion="score >= 0.5", progress=False)
    before = sum(calls[:3])
    counted = []
    resumed = semkit.find_regions(lambda p: counted.append(len(p)) or f(p), starts, Verified(step=3), space=SPACE, store=store,
                                  key="bumpy9", criterion="score >= 0.5", progress=False)
    np.testing.assert_allclose(resumed.lower.sel(algorithm="verified"), whole.lower)
    np.testing.assert_allclose(resumed.upper.sel(algorithm="verified"), whole.upper)
    np.testing.assert_array_equal(resumed.iterations.sel(algorithm="verified"), whole.iterations)
    np.testing.assert_allclose(resumed.lower_trace.sel(algorithm="verified"), whole.lower_trace)
    assert before + sum(counted) == int(whole.queries.sum())  # nothing evaluated twice


def test_sampled_boxes_in_4d_hold_their_certificate_within_max_queries():
    space = Space({"azimuth": (0, 360), "elevation": (-10, 90), "distance": (1.5, 4.0), "light_elevation": (-90, 90)},
                  periodic=["azimuth"])
    holds, volumes = [], []
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        lo = space.lower + rng.uniform(0.1, 0.4, 4) * space.widths
        hi = np.minimum(lo + rng.uniform(0.2, 0.5, 4) * space.widths, space.upper)
        f = lambda p, lo=lo, hi=hi: np.where(((np.atleast_2d(p) >= lo) & (np.atleast_2d(p) <= hi)).all(1), 0.8, 0.2)  # noqa: E731
        start = lo + rng.uniform(0.2, 0.8, 4) * (hi - lo)
        boxes = verified(f, start[None], space, criterion="score >= 0.5", random_state=seed)
        assert int(boxes.queries[0]) <= 5000
        a, b = boxes.lower.values[0], boxes.upper.values[0]
        check = a + rng.random((20000, 4)) * (b - a)
        holds.append((f(check) < 0.5).mean() <= 0.01)
        volumes.append(np.prod(b - a) / np.prod(hi - lo))
    assert np.mean(holds) >= 0.9 and np.mean(np.array(volumes) >= 0.5) >= 0.6, volumes


def test_verified_boxes_reject_bad_settings():
    f = bumpy(0)
    for options, match in [({"certificate": "interval"}, "certificate"), ({"step": 0}, "step"),
                           ({"confidence": 1.0}, "confidence"), ({"max_failure": 0}, "max_failure"),
                           ({"certainty": 0.9}, "unexpected keyword argument .certainty.")]:
        with pytest.raises((ValueError, TypeError), match=match):
            verified(f, [[10.0, 10.0]], criterion="score >= 0.5", **options)
    with pytest.raises(ValueError, match="criterion=.score >= t."):
        verified(f, [[10.0, 10.0]])  # a plain function has no top-1 class


# ------------------------------------------------------ comparisons with confidence
def stacked_maps(functions_by_network: dict, step: float = 10.0):
    import xarray as xr

    rows = []
    for fs in functions_by_network.values():
        rows.append(xr.concat([semkit.semantic_map(f, space=SPACE, step=step, progress=False).drop_attrs() for f in fs], dim="shape"))
    ds = xr.concat(rows, dim="network").assign_coords(network=list(functions_by_network),
                                                       shape=[f"s{i}" for i in range(len(fs))])
    ds.attrs["space"] = semkit.semantic_map(fs[0], space=SPACE, step=90, progress=False).attrs["space"]
    return ds


def test_compare_networks_gives_intervals_paired_tests_and_flags_flips():
    from semkit.studies import compare_networks, findings

    shapes = [bumpy(s) for s in range(10, 18)]
    steep = [lambda p, f=f: np.clip(0.5 + 2 * (f(p) - 0.5), 0, 1) for f in shapes]  # same order, more extreme
    maps = stacked_maps({"base": shapes, "better": [lambda p, f=f: np.minimum(f(p) + 0.1, 1) for f in shapes],
                         "steep": steep})
    cmp = compare_networks(maps, radius=(0, 10), criterion=["score >= 0.3", "score >= 0.7"], n_resamples=500,
                           progress=False)
    assert set(cmp.dims) >= {"criterion", "metric", "network", "other"}
    assert (cmp.ci_low <= cmp["mean"] + 1e-12).all() and (cmp["mean"] <= cmp.ci_high + 1e-12).all()
    better = cmp.sel(metric="accuracy over the space", network="better", other="base")
    assert (better.difference > 0).all() and (better.p_value < 0.05).all()
    # a steeper score passes score >= 0.3 less often (f >= 0.4) and score >= 0.7 more often (f >= 0.6): a flip
    steep_vs_base = cmp.sel(metric="accuracy over the space", network="steep", other="base").difference.values
    assert steep_vs_base[0] < 0 < steep_vs_base[1]
    text = "\n".join(findings(cmp))
    assert "flips" in text and "significant" in text
    same = compare_networks(stacked_maps({"a": shapes[:4], "b": shapes[:4]}), radius=(0,), criterion="score >= 0.5",
                            n_resamples=200, progress=False)
    assert float(same.sel(metric="accuracy over the space", network="a", other="b").p_value.squeeze()) == 1.0
