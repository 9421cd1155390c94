"""Names and call styles users already have keep working, each with a DeprecationWarning naming the new one."""

import numpy as np
import pytest

import semkit
from semkit import plot, trust

SPACE = semkit.Space.paper()


def bump(p):
    p = np.atleast_2d(p)
    return np.exp(-((p[:, 0] - 180) ** 2 + (p[:, 1] - 40) ** 2) / 2000)


def test_space_and_iterations_by_position_still_work():
    with pytest.warns(DeprecationWarning, match="pass space=, iterations= by keyword"):
        old = semkit.find_regions(bump, [[180, 40]], ("naive",), SPACE, 50, progress=False)
    new = semkit.find_regions(bump, [[180, 40]], ("naive",), space=SPACE, iterations=50, progress=False)
    np.testing.assert_array_equal(old.lower.values, new.lower.values)
    with pytest.warns(DeprecationWarning, match="pass space=, step= by keyword"):
        m = semkit.semantic_map(bump, SPACE, 30, progress=False)
    assert m.score.shape == (12, 4)
    with pytest.warns(DeprecationWarning, match="by keyword"):
        assert semkit.srvr(new, SPACE).shape == semkit.srvr(new, space=SPACE).shape
    with pytest.raises(TypeError, match="multiple values"):
        semkit.semantic_map(bump, SPACE, space=SPACE)


def test_old_keyword_names_still_work():
    with pytest.warns(DeprecationWarning, match=r"find_regions\(tol=...\) is now find_regions\(tolerance=...\)"):
        semkit.find_regions(bump, [[180, 40]], ("naive",), space=SPACE, iterations=20, tol=1e-6, progress=False)
    with pytest.warns(DeprecationWarning, match="resolution"):
        old = trust.robustness_radius(bump, [[180, 40]], space=SPACE, threshold=0.5, resolution=6, max_steps=3,
                                      certificate="lattice", progress=False)
    new = trust.robustness_radius(bump, [[180, 40]], space=SPACE, threshold=0.5, step=6, max_steps=3,
                                  certificate="lattice", progress=False)
    np.testing.assert_array_equal(old.steps.values, new.steps.values)
    with pytest.raises(TypeError, match="pass step= only"):
        trust.robustness_radius(bump, [[180, 40]], space=SPACE, threshold=0.5, step=6, resolution=6)


def test_figure_makers_under_their_old_names(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    m = semkit.semantic_map(bump, space=SPACE, step=30, progress=False)
    with pytest.warns(DeprecationWarning, match="facets is now facets_figure"):
        fig = plot.facets({"a": m, "b": m}, plot.heatmap)
    assert len(fig.axes) >= 2
    assert "facets" not in plot.__all__ and "facets_figure" in plot.__all__


def test_the_warning_points_at_the_callers_line():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        semkit.find_regions(bump, [[180, 40]], ("naive",), SPACE, 5, tol=1e-6, progress=False)  # two shims stacked
    assert len(caught) == 2 and all(w.filename == __file__ for w in caught)
