import json

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import brentq

import semkit
from semkit import Space, check_regions, find_regions, gallery, interpolate, semantic_map, srvr
from semkit.regions import OIRB, OIRW, FaithfulSteps, Naive
from semkit.regions.paper import corner_masks

STARTS = [[130, 30], [50, 20], [200, 15], [310, 50]]  # the paper's initial points


# ----------------------------------------------------------------- the math
def multilinear(coef):
    """f(u) = prod_i (c_i + d_i u_i): the trapezoid rule is exact on it, over boxes and faces."""
    c, d = np.asarray(coef, dtype=float).T

    def f(u):
        return np.prod(c + d * u, axis=-1)

    def integral(a, b):  # exact integral over [a, b]
        return np.prod(c * (b - a) + d * (b**2 - a**2) / 2)

    return f, integral


def corners(a, b):
    return a + corner_masks(len(a)).T * (b - a)


def numerical(loss, a, b, h=1e-6):
    n = len(a)
    ga, gb = np.zeros(n), np.zeros(n)
    for i in range(n):
        e = np.eye(n)[i] * h
        ga[i] = (loss(a + e, b) - loss(a - e, b)) / (2 * h)
        gb[i] = (loss(a, b + e) - loss(a, b - e)) / (2 * h)
    return ga, gb


@pytest.mark.parametrize("n", [1, 2, 3])
def test_naive_and_oir_b_gradients_are_derivatives_of_their_losses(n):
    rng = np.random.default_rng(n)
    f, integral = multilinear(rng.uniform([0.5, -0.2], [1.0, 0.2], size=(n, 2)))
    a = rng.uniform(-1, 0, n)
    b = a + rng.uniform(0.5, 2, n)
    h = OIRB()

    naive = lambda a, b: -integral(a, b) + Naive().lam / 2 * np.sum((b - a) ** 2)
    ga, gb, loss = Naive().gradients(a[None], b[None], f(corners(a, b))[None], None)
    np.testing.assert_allclose(loss[0], naive(a, b), rtol=1e-10)
    np.testing.assert_allclose(np.r_[ga[0], gb[0]], np.r_[numerical(naive, a, b)], rtol=1e-6, atol=1e-9)

    def oir_b(a, b):
        m = h.alpha / 2 * (b - a)
        return integral(a - m, b + m) - 2 * integral(a, b)

    m = h.alpha / 2 * (b - a)
    ga, gb, loss = h.gradients(a[None], b[None], np.concatenate([f(corners(a, b)), f(corners(a - m, b + m))])[None], None)
    np.testing.assert_allclose(loss[0], oir_b(a, b), rtol=1e-10)
    np.testing.assert_allclose(np.r_[ga[0], gb[0]], np.r_[numerical(oir_b, a, b)], rtol=1e-6, atol=1e-9)


def test_oir_b_in_one_dimension_is_exact_leibniz():
    """For any f (here a sine), the 1-D OIR_B step is the exact derivative of its integral loss."""
    F = lambda x: -np.cos(x)  # antiderivative of sin
    alpha = 0.05
    loss = lambda a, b: (F(b[0] + alpha / 2 * (b[0] - a[0])) - F(a[0] - alpha / 2 * (b[0] - a[0]))) - 2 * (F(b[0]) - F(a[0]))
    a, b = np.array([0.3]), np.array([1.7])
    m = alpha / 2 * (b - a)
    ga, gb, _ = OIRB(alpha=alpha).gradients(a[None], b[None], np.sin([[a[0], b[0], a[0] - m[0], b[0] + m[0]]]), None)
    np.testing.assert_allclose([ga[0, 0], gb[0, 0]], np.r_[numerical(loss, a, b)], rtol=1e-7)


def oir_w_by_loops(a, b, f_D, G, beta):
    """docs/algorithms.md's OIR_W step, transcribed term by term with explicit sums."""
    n = len(a)
    r = b - a
    C = 2**n
    m = [[(k >> i) & 1 for k in range(C)] for i in range(n)]
    vol = np.prod(r)
    ga, gb = np.zeros(n), np.zeros(n)
    for j in range(n):
        lo = sum(((2 - (2 * n - 1) * beta) * (1 - m[j][k]) - beta * m[j][k]) * f_D[k] for k in range(C)) / r[j]
        hi = sum(((2 - (2 * n - 1) * beta) * m[j][k] - beta * (1 - m[j][k])) * f_D[k] for k in range(C)) / r[j]
        glo = sum((1 - m[j][k]) * G[k, j] for k in range(C))
        ghi = sum(m[j][k] * G[k, j] for k in range(C))
        slo = sum(r[i] * sum(((1 - m[i][k]) - m[i][k]) * (1 - m[j][k]) * G[k, i] for k in range(C)) for i in range(n) if i != j) / r[j]
        shi = sum(r[i] * sum((m[i][k] - (1 - m[i][k])) * m[j][k] * G[k, i] for k in range(C)) for i in range(n) if i != j) / r[j]
        ga[j] = vol / C * (lo + beta * glo + beta * slo)
        gb[j] = vol / C * (-hi + beta * ghi + beta * shi)
    return ga, gb


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_oir_w_gradients_follow_the_reference_formulas(n):
    rng = np.random.default_rng(10 + n)
    a = rng.uniform(-2, 0, n)
    b = a + rng.uniform(0.5, 3, n)
    f_D = rng.uniform(0.1, 1, 2**n)
    G = rng.normal(size=(2**n, n))
    h = OIRW(beta=0.05)  # larger than the paper's so that the slope terms weigh in the comparison
    ga, gb, _ = h.neg_log_gradients(a[None], b[None], f_D[None], G[None])
    ea, eb = oir_w_by_loops(a, b, f_D, G, h.beta)
    np.testing.assert_allclose(ga[0], ea, rtol=1e-10)
    np.testing.assert_allclose(gb[0], eb, rtol=1e-10)
    if n == 1:  # the closed form: ((2 - beta) f(a) - beta f(b)) / 2 + beta r G(a) / 2
        r = b[0] - a[0]
        np.testing.assert_allclose(ga[0, 0], ((2 - h.beta) * f_D[0] - h.beta * f_D[1]) / 2 + h.beta * r * G[0, 0] / 2)


# ------------------------------------------------------------ closed forms
LINE = Space({"x": (-180, 180)})


def test_naive_stops_where_f_at_the_bound_equals_lambda_times_the_width():
    gauss = lambda p: np.exp(-p[:, 0] ** 2 / (2 * 30**2))
    r = find_regions(gauss, [[0.0]], "naive", space=LINE, iterations=3000,
                     step_rule=FaithfulSteps(min_motion=1e-7), progress=False)
    b_star = brentq(lambda b: np.exp(-(b**2) / 1800) - 0.1 * 2 * b, 0.1, 180)
    assert float(r.upper.squeeze()) == pytest.approx(b_star, abs=1e-3)
    assert float(r.lower.squeeze()) == pytest.approx(-b_star, abs=1e-3)
    assert bool(r.converged.squeeze()) and int(r.iterations.squeeze()) < 3000  # min_motion stopped it

    one = find_regions(lambda p: np.ones(len(p)), [[0.0]], "naive", space=LINE, iterations=3000,
                     step_rule=FaithfulSteps(min_motion=1e-7), progress=False)
    assert float((one.upper - one.lower).squeeze()) == pytest.approx(1 / 0.1, abs=1e-3)  # f = lambda r at width 1/lambda


def test_box_function():
    """f = 1 on (-20, 20): naive settles at width 1/lambda inside it, OIR_B on its edges."""
    box = lambda p: ((p[:, 0] > -20) & (p[:, 0] < 20)).astype(float)
    r = find_regions(box, [[3.0]], ("naive", "oir_b"), space=LINE, iterations=2000,
                     step_rule=FaithfulSteps(min_motion=1e-7), progress=False)
    naive, oir_b = r.isel(start=0, param=0).sel(algorithm="naive"), r.isel(start=0, param=0).sel(algorithm="oir_b")
    assert float(naive.upper - naive.lower) == pytest.approx(10, abs=1e-3)
    assert -20 < float(naive.lower) < float(naive.upper) < 20
    assert float(oir_b.lower) == pytest.approx(-20, abs=0.5) and float(oir_b.upper) == pytest.approx(20, abs=0.5)


def bump(p, centre=0.0):
    """High around azimuth ``centre`` (periodic) and elevation 30."""
    d = np.angle(np.exp(1j * np.radians(p[:, 0] - centre)))
    return np.exp(-((d / np.radians(40)) ** 2)) * np.exp(-(((p[:, 1] - 30) / 25) ** 2))


def test_a_box_crosses_azimuth_zero_on_a_periodic_space():
    seen = []

    def f(p):
        seen.append(p.copy())
        return bump(p)

    r = find_regions(f, [[350, 30]], ("naive", "oir_b", "oir_w"), space=Space.paper(), iterations=400, progress=False)
    pts = np.concatenate(seen)
    assert pts[:, 0].min() >= 0 and pts[:, 0].max() < 360  # f only ever sees wrapped angles
    lo, hi = r.lower.sel(param="azimuth").values, r.upper.sel(param="azimuth").values
    assert (lo < 360).all() and (hi > 360).all(), "every box reaches past 360 -> 0, kept unwrapped"
    assert ((hi - lo) < 360).all() and ((hi - lo) > 20).all()
    centre = ((lo + hi) / 2) % 360
    assert np.all(np.minimum(centre, 360 - centre) < 8)  # centred on the bump at 0

    clipped = find_regions(bump, [[350, 30]], "oir_b", space=Space.paper(periodic=False), iterations=400, progress=False)
    assert float(clipped.upper.sel(param="azimuth").squeeze()) == 360  # the reference's clipping


@pytest.mark.parametrize("n", [3, 4])
def test_n_dimensional_boxes_take_one_batched_call_per_step(n):
    space = Space({f"u{i}": (-5.0, 5.0) for i in range(n)})
    calls = []

    def f(p):
        calls.append(len(p))
        return np.exp(-np.sum((p / 2) ** 2, axis=1))

    # from the paper's 1e-5 box the steps scale as width^(n-1) and a box in n >= 3 never grows: start wider
    algorithms = (Naive(start_width=0.25), OIRB(start_width=0.25), OIRW(start_width=0.25))
    r = find_regions(f, np.zeros((2, n)) + [[0.0], [0.5]], algorithms, space=space, iterations=150, progress=False)
    assert r.lower.dims == ("start", "algorithm", "param") and r.lower.shape == (2, 3, n)
    assert len(calls) == 150  # one call of f per step for all starts and all algorithms
    per_step = 2 * (2**n + 2 * 2**n + 2**n * (1 + 2 * n))  # naive, oir_b (inner + outer), oir_w (corners + differences)
    assert 0 < calls[0] <= per_step  # the algorithms' points, each distinct point evaluated once (f's query cache)
    assert (r.queries.values == 150 * np.array([2**n, 2 * 2**n, 2**n * (1 + 2 * n)])).all()
    width = (r.upper - r.lower).sel(start=0)
    assert (width > 0.5).all()
    np.testing.assert_allclose((r.upper + r.lower).sel(start=0), 0, atol=1e-6)  # symmetric f, symmetric boxes
    assert "iteration" in r.lower_trace.dims and r.loss.shape == (150, 2, 3)
    described = json.loads(r.attrs["algorithms"])
    assert [m["start_width"] for m in described] == [0.25] * 3 and described[1]["alpha"] == 0.05
    assert described[0]["step_rule"] == {"name": "faithful", "min_motion": None}


def test_the_algorithm_dim_is_picked_by_plain_sel():
    """The argument is algorithms=, the dim algorithm: never "method", as xarray's own sel(method=) is its fill
    rule, and sel(method="oir_b") would silently keep every algorithm (no error, the wrong numbers)."""
    f = lambda p: np.exp(-np.sum(((np.atleast_2d(p) - [180, 30]) / [60, 20]) ** 2, axis=1))  # noqa: E731
    r = find_regions(f, [[180, 30]], ("naive", "oir_b"), space=Space.paper(), iterations=5, progress=False)
    assert r.lower.dims == ("start", "algorithm", "param") and "method" not in r.dims
    one = r.sel(algorithm="oir_b")
    assert "algorithm" not in one.lower.dims and one.algorithm.item() == "oir_b"
    np.testing.assert_array_equal(one.lower, r.lower.isel(algorithm=1))


def test_white_box_gradients_come_from_f_gradient_when_it_has_one():
    class WithGradient:
        space = Space.paper()

        def __init__(self):
            self.gradient_calls = 0

        def __call__(self, p):
            return bump(p, 120)

        def gradient(self, p):
            self.gradient_calls += 1
            h = 1e-4
            return np.stack([(bump(p + h * e, 120) - bump(p - h * e, 120)) / (2 * h) for e in np.eye(2)], axis=1)

    f = WithGradient()
    r = find_regions(f, [[120, 30]], "oir_w", iterations=100, progress=False)
    assert f.gradient_calls == 100 and r.attrs["gradient_source"] == "f.gradient"
    plain = find_regions(lambda p: bump(p, 120), [[120, 30]], OIRW(fd_step=1e-4), space=Space.paper(), iterations=100,
                         progress=False)
    assert plain.attrs["gradient_source"].startswith("central differences")
    np.testing.assert_allclose(r.upper, plain.upper, rtol=1e-5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="elevation=95 is outside"):
        find_regions(bump, [[10, 95]], space=Space.paper(), progress=False)
    with pytest.raises(ValueError, match="NaN"):
        find_regions(lambda p: np.full(len(p), np.nan), [[10, 10]], space=Space.paper(), progress=False)
    with pytest.raises(ValueError, match="unknown region algorithm 'oir_x'"):
        find_regions(bump, [[10, 10]], "oir_x", space=Space.paper(), progress=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'lr'"):
        OIRB(lr=0.2)
    with pytest.raises(ValueError, match="alpha must be a positive"):
        OIRB(alpha=-1)
    with pytest.raises(TypeError, match="alpha must be a positive number"):
        OIRB(alpha="0.05")
    with pytest.raises(ValueError, match="needs a Space"):
        find_regions(bump, [[10, 10]], progress=False)
    with pytest.raises(ValueError, match="unknown step rule .fast."):
        find_regions(bump, [[10, 10]], space=Space.paper(), step_rule="fast", progress=False)


# ----------------------------------------------------------------- adaptive
def box_iou(r1, r2):
    lo, hi = np.maximum(r1.lower, r2.lower), np.minimum(r1.upper, r2.upper)
    inter = (hi - lo).clip(min=0).prod("param")
    union = (r1.upper - r1.lower).prod("param") + (r2.upper - r2.lower).prod("param") - inter
    return inter / union


def plateau(p):
    """A sigmoid-edged plateau of confidence (azimuth 20..180, elevation under 60), 0.02 elsewhere."""
    d = np.abs(np.angle(np.exp(1j * np.radians(p[:, 0] - 100)))) * 180 / np.pi
    return 0.95 / (1 + np.exp((d - 80) / 5)) / (1 + np.exp((p[:, 1] - 60) / 3)) + 0.02


def adaptive_against_faithful(f, space, starts):
    faithful = find_regions(f, starts, space=space, iterations=600, progress=False)
    adaptive = find_regions(f, starts, space=space, iterations=600, step_rule="adaptive", progress=False)
    grown = ((faithful.upper - faithful.lower) / xr.DataArray(space.widths, dims="param")).min("param") > 1e-3
    iou = box_iou(faithful, adaptive).where(grown)
    ratio = adaptive.queries.sum("start") / faithful.queries.sum("start")
    return iou, grown, ratio, faithful, adaptive


def test_adaptive_steps_reach_the_faithful_regions_with_a_quarter_of_the_queries():
    iou, grown, ratio, faithful, adaptive = adaptive_against_faithful(plateau, Space.paper(periodic=False), STARTS + [[100, 40], [90, 10]])
    assert int(grown.sum()) >= 9
    assert float(iou.min()) >= 0.9, iou.values
    assert (ratio <= 0.25).all(), ratio.values
    # boxes that did not grow stay put under both rules
    np.testing.assert_allclose(adaptive.lower.where(~grown), faithful.lower.where(~grown), atol=1e-3)
    assert adaptive.attrs["step_rule"] == "adaptive" and (adaptive.iterations < 150).all()


@pytest.mark.slow
def test_adaptive_steps_on_a_real_map(lite0):
    f = semkit.SemanticFunction(gallery.load("park_bench"), lite0, renderer=semkit.Renderer(image_size=112))
    m = semantic_map(f, step=(10, 10), progress=False)
    iou, grown, ratio, *_ = adaptive_against_faithful(interpolate(m), Space.paper(periodic=False), STARTS + [[60, 40], [300, 30]])
    assert int(grown.sum()) >= 4
    assert float(iou.min()) >= 0.9, iou.values
    assert (ratio <= 0.25).all(), ratio.values


# ------------------------------------------------------------------ metrics
def indicator_map():
    """score 1 on azimuth [330, 30] (across 0) x elevation [0, 40], else 0; a 5-degree grid."""
    def f(p):
        az = np.mod(p[:, 0] + 30, 360)
        return ((az <= 60) & (p[:, 1] >= 0) & (p[:, 1] <= 40)).astype(float)

    return semantic_map(f, space=Space.paper(), step=5, progress=False)


def test_srvr_and_the_check_against_a_dense_map():
    m = indicator_map()
    r = find_regions(interpolate(m), [[0, 20], [180, 50]], ("naive", "oir_b"), iterations=5, progress=False)
    # set known boxes: the exact region (across 0), half of it, and a box where nothing is correct
    r["lower"].values[:] = [[[330, 0], [330, 0]], [[170, 40], [170, 40]]]
    r["upper"].values[:] = [[[390, 40], [360, 40]], [[190, 60], [190, 60]]]
    with pytest.raises(ValueError, match="pass criterion=.score >= t."):  # a plain function's map has no classes: no silent 0.5
        check_regions(r, m)
    check = check_regions(r, m, criterion="score >= 0.5")
    assert check.attrs["criterion"] == "score >= 0.5"
    assert check.iou.sel(start=0, algorithm="naive") == 1 and check.fraction_correct.sel(start=0, algorithm="naive") == 1
    assert check.points.sel(start=0, algorithm="naive") == 13 * 9
    assert check.iou.sel(start=0, algorithm="oir_b") == pytest.approx(7 * 9 / (13 * 9))  # 330..360 of 330..30
    assert check.fraction_correct.sel(start=1).values.tolist() == [0, 0]
    assert (check.iou.sel(start=1) == 0).all()

    volumes = np.array([[60 * 40, 30 * 40], [20 * 20, 20 * 20]]) / (360 * 100)
    np.testing.assert_allclose(semkit.regions.volume_ratio(r), volumes)
    s = srvr(r)
    assert s.dims == ("algorithm",)
    np.testing.assert_allclose(s, volumes.mean(0))


def test_srvr_keeps_network_and_shape_dims():
    r = find_regions(bump, STARTS, ("naive", "oir_b"), space=Space.paper(), iterations=50, progress=False)
    stacked = xr.concat([xr.concat([r, r], dim="shape"), xr.concat([r, r], dim="network")], dim="network")
    out = srvr(stacked)
    assert set(out.dims) == {"network", "shape", "algorithm"}


def test_map_interpolation():
    m = semantic_map(lambda p: p[:, 1] / 100 + np.cos(np.radians(p[:, 0])), space=Space.paper(), step=(30, 15), progress=False)
    F = interpolate(m)
    grid = np.array([[0, 5], [330, 20], [90, 80]])
    np.testing.assert_allclose(F(grid), m.score.sel(azimuth=grid[:, 0], elevation=grid[:, 1]).values.diagonal())
    np.testing.assert_allclose(F([[345, 12.5]]), (m.score.sel(azimuth=330) + m.score.sel(azimuth=0)).sel(elevation=[5, 20]).mean() / 2)
    np.testing.assert_allclose(F([[10, 85]]), F([[10, 80]]))  # held at the last grid row (80) beyond the grid
    assert F.space == Space.paper()
    with pytest.raises(ValueError, match="beyond the Space"):
        interpolate(m.expand_dims(shape=["a"]))


# ----------------------------------------------------------- the real thing
@pytest.mark.slow
def test_regions_of_a_semantic_function(lite0):
    f = semkit.SemanticFunction(gallery.load("coffee_mug"), lite0, renderer=semkit.Renderer(image_size=64))
    r = find_regions(f, [[90, 30]], iterations=3, progress=False)
    assert r.attrs["gradient_source"] == "central differences (azimuth=1, elevation=1)"
    assert r.attrs["network"] == "efficientnet_lite0" and r.attrs["label_name"] == "coffee mug"
    assert r.queries.sel(algorithm="oir_w").item() == 3 * 4 * (1 + 4)  # corners, and 4 differences at each
    assert f.queries + f.cache_hits == 3 * (4 + 8 + 20)  # points asked; the algorithms' shared first corners render once
    assert f.queries < 3 * (4 + 8 + 20)
    assert np.isfinite(r.loss).all()


def test_a_stored_search_resumes_where_it_was_interrupted(tmp_path):
    class Interrupted:
        def __init__(self, stop_after=None):
            self.calls, self.stop_after = 0, stop_after

        def __call__(self, p):
            if self.stop_after is not None and self.calls >= self.stop_after:
                raise KeyboardInterrupt
            self.calls += 1
            return bump(p, 100)

    args = dict(starts=[[100, 30], [60, 20]], algorithms=("naive", "oir_b"), space=Space.paper(), iterations=200, progress=False)
    whole = find_regions(Interrupted(), **args)
    store = tmp_path / "r.nc"
    first = Interrupted(stop_after=120)
    with pytest.raises(KeyboardInterrupt):
        find_regions(first, **args, store=store)
    assert (tmp_path / "r.nc.partial.npz").exists() and not store.exists()
    second = Interrupted()
    resumed = find_regions(second, **args, store=store)
    # one call of f per step: nothing done twice, nothing lost; each run also asks f at its 3 canary points (1 call)
    assert first.calls + second.calls == 200 + 2
    for name in ("lower", "upper", "lower_trace", "upper_trace", "loss", "queries", "iterations"):
        np.testing.assert_array_equal(resumed[name], whole[name])
    assert store.exists() and not (tmp_path / "r.nc.partial.npz").exists()
    third = Interrupted()
    again = find_regions(third, **args, store=store)  # a finished search is read back (after the canary call)
    assert third.calls == 1
    np.testing.assert_array_equal(again.upper, whole.upper)
    assert bool(again.converged.dtype == bool)
    with pytest.raises(ValueError, match="other settings"):
        find_regions(Interrupted(), **{**args, "iterations": 300}, store=store)


class Stoppable:
    """bump(p, 100) that raises KeyboardInterrupt at its call ``stop_after``."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = 0, stop_after

    def __call__(self, p):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        return bump(p, 100)


def test_an_adaptive_search_resumed_equals_an_uninterrupted_one(tmp_path):
    args = dict(starts=[[100, 30], [60, 20], [300, 60]], algorithms=("naive", "oir_b", "oir_w"), space=Space.paper(),
                iterations=600, step_rule="adaptive", progress=False)
    whole = find_regions(Stoppable(), **args)
    store = tmp_path / "adaptive.nc"
    for stop in (15, 20):  # interrupted twice, each time mid-way
        with pytest.raises(KeyboardInterrupt):
            find_regions(Stoppable(stop_after=stop), **args, store=store)
    resumed = find_regions(Stoppable(), **args, store=store)
    assert int(whole.iterations.max()) > 30  # the interruptions fell inside the search
    for name in ("lower", "upper", "lower_trace", "upper_trace", "loss", "queries", "iterations", "converged"):
        np.testing.assert_array_equal(resumed[name], whole[name], err_msg=name)


def test_a_region_search_killed_with_sigkill_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    store = tmp_path / "killed.nc"
    script = textwrap.dedent(f"""
        import time, numpy as np, semkit, semkit.regions.driver
        semkit.regions.driver.CHECKPOINT_SECONDS = 0.2
        def slow(p):
            time.sleep(0.01)
            return np.exp(-((np.angle(np.exp(1j * np.radians(p[:, 0] - 100))) / np.radians(40)) ** 2)) * np.exp(-(((p[:, 1] - 30) / 25) ** 2))
        semkit.find_regions(slow, [[100, 30], [60, 20]], ("naive", "oir_b"), space=semkit.Space.paper(), iterations=400,
                            store={str(store)!r}, progress=False)
        """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    checkpoint = tmp_path / "killed.nc.partial.npz"
    deadline = time.time() + 120
    while time.time() < deadline and not checkpoint.exists():
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not store.exists()

    calls = []

    def slow(p):
        calls.append(len(p))
        return bump(p, 100)

    slow.__module__, slow.__qualname__ = "__main__", "slow"  # the same function, as far as the store can tell
    resumed = find_regions(slow, [[100, 30], [60, 20]], ("naive", "oir_b"), space=Space.paper(), iterations=400, store=store, progress=False)
    whole = find_regions(lambda p: bump(p, 100), [[100, 30], [60, 20]], ("naive", "oir_b"), space=Space.paper(), iterations=400, progress=False)
    assert 1 < len(calls) < 400  # the canary, then only the steps after the last checkpoint
    np.testing.assert_allclose(resumed.upper, whole.upper, rtol=1e-12)
    np.testing.assert_allclose(resumed.lower_trace, whole.lower_trace, rtol=1e-12)
    assert store.exists() and not checkpoint.exists()


def test_empty_starts_are_named():
    with pytest.raises(ValueError, match="no starts given"):
        find_regions(bump, np.empty((0, 2)), space=Space.paper(), progress=False)


def test_a_map_on_part_of_a_periodic_parameter_is_held_at_its_nearer_end():
    f = lambda p: p[:, 0] / 360 + p[:, 1] / 1000  # noqa: E731
    half = semantic_map(f, space=Space.paper(), step=(30, 50), progress=False).sel(azimuth=slice(0, 180))
    F = interpolate(half)
    np.testing.assert_allclose(F([[45, 0], [180, 50]]), [45 / 360, 0.5 + 0.05])  # inside: interpolated
    np.testing.assert_allclose(F([[200, 0]]), [180 / 360])  # beyond 180: held at 180, not joined to 0
    np.testing.assert_allclose(F([[350, 0]]), [0.0])  # nearer to 0 around the circle: held at 0
    full = interpolate(semantic_map(f, space=Space.paper(), step=(30, 50), progress=False))
    np.testing.assert_allclose(full([[345, 0]]), [(330 / 360 + 0) / 2])  # a whole period still closes the circle


def test_algorithms_are_objects_that_declare_what_they_need():
    from semkit.regions import ALGORITHMS, RegionAlgorithm

    assert ALGORITHMS.names() == ("naive", "oir_b", "oir_w", "verified")  # known by name, nothing imported for it
    oir_w = ALGORITHMS.create("oir_w")
    assert isinstance(oir_w, OIRW) and isinstance(oir_w, RegionAlgorithm)
    assert oir_w.needs_gradient and not ALGORITHMS.create("naive").needs_gradient
    assert (oir_w.title, oir_w.color) == ("OIR_W", "tab:purple")
    assert [ALGORITHMS.create(m).queries_per_step(2) for m in ALGORITHMS.names()] == [4, 8, 8, 4]
    assert repr(OIRB(alpha=0.2, step_rule="adaptive")) == "OIRB(alpha=0.2, step_rule=AdaptiveSteps())"
    assert OIRB(alpha=0.2).get_params()["alpha"] == 0.2
    # an object with its own settings runs beside names
    r = find_regions(bump, [[0, 30]], ("naive", OIRB(alpha=0.2)),
                     space=Space.paper(), iterations=50, progress=False)
    assert r.algorithm.values.tolist() == ["naive", "oir_b"] and '"alpha": 0.2' in r.attrs["algorithms"]
