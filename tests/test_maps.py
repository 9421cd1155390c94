import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import xarray as xr

import semkit
from semkit import Space, gallery, semantic_map


class Counted:
    """An analytic f that counts the points it evaluates (and can be told to stop)."""

    def __init__(self, stop_after: int | None = None):
        self.points = 0
        self.stop_after = stop_after

    def __call__(self, p: np.ndarray) -> np.ndarray:
        if self.stop_after is not None and self.points >= self.stop_after:
            raise KeyboardInterrupt
        self.points += len(p)
        return analytic(p)


def analytic(p: np.ndarray) -> np.ndarray:
    return (np.sin(np.radians(p[:, 0])) + 1) / 2 * np.exp(-(((p[:, 1] - 20) / 30) ** 2))


def test_grids():
    space = Space.paper()
    g = space.grid(3)
    assert len(g["azimuth"]) == 120 and g["azimuth"][-1] == 357  # the period is never repeated
    assert len(g["elevation"]) == 34 and g["elevation"][[0, -1]].tolist() == [-10, 89]  # the paper's 4080 points
    assert space.grid(5)["elevation"][-1] == 90  # a bound the steps land on is included
    np.testing.assert_array_equal(space.grid(30)["azimuth"], np.arange(0, 360, 30))
    assert space.grid((45, 50))["elevation"].tolist() == [-10, 40, 90]
    assert space.grid({"elevation": 25})["azimuth"][1] == 3  # default 3 degrees for angles
    assert space.grid(10, {"elevation": [0, 35]})["elevation"].tolist() == [0, 35]
    assert len(Space.paper(periodic=False).grid(30)["azimuth"]) == 13  # 0..360 both included
    custom = Space({"distance": (2, 4)})
    assert len(custom.grid()["distance"]) == 31
    with pytest.raises(ValueError, match="one per parameter"):
        space.grid((1, 2, 3))
    with pytest.raises(ValueError, match="positive"):
        space.grid(0)
    with pytest.raises(ValueError, match="elevation=95 is outside"):
        space.grid(None, {"elevation": [95]})
    with pytest.raises(ValueError, match="unknown parameters \\['zoom'\\]"):
        space.grid({"zoom": 1})


def test_analytic_maps_are_exact_in_any_dimension():
    ds = semantic_map(analytic, space=Space.paper(), step=(5, 6), progress=False)
    assert ds.score.dims == ("azimuth", "elevation") and ds.score.shape == (72, 17)
    az, el = np.meshgrid(ds.azimuth, ds.elevation, indexing="ij")
    np.testing.assert_array_equal(ds.score.values, analytic(np.stack([az.ravel(), el.ravel()], 1)).reshape(az.shape))
    assert ds.azimuth.attrs["units"] == "deg" and "top1" not in ds
    assert ds.attrs["function"].endswith("analytic")

    one = semantic_map(lambda p: p[:, 0] / 360, space=Space.paper_1d(), step=45, progress=False)
    assert one.score.dims == ("azimuth",) and float(one.elevation) == 35  # fixed values become scalar coords
    np.testing.assert_allclose(one.score, np.arange(0, 360, 45) / 360)

    space4 = Space({"a": (0, 1), "b": (0, 2), "c": (-1, 1), "d": (0, 1)})
    four = semantic_map(lambda p: p.sum(1), space=space4, step=(0.5, 1, 1, 0.25), chunk_size=7, progress=False)
    assert four.score.shape == (3, 3, 3, 5)
    expected = four.a + four.b + four.c + four.d
    np.testing.assert_allclose(four.score, expected.transpose(*four.score.dims))


def test_real_map_with_a_bundled_network(tmp_path, lite0):
    mesh = gallery.load("coffee_mug")
    f = semkit.SemanticFunction(mesh, lite0, renderer=semkit.Renderer(image_size=96))
    ds = semantic_map(f, step=(90, 50), progress=False)
    assert ds.score.shape == (4, 3) and ds.top1.dtype == np.int64
    assert ((ds.score >= 0) & (ds.score <= 1)).all()
    np.testing.assert_array_equal(ds.correct, ds.top1 == 504)
    assert ds.attrs["label"] == 504 and ds.attrs["label_name"] == "coffee mug"
    assert ds.attrs["network"] == "efficientnet_lite0" and ds.attrs["shape"] == "coffee_mug"
    assert json.loads(ds.attrs["renderer"])["image_size"] == 96
    # the same values as evaluating the points directly
    np.testing.assert_allclose(ds.score.sel(azimuth=90, elevation=40), f([[90, 40]])[0], atol=1e-6)
    for suffix in (".nc", ".zarr"):
        path = tmp_path / f"map{suffix}"
        ds.to_netcdf(path) if suffix == ".nc" else ds.to_zarr(path, consolidated=False)
        back = semkit.open(path)
        xr.testing.assert_identical(back, ds)


def test_store_resumes_after_ctrl_c_computing_only_what_is_missing(tmp_path):
    """The issue's check: a plain callable interrupted half-way recomputes at most 15% of the grid."""
    store = tmp_path / "map.nc"
    n = 72 * 17
    first = Counted(stop_after=n // 2)
    with pytest.raises(KeyboardInterrupt):
        semantic_map(first, space=Space.paper(), step=(5, 6), store=store, progress=False)
    assert not store.exists() and (tmp_path / "map.nc.partial").is_dir()
    second = Counted()
    ds = semantic_map(second, space=Space.paper(), step=(5, 6), store=store, progress=False)
    canary = semkit.function.protocol.PROBES + semkit.function.protocol.GRID_PROBES  # a plain callable's probes, once per call
    assert first.points + second.points <= n + semkit.maps.DEFAULT_CHUNK + 2 * canary  # at most one chunk computed twice
    assert first.points + second.points - n - 2 * canary <= 0.15 * n
    uninterrupted = semantic_map(analytic, space=Space.paper(), step=(5, 6), progress=False)
    np.testing.assert_array_equal(ds.score, uninterrupted.score)
    assert store.exists() and not (tmp_path / "map.nc.partial").exists()
    # a complete store is read back without computing anything but the canary
    third = Counted()
    again = semantic_map(third, space=Space.paper(), step=(5, 6), store=store, progress=False)
    assert third.points == canary
    np.testing.assert_array_equal(again.score, ds.score)


def test_store_survives_a_killed_process(tmp_path):
    """SIGKILL mid-run (no chance to clean up): the rerun loses at most the chunk being computed."""
    store = tmp_path / "map.zarr"
    script = textwrap.dedent(
        f"""
        import time, numpy as np, semkit
        def slow(p):
            time.sleep(0.05)
            return np.cos(np.radians(p[:, 0])) ** 2 * (p[:, 1] + 10) / 100
        semkit.semantic_map(slow, space=semkit.Space.paper(), step=(10, 10), store={str(store)!r}, chunk_size=20, progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    partial = tmp_path / "map.zarr.partial"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(partial.glob("chunk-*.npz"))) < 5:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = len(list(partial.glob("chunk-*.npz")))
    assert 5 <= saved < 396 / 20  # interrupted mid-way
    counter = {"points": 0}

    def g(p):
        counter["points"] += len(p)
        return np.cos(np.radians(p[:, 0])) ** 2 * (p[:, 1] + 10) / 100

    g.__qualname__ = "slow"  # the same function as far as the store is concerned
    g.__module__ = "__main__"
    ds = semantic_map(g, space=Space.paper(), step=(10, 10), store=store, chunk_size=20, progress=False)
    assert counter["points"] <= 36 * 11 - 20 * saved + semkit.function.protocol.PROBES + semkit.function.protocol.GRID_PROBES  # the canary
    az, el = np.meshgrid(ds.azimuth, ds.elevation, indexing="ij")
    np.testing.assert_allclose(ds.score, np.cos(np.radians(az)) ** 2 * (el + 10) / 100)
    assert semkit.open(store).score.shape == (36, 11)


def test_a_store_made_with_other_settings_is_refused(tmp_path):
    store = tmp_path / "map.nc"
    semantic_map(analytic, space=Space.paper(), step=30, store=store, progress=False)
    with pytest.raises(ValueError, match=r"map.nc was made with other settings \(differs in grid.azimuth, grid.elevation\)"):
        semantic_map(analytic, space=Space.paper(), step=45, store=store, progress=False)
    with pytest.raises(ValueError, match="differs in .*space.parameters"):
        semantic_map(analytic, space=Space.paper(periodic=False), step=30, store=store, progress=False)
    # the journal of an unfinished run is protected in the same way
    partial = tmp_path / "other.nc"
    with pytest.raises(KeyboardInterrupt):
        semantic_map(Counted(stop_after=64), space=Space.paper(), step=10, store=partial, progress=False)
    with pytest.raises(ValueError, match="other.nc.partial was made with other settings"):
        semantic_map(analytic, space=Space.paper(), step=20, store=partial, progress=False)
    with pytest.raises(ValueError, match="must be a .nc or .zarr"):
        semantic_map(analytic, space=Space.paper(), step=30, store=tmp_path / "map.csv", progress=False)


def test_bad_functions_are_reported():
    with pytest.raises(ValueError, match="NaN or infinite scores at 8 point"):
        semantic_map(lambda p: np.full(len(p), np.nan), space=Space.paper(), step=90, progress=False)
    with pytest.raises(ValueError, match="returned 1 scores for 8 points"):
        semantic_map(lambda p: np.zeros(1), space=Space.paper(), step=90, progress=False)
    with pytest.raises(ValueError, match="needs a Space"):
        semantic_map(analytic, step=90)


def test_many_maps_stack_by_network_and_shape(tmp_path, monkeypatch):
    shapes = ["coffee_mug", gallery.load("vase")]
    store = tmp_path / "maps.zarr"
    spec = semkit.StudySpec(shapes, ["efficientnet_lite0", "efficientnet_lite1"], semkit.Maps(step=(120, 50)), image_size=64)
    ds = semkit.study(spec, store=store, progress=False)
    assert ds.score.dims == ("network", "shape", "azimuth", "elevation") and ds.score.shape == (2, 2, 3, 3)
    assert ds.network.values.tolist() == ["efficientnet_lite0", "efficientnet_lite1"]
    assert ds.label.values.tolist() == [504, 883] and ds.label_name.values.tolist() == ["coffee mug", "vase"]
    assert "label" not in ds.attrs and "space" in ds.attrs
    assert ds.azimuth.attrs["units"] == "deg" and ds.azimuth.attrs["periodic"] == 1
    by_class = ds.score.groupby("label_name").mean()
    assert set(by_class.label_name.values) == {"coffee mug", "vase"}
    per_network = ds.score.mean(["shape", "azimuth", "elevation"])
    assert per_network.dims == ("network",)
    assert int(ds.done.sum()) == 4 and ds.attrs["computed"] == 4
    evaluated = []
    evaluate = semkit.SemanticFunctions.evaluate
    monkeypatch.setattr(semkit.SemanticFunctions, "evaluate", lambda f, p, k=1, networks=None: evaluated.append(len(p)) or evaluate(f, p, k, networks))
    again = semkit.study(spec, store=store, progress=False)
    assert evaluated == [] and again.attrs["computed"] == 0  # read back from the store, nothing computed
    xr.testing.assert_identical(again.score, ds.score)


def test_a_map_of_several_networks_is_the_stack_of_their_maps(tmp_path):
    """One render per view for all networks, and the same values as each network's own map (same renderer)."""
    renderer = semkit.Renderer(image_size=48)
    networks = [semkit.load_classifier("efficientnet_lite0"), semkit.load_classifier("efficientnet_lite1")]
    fs = semkit.SemanticFunctions(gallery.load("coffee_mug"), networks, renderer=renderer)
    both = semantic_map(fs, step=(45, 25), progress=False, chunk_size=16, store=tmp_path / "mug")
    assert both.score.dims == ("network", "azimuth", "elevation") and both.score.shape == (2, 8, 5)
    assert fs.renders == 40 and fs.queries == 80  # 40 views rendered once, classified by both networks
    assert sorted(p.name for p in (tmp_path / "mug").iterdir()) == ["efficientnet_lite0.nc", "efficientnet_lite1.nc"]
    for c in networks:
        alone = semantic_map(semkit.SemanticFunction(gallery.load("coffee_mug"), c, renderer=renderer), step=(45, 25), progress=False)
        mine = both.sel(network=c.name)
        np.testing.assert_allclose(mine.score.values, alone.score.values, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(mine.top1.values, alone.top1.values)
        assert mine.label == alone.label and json.loads(mine.attrs["renderer"]) == json.loads(alone.attrs["renderer"])
        xr.testing.assert_identical(semkit.open(tmp_path / "mug" / f"{c.name}.nc").score, both.score.sel(network=c.name, drop=True))
    again = semkit.SemanticFunctions(gallery.load("coffee_mug"), networks, renderer=renderer)
    xr.testing.assert_identical(semantic_map(again, step=(45, 25), progress=False, store=tmp_path / "mug").score, both.score)
    assert again.renders == 0  # read back from the stores


def test_each_network_of_an_adaptive_map_is_refined_as_if_mapped_alone():
    """Each network's map is its map alone (evaluated where it needs it); the views they share are rendered once."""
    renderer = semkit.Renderer(image_size=48)
    networks = ["efficientnet_lite0", "efficientnet_lite1"]
    mug = gallery.load("coffee_mug")
    fs = semkit.SemanticFunctions(mug, networks, renderer=renderer)
    both = semantic_map(fs, step=(15, 10), adaptive=True, max_error=0.1, progress=False)
    evaluated = []
    for name in networks:
        alone = semantic_map(semkit.SemanticFunction(mug, name, renderer=renderer), step=(15, 10), adaptive=True, max_error=0.1,
                             progress=False)
        mine = both.sel(network=name)
        np.testing.assert_array_equal(mine.evaluated.values, alone.evaluated.values)
        np.testing.assert_allclose(mine.score.values, alone.score.values, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(mine.top1.values, alone.top1.values)
        assert fs[name].queries == int(alone.evaluated.sum())  # each network classifies only the points it asked for
        evaluated.append(alone.evaluated.values)
    union = np.logical_or(*evaluated)
    assert (evaluated[0] != evaluated[1]).any()  # the networks need different points ...
    # ... and share the renders of the views both ask for in the same round (a view one reaches a round later is rendered again)
    assert union.sum() <= fs.renders < 1.1 * union.sum() < evaluated[0].sum() + evaluated[1].sum()


def test_an_interrupted_adaptive_map_of_several_networks_resumes_each_network(tmp_path, monkeypatch):
    """Each network resumes from its own saved points to its uninterrupted map; a complete store is not evaluated."""
    renderer = semkit.Renderer(image_size=48)
    networks = ["efficientnet_lite0", "efficientnet_lite1"]
    mug = gallery.load("coffee_mug")
    kw = dict(step=(30, 10), adaptive=True, max_error=0.1, chunk_size=16, progress=False)
    whole = semantic_map(semkit.SemanticFunctions(mug, networks, renderer=renderer), **kw)
    calls = []
    evaluate_each = semkit.SemanticFunctions.evaluate_each

    def interrupted(f, points, k=1):
        calls.append(1)
        if len(calls) > 6:
            raise KeyboardInterrupt
        return evaluate_each(f, points, k)

    first = semkit.SemanticFunctions(mug, networks, renderer=renderer)
    with monkeypatch.context() as m:
        m.setattr(semkit.SemanticFunctions, "evaluate_each", interrupted)
        with pytest.raises(KeyboardInterrupt):
            semantic_map(first, store=tmp_path / "mug", **kw)
    second = semkit.SemanticFunctions(mug, networks, renderer=renderer)
    ds = semantic_map(second, store=tmp_path / "mug", **kw)
    np.testing.assert_array_equal(ds.evaluated.values, whole.evaluated.values)  # the same path
    np.testing.assert_allclose(ds.score.values, whole.score.values, rtol=1e-6, atol=1e-7)
    for name in networks:  # nothing classified twice
        assert first[name].queries + second[name].queries == int(whole.evaluated.sel(network=name).sum())
    (tmp_path / "mug" / "efficientnet_lite1.nc").unlink()
    third = semkit.SemanticFunctions(mug, networks, renderer=renderer)
    again = semantic_map(third, store=tmp_path / "mug", **kw)
    xr.testing.assert_allclose(again.score, whole.score, rtol=1e-6, atol=1e-7)
    lite1 = int(whole.evaluated.sel(network="efficientnet_lite1").sum())
    assert third["efficientnet_lite0"].queries == 0 and third["efficientnet_lite1"].queries == third.renders == lite1
