import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import semkit
from semkit import Space, gallery, plot, semantic_map


@pytest.fixture(scope="module")
def mug_map(lite0):
    f = semkit.SemanticFunction(gallery.load("coffee_mug"), lite0, renderer=semkit.Renderer(image_size=64))
    return f, semantic_map(f, step=(45, 25), progress=False)


@pytest.fixture(scope="module")
def stacked():
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {"score": (("network", "shape", "azimuth", "elevation"), rng.uniform(size=(2, 3, 8, 5)))},
        coords={
            "network": ["a", "b"], "shape": ["s1", "s2", "s3"],
            "azimuth": ("azimuth", np.arange(0, 360, 45.0), {"units": "deg", "periodic": 1}),
            "elevation": ("elevation", np.arange(-10, 90, 20.0), {"units": "deg"}),
            "label_name": ("shape", ["vase", "vase", "vase"]),
        },
    )
    return ds


def test_heatmap_is_labelled_like_a_figure_of_the_paper(mug_map):
    _, ds = mug_map
    fig, ax = plt.subplots()
    assert plot.heatmap(ds, ax=ax, show_correct=True) is ax
    assert ax.get_xlabel() == "azimuth (deg)" and ax.get_ylabel() == "elevation (deg)"
    assert ax.get_title() == "efficientnet_lite0 on coffee_mug"
    colorbar = fig.axes[1]
    assert colorbar.get_ylabel() == "P(coffee mug)"
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(5, 8), ds.score.transpose("elevation", "azimuth"))
    plt.close(fig)


def test_averaged_maps_say_what_they_average(stacked):
    fig, ax = plt.subplots()
    plot.heatmap(stacked.sel(network="a").mean("shape", keep_attrs=True), ax=ax)
    assert ax.get_title() == "a on mean over shapes"
    with pytest.raises(ValueError, match="needs a 2-D map over \\(azimuth, elevation\\)"):
        plot.heatmap(stacked, ax=ax)
    plt.close(fig)


def test_curves_one_line_per_network(stacked):
    fig, ax = plt.subplots()
    one_d = stacked.sel(shape="s1", elevation=30)
    assert plot.curve(one_d, hue="network", ax=ax) is ax
    assert len(ax.get_lines()) == 2 and ax.get_legend().get_title().get_text().startswith("network")
    assert ax.get_xlabel() == "azimuth (deg)" and ax.get_ylabel() == "P(vase)" and ax.get_xlim() == (0, 360)
    with pytest.raises(ValueError, match="needs a 1-D map"):
        plot.curve(stacked, ax=ax)
    plt.close(fig)


def test_curve_marks_correct_points(lite0):
    f = semkit.SemanticFunction(gallery.load("table_lamp"), lite0, space=Space.paper_1d(), renderer=semkit.Renderer(image_size=64))
    ds = semantic_map(f, step=60, progress=False)
    fig, ax = plt.subplots()
    plot.curve(ds, ax=ax)
    line, dots = ax.get_lines()
    assert len(dots.get_xdata()) == int(ds.correct.sum())
    assert "efficientnet_lite0 on table_lamp" == ax.get_title()
    plt.close(fig)


def test_polar(stacked):
    fig, ax = plt.subplots(subplot_kw={"projection": "polar"})
    assert plot.polar(stacked.sel(network="a", elevation=30), hue="shape", ax=ax) is ax
    assert len(ax.get_lines()) == 3
    plt.close(fig)
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="polar axes"):
        plot.polar(stacked.sel(network="a", shape="s1", elevation=30), ax=ax)
    plt.close(fig)


def test_render_strip_shows_a_row_of_the_map(mug_map):
    f, ds = mug_map
    fig, ax = plt.subplots()
    assert plot.render_strip(f, ds.sel(elevation=15), ax=ax, size=48) is ax
    image = ax.get_images()[0].get_array()
    assert image.shape == (48, 48 * 8, 3)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].startswith("0°, 15°\n") and "P=" in labels[0]
    with pytest.raises(ValueError, match="1-D slice"):
        plot.render_strip(f, ds, ax=ax)
    plt.close(fig)


def _bump(p):
    d = np.angle(np.exp(1j * np.radians(p[:, 0])))
    return np.exp(-((d / np.radians(40)) ** 2)) * np.exp(-(((p[:, 1] - 30) / 25) ** 2))


def test_regions_on_a_map_traces_and_losses():
    from matplotlib.patches import Rectangle

    m = semantic_map(_bump, space=Space.paper(), step=10, progress=False)
    r = semkit.find_regions(semkit.interpolate(m), [[350, 30], [90, 20]], iterations=300, progress=False)
    fig, ax = plt.subplots()
    assert plot.regions(r, m, ax=ax) is ax
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    crossing = int((r.upper.sel(param="azimuth") > 360).sum())
    assert crossing == 3  # every box from 350 crosses 0 ...
    assert len(rects) == 2 * 3 + crossing  # ... and is drawn in two pieces
    assert all(0 <= p.get_x() and p.get_x() + p.get_width() <= 360 + 1e-9 for p in rects)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["naive", "OIR_B", "OIR_W", "start"]
    assert ax.get_xlabel() == "azimuth (deg)"
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2)
    assert plot.traces(r, start=0, param="elevation", ax=a1) is a1
    assert a1.get_ylabel() == "elevation (deg)" and len(a1.lines) == 6
    assert plot.loss_traces(r, start=1, ax=a2) is a2 and len(a2.lines) == 3
    plt.close(fig)


def test_regions_on_a_curve():
    space = Space.paper_1d()
    curve = semantic_map(lambda p: _bump(np.c_[p, np.full(len(p), 30.0)]), space=space, step=5, progress=False)
    r = semkit.find_regions(semkit.interpolate(curve), [[10.0]], ("naive", "oir_b"), iterations=300, progress=False)
    fig, ax = plt.subplots()
    assert plot.regions(r, curve, ax=ax) is ax
    bars = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_ydata()[0] < 0]
    assert len(bars) >= 2
    plt.close(fig)


def test_the_correct_region_is_outlined_along_cell_edges():
    from matplotlib.collections import LineCollection

    import semkit

    m = semkit.semantic_map(lambda p: np.cos(np.radians(p[:, 0])) * 0.5 + 0.5, space=semkit.Space.paper(), step=(30, 20), progress=False)
    m["correct"] = m.score > 0.8  # azimuth 330..30, every elevation: across the period's seam
    ax = plot.heatmap(m, show_correct=True)
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1
    points = np.concatenate(lines[0].get_segments())
    x_edges = np.arange(-15, 360, 30)  # half-way between grid points
    y_edges = np.r_[m.elevation.values - 10, m.elevation.values[-1] + 10]
    assert np.isin(points[:, 0], x_edges).all() and np.isin(points[:, 1], y_edges).all()  # no diagonals, no centres
    # the region's sides at azimuth 45 and 315, and no edge on the seam (-15 / 345), where both sides are correct
    vertical = [s for s in lines[0].get_segments() if s[0][0] == s[1][0]]
    assert {s[0][0] for s in vertical} == {45.0, 315.0}
    plt.close("all")
