import numpy as np
import pytest
import xarray as xr

from semkit import Space
from semkit.space import Parameter


def test_paper_space():
    space = Space.paper()
    assert space.names == ("azimuth", "elevation")
    assert space.units == {"azimuth": "deg", "elevation": "deg"}
    assert list(space.periodic) == [True, False]
    np.testing.assert_array_equal(space.lower, [0, -10])
    np.testing.assert_array_equal(space.upper, [360, 90])
    assert space.volume == 36000
    assert not Space.paper(periodic=False).periodic.any()


def test_paper_1d_space_fixes_elevation():
    space = Space.paper_1d()
    assert space.names == ("azimuth",)
    assert space.fixed == {"elevation": 35.0}
    named = space.named(space.points([10.0, 20.0]))
    np.testing.assert_array_equal(named["azimuth"], [10, 20])
    np.testing.assert_array_equal(named["elevation"], [35, 35])


def test_periodic_values_wrap():
    space = Space.paper()
    np.testing.assert_allclose(space.points([[370, 10], [-30, 0], [360, 90]]), [[10, 10], [330, 0], [0, 90]])


def test_out_of_range_names_the_parameter():
    with pytest.raises(ValueError, match=r"elevation=95 is outside its range \[-10, 90\] deg"):
        Space.paper().points([[10, 95]])
    with pytest.raises(ValueError, match="azimuth=400 is outside"):
        Space.paper(periodic=False).points([[400, 10]])


def test_nan_and_inf_are_rejected():
    with pytest.raises(ValueError, match="elevation has 1 NaN"):
        Space.paper().points([[10, 20], [10, np.nan]])
    with pytest.raises(ValueError, match="azimuth has 1 NaN or infinite"):
        Space.paper().points([[np.inf, 20]])


def test_named_inputs_broadcast_and_are_ordered():
    space = Space.paper()
    expected = [[1, 5], [2, 5]]
    np.testing.assert_array_equal(space.points(elevation=5, azimuth=[1, 2]), expected)
    np.testing.assert_array_equal(space.points({"azimuth": [1, 2], "elevation": 5}), expected)
    ds = xr.Dataset({"azimuth": ("p", [1.0, 2.0]), "elevation": ("p", [5.0, 5.0])})
    np.testing.assert_array_equal(space.points(ds), expected)


def test_named_input_errors():
    space = Space.paper()
    with pytest.raises(ValueError, match="missing values for parameters \\['elevation'\\]"):
        space.points(azimuth=[1, 2])
    with pytest.raises(ValueError, match="unknown parameters \\['zoom'\\]"):
        space.points(azimuth=1, elevation=2, zoom=3)
    with pytest.raises(ValueError, match=r"shape \[B, 2\]"):
        space.points(np.zeros((3, 3)))


def test_single_point_and_1d_arrays():
    assert Space.paper().points([10, 20]).shape == (1, 2)
    assert Space.paper_1d().points([10, 20, 30]).shape == (3, 1)


def test_custom_space_from_bounds():
    space = Space({"azimuth": (0, 360), "distance": (2, 4), "x": (-1, 1)}, periodic=["azimuth"])
    assert space.units == {"azimuth": "deg", "distance": "scene units", "x": ""}
    assert space["distance"].low == 2
    with pytest.raises(KeyError, match="no parameter 'y'"):
        space["y"]
    assert Space.from_dict(space.to_dict()) == space
    assert hash(space) == hash(Space.from_dict(space.to_dict()))


def test_invalid_spaces():
    with pytest.raises(ValueError, match="low < high"):
        Parameter("a", 1, 1)
    with pytest.raises(ValueError, match="duplicate"):
        Space([Parameter("a", 0, 1), Parameter("a", 0, 2)])
    with pytest.raises(ValueError, match="both free and fixed"):
        Space({"azimuth": (0, 360)}, fixed={"azimuth": 3})


def test_space_owns_grids_lattices_and_the_circle():
    space = Space.of("azimuth", "roll", "distance")
    grid = space.grid({"azimuth": 90, "roll": 120})
    assert grid["azimuth"].tolist() == [0, 90, 180, 270] and grid["roll"].tolist() == [-180, -60, 60]
    assert len(grid["distance"]) == 31  # 1/30 of the range unless given
    assert space.closes_circle("azimuth", grid["azimuth"]) and space.closes_circle("roll", grid["roll"])
    assert not space.closes_circle("azimuth", [0, 90, 180]) and not space.closes_circle("distance", grid["distance"])
    # a roll box crossing its period (-180 = 180) splits into pieces inside [-180, 180)
    assert space.pieces("roll", 150.0, 200.0) == [(150.0, 180.0), (-180.0, -160.0)]
    assert space.pieces("roll", -10.0, 400.0) == [(-180.0, 180.0)] and space.pieces("distance", 2.0, 3.0) == [(2.0, 3.0)]
    points = space.lattice([0.0, 170.0, 5.9], [10.0, 20.0, 0.1], [[0, 1, 0], [0, 0, 2], [-1, -1, 0]])
    assert space.contains(points).tolist() == [True, False, True]  # distance 6.1 leaves the Space, angles wrap
    np.testing.assert_allclose(space.clip(points), [[0, -170, 5.9], [0, 170, 6.0], [350, 150, 5.9]])
    assert space.in_box([[355.0, 0.0, 3.0]], [350.0, -10.0, 2.0], [370.0, 10.0, 4.0]).tolist() == [True]
