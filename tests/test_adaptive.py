"""Adaptive maps: fewer queries than the dense map, the same grid, errors within max_error's reach."""

import numpy as np
import pytest
import xarray as xr

import semkit
from semkit import Maps, Renderer, SemanticFunction, Space, gallery, semantic_map, study
from semkit.maps import DEFAULT_MAX_ERROR


class Counted:
    """An analytic f that counts its points (and can be told to stop, as Ctrl-C would)."""

    def __init__(self, fn, stop_after: int | None = None):
        self.fn, self.points, self.stop_after = fn, 0, stop_after
        self.__qualname__ = fn.__qualname__

    def __call__(self, p: np.ndarray) -> np.ndarray:
        if self.stop_after is not None and self.points >= self.stop_after:
            raise KeyboardInterrupt
        self.points += len(p)
        return self.fn(p)


def band(p: np.ndarray) -> np.ndarray:
    """Flat almost everywhere, a steep band whose elevation follows the azimuth."""
    return 1 / (1 + np.exp(-(p[:, 1] - 20 - 10 * np.sin(np.radians(p[:, 0]))) / 3))


def test_an_adaptive_map_spends_its_queries_where_the_map_changes():
    dense = semantic_map(band, space=Space.paper(), step=3, progress=False)
    f = Counted(band)
    ds = semantic_map(f, space=Space.paper(), step=3, adaptive=True, progress=False)
    assert ds.score.dims == dense.score.dims and ds.score.shape == (120, 34)
    assert ds.evaluated.dtype == bool and int(ds.evaluated.sum()) == f.points  # each point evaluated once
    assert f.points < 0.2 * dense.score.size
    assert ds.attrs["max_error"] == DEFAULT_MAX_ERROR
    err = np.abs(ds.score - dense.score)
    assert float(err.where(ds.evaluated).max()) == 0  # computed points are exact
    assert float(err.mean()) < 0.002 and float(err.max()) < 0.05
    # the band is steep along the elevation and moves slowly with the azimuth: cells are split along the
    # elevation only, so every 4th azimuth has the band at every grid point and the azimuths between interpolate
    steep = np.abs(dense.score.differentiate("elevation")) > 0.05
    assert float(ds.evaluated.where(steep).isel(azimuth=slice(0, None, 4)).mean()) == 1
    assert float(ds.evaluated.where(steep).mean()) < 0.5 and float(err.where(steep).max()) < 0.01
    flat = np.abs(dense.score - 0.5) > 0.499
    assert float(ds.evaluated.where(flat).mean()) < 0.15
    # a flat function costs only the two coarsest grids (strides 8 and 4): azimuth 30 x elevation 10
    constant = Counted(lambda p: np.full(len(p), 0.25))
    flat_map = semantic_map(constant, space=Space.paper(), step=3, adaptive=True, progress=False)
    assert constant.points == 30 * 10 and float(np.abs(flat_map.score - 0.25).max()) < 1e-12
    # a smaller max_error evaluates more
    tight = Counted(band)
    semantic_map(tight, space=Space.paper(), step=3, adaptive=True, max_error=DEFAULT_MAX_ERROR / 10, progress=False)
    assert tight.points > f.points


def test_periodic_parameters_wrap_and_any_grid_length_works():
    def spike(p):  # a narrow bump across the period's seam (azimuth 356..4)
        d = np.minimum(p[:, 0], 360 - p[:, 0])
        return np.exp(-((d / 4) ** 2)) * 0.8

    for step in (3, 7):  # 7 degrees does not divide 360: the last cell (357 -> 360) is short
        dense = semantic_map(spike, space=Space.paper(), step=step, progress=False)
        f = Counted(spike)
        ds = semantic_map(f, space=Space.paper(), step=step, adaptive=True, progress=False)
        assert f.points < dense.score.size
        np.testing.assert_allclose(ds.score, dense.score, atol=0.05)
        near = np.minimum(ds.azimuth, 360 - ds.azimuth) <= 8
        assert bool(ds.evaluated.isel(elevation=0).where(near, True).all())  # the seam is resolved along the azimuth
        assert float(ds.evaluated.sel(azimuth=0).mean()) < 0.5  # not along the elevation, where nothing changes


def test_adaptive_maps_in_three_dimensions():
    space = Space({"a": (0, 1), "b": (0, 2), "turn": (0, 360)}, periodic=["turn"])

    def g(p):
        return 1 / (1 + np.exp(-(p[:, 0] - 0.5 - 0.1 * p[:, 1] * np.cos(np.radians(p[:, 2]))) / 0.04))

    dense = semantic_map(g, space=space, step=(0.05, 0.1, 15), progress=False)
    f = Counted(g)
    ds = semantic_map(f, space=space, step=(0.05, 0.1, 15), adaptive=True, progress=False)
    assert ds.score.dims == ("a", "b", "turn") and ds.score.shape == (21, 21, 24)
    assert int(ds.evaluated.sum()) == f.points < 0.25 * dense.score.size  # the sigmoid varies along "a" mostly
    assert float(np.abs(ds.score - dense.score).mean()) < 0.005


def test_an_interrupted_adaptive_map_resumes_to_the_same_result(tmp_path):
    store = tmp_path / "map.nc"
    whole = Counted(band)
    uninterrupted = semantic_map(whole, space=Space.paper(), step=3, adaptive=True, chunk_size=50, progress=False)
    first = Counted(band, stop_after=whole.points // 2)
    with pytest.raises(KeyboardInterrupt):
        semantic_map(first, space=Space.paper(), step=3, adaptive=True, store=store, key="band", chunk_size=50, progress=False)
    assert not store.exists()
    second = Counted(band)
    ds = semantic_map(second, space=Space.paper(), step=3, adaptive=True, store=store, key="band", chunk_size=50, progress=False)
    assert first.points + second.points == whole.points  # nothing evaluated twice
    xr.testing.assert_identical(ds.drop_attrs(), uninterrupted.drop_attrs())
    assert semkit.open(store).evaluated.dtype == bool
    # read back without evaluating; other settings are refused
    again = Counted(band)
    semantic_map(again, space=Space.paper(), step=3, adaptive=True, store=store, key="band", progress=False)
    assert again.points == 0
    with pytest.raises(ValueError, match="differs in adaptive"):
        semantic_map(band, space=Space.paper(), step=3, adaptive=True, max_error=2 * DEFAULT_MAX_ERROR, store=store, key="band",
                     progress=False)
    with pytest.raises(ValueError, match="differs in adaptive"):
        semantic_map(band, space=Space.paper(), step=3, store=store, key="band", progress=False)
    with pytest.raises(ValueError, match="pass adaptive=True"):
        semantic_map(band, space=Space.paper(), step=3, max_error=0.05, progress=False)
    with pytest.raises(ValueError, match="max_error must be a positive"):
        semantic_map(band, space=Space.paper(), step=3, adaptive=True, max_error=0, progress=False)


def noisy_band(p: np.ndarray) -> np.ndarray:
    """The band with 10% pseudo-random noise, rough like a real network's map."""
    noise = np.modf(np.abs(np.sin(p[:, 0] * 12.9898 + p[:, 1] * 78.233)) * 43758.5453)[0]
    return band(p) * (0.9 + 0.1 * noise)


def test_an_adaptive_map_resumes_to_the_same_result_from_any_point(tmp_path):
    whole = Counted(noisy_band)
    uninterrupted = semantic_map(whole, space=Space.paper(), step=3, adaptive=True, chunk_size=50, progress=False)
    for stop in np.linspace(50, whole.points - 50, 6).astype(int):
        store = tmp_path / f"map{stop}.nc"
        first = Counted(noisy_band, stop_after=stop)
        with pytest.raises(KeyboardInterrupt):
            semantic_map(first, space=Space.paper(), step=3, adaptive=True, store=store, key="band", chunk_size=50, progress=False)
        second = Counted(noisy_band)
        ds = semantic_map(second, space=Space.paper(), step=3, adaptive=True, store=store, key="band", chunk_size=50, progress=False)
        assert first.points + second.points == whole.points  # the saved points steer nothing ahead of time
        xr.testing.assert_identical(ds.drop_attrs(), uninterrupted.drop_attrs())


def test_an_adaptive_map_of_a_real_network(lite0):
    f = SemanticFunction(gallery.load("coffee_mug"), lite0, renderer=Renderer(image_size=48))
    ds = semantic_map(f, step=(9, 10), adaptive=True, progress=False)
    assert f.queries == int(ds.evaluated.sum()) < ds.score.size
    np.testing.assert_array_equal(ds.correct, ds.top1 == 504)
    dense = semantic_map(f, step=(9, 10), progress=False)
    assert f.cache_hits == int(ds.evaluated.sum())  # the dense map reused every evaluated point
    assert f.queries == dense.score.size
    xr.testing.assert_equal(ds.score.where(ds.evaluated), dense.score.where(ds.evaluated))
    assert float(np.abs(ds.score - dense.score).mean()) < 0.02
    assert float((ds.correct == dense.correct).mean()) > 0.95


def test_stacked_adaptive_maps(tmp_path):
    kw = dict(kind=Maps(step=(10, 10), adaptive=True, max_error=0.05), image_size=48, progress=False)
    ds = study(["coffee_mug", "vase"], ["efficientnet_lite0"], store=tmp_path / "maps.zarr", **kw)
    assert ds.evaluated.dims == ("network", "shape", "azimuth", "elevation")
    assert ds.attrs["max_error"] == 0.05 and not bool(ds.evaluated.all())
    again = study(["coffee_mug", "vase"], ["efficientnet_lite0"], store=tmp_path / "maps.zarr", **kw)
    xr.testing.assert_identical(again.evaluated, ds.evaluated)
