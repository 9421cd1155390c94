"""Verified boxes: max_queries bounds everything, a box that grew is certified, a failing start has no box,
the result names its criterion, and the algorithm's options are validated and described."""

import warnings

import numpy as np
import pytest

import semkit
from semkit import Criterion
from semkit.space import Space
from semkit.store import read_dataset
from semkit.studies.stacking import stack
from semkit.trust import Guarantee, Verified, robustness_radius

SPACE = Space.paper()
SPACE_3D = Space({"azimuth": (0, 360), "elevation": (-10, 90), "distance": (1.5, 4.0)}, periodic=["azimuth"])


def everywhere(points):
    return np.full(len(np.atleast_2d(points)), 0.9)


def nowhere(points):
    return np.full(len(np.atleast_2d(points)), 0.1)


def cube(lo, hi):
    def f(points):
        p = np.atleast_2d(points)
        return np.where(((p >= lo) & (p <= hi)).all(1), 0.9, 0.1)

    return f


def verified(f, starts, space=SPACE, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        regions = semkit.find_regions(f, starts, Verified(**options), space=space, criterion="score >= 0.5", progress=False)
    return regions.sel(algorithm="verified")


@pytest.mark.parametrize("step, certificate", [(2, "sampled"), (1, "sampled"), (2, "lattice")])
def test_a_function_passing_everywhere_grows_a_large_certified_box_within_max_queries(step, certificate):
    boxes = verified(everywhere, [[100.0, 40.0]], step=step, certificate=certificate)
    volume = float(semkit.regions.volume_ratio(boxes, space=SPACE)[0])
    assert int(boxes.queries[0]) <= 5000 and float(boxes.certified[0]) == 1
    assert volume >= (0.9 if certificate == "sampled" else 0.4), volume  # measured 0.99, 1.0 (sampled), 0.51 (lattice)


@pytest.mark.parametrize("max_queries", [600, 1000, 2500])
def test_no_start_asks_for_more_than_max_queries_and_a_box_that_grew_is_kept(max_queries):
    for f, space, start in [(everywhere, SPACE, [100.0, 40.0]),
                            (cube(np.array([100.0, 10, 2]), np.array([160.0, 50, 3])), SPACE_3D, [130.0, 30, 2.5])]:
        boxes = verified(f, [start], space=space, max_queries=max_queries, max_failure=0.02)
        assert int(boxes.queries[0]) <= max_queries
        assert float(boxes.certified[0]) == 1 and float(semkit.regions.volume_ratio(boxes, space=space)[0]) > 0


def test_a_3d_cube_grown_from_its_centre_is_found_within_5000_queries():
    lo, hi = np.array([100.0, 10, 2]), np.array([160.0, 50, 3])
    boxes = verified(cube(lo, hi), [(lo + hi) / 2], space=SPACE_3D)
    a, b = boxes.lower.values[0], boxes.upper.values[0]
    inside = np.prod(np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0, None))
    assert inside / np.prod(hi - lo) >= 0.9 and inside / np.prod(b - a) >= 0.99  # measured 0.99 of the cube, 1.0
    assert int(boxes.queries[0]) <= 5000 and float(boxes.certified[0]) == 1


def test_failing_starts_have_no_box_and_are_named():
    rng = np.random.default_rng(0)
    starts = rng.uniform([0, -10], [360, 90], (6, 2))
    with pytest.warns(UserWarning, match=r"6 start\(s\) \(\[0, 1, 2, 3, 4, 5\]\) fail the criterion score >= 0.5"):
        boxes = semkit.find_regions(nowhere, starts, Verified(), space=SPACE, criterion="score >= 0.5",
                                    progress=False).sel(algorithm="verified")
    assert np.isnan(boxes.lower).all() and np.isnan(boxes.upper).all()
    assert (boxes.certified == 0).all() and (boxes.start_passes == 0).all()
    noise = lambda p: np.random.default_rng(int(np.atleast_2d(p)[0, 0] * 1000)).random(len(p))  # noqa: E731
    boxes = verified(noise, starts)
    passing = boxes.start_passes.values == 1
    assert 0 < passing.sum() < len(starts)  # certified boxes are counted for passing starts only
    np.testing.assert_array_equal(boxes.certified.values == 1, passing)
    assert np.isnan(boxes.lower.values[~passing]).all() and not np.isnan(boxes.lower.values[passing]).any()


def test_verified_regions_name_their_criterion_in_memory_from_a_store_and_in_a_stack(tmp_path):
    f = cube(np.array([80.0, 0]), np.array([140.0, 60]))
    def grow():
        return semkit.find_regions(f, [[110.0, 30.0]], Verified(step=5), space=SPACE, criterion="score >= 0.4",
                                   store=tmp_path / "v.nc", key="cube", progress=False)

    boxes = grow()
    assert boxes.semkit.criterion == Criterion.score(0.4)
    again = grow()  # read back from the store
    assert again.attrs["fingerprint"] == boxes.attrs["fingerprint"] and again.semkit.criterion == Criterion.score(0.4)
    assert read_dataset(tmp_path / "v.nc").semkit.criterion == Criterion.score(0.4)
    assert stack([[boxes], [again]], ["a", "b"], ["cube"]).semkit.criterion == Criterion.score(0.4)
    paper = semkit.find_regions(f, [[110.0, 30.0]], ("naive",), space=SPACE, iterations=2, progress=False)
    assert paper.semkit.criterion is None  # the paper's algorithms judge no criterion


def test_the_algorithm_validates_describes_and_repeats_itself():
    for options, match in [({"max_failure": "0.05"}, "max_failure must be a number"),
                           ({"confidence": None}, "confidence must be a number"),
                           ({"max_queries": -5}, "max_queries must be a whole number"),
                           ({"n_samples": 0}, "n_samples must be a whole number"),
                           ({"attempts": 1.5}, "attempts must be a whole number"),
                           ({"random_state": "seven"}, "random_state"),
                           ({"growth": "grid"}, "unknown growth"),
                           ({"max_queries": 100}, "max_queries=100 is too small")]:
        with pytest.raises((ValueError, TypeError), match=match):  # TypeError: text or None, no number at all
            Verified(**options)
    with pytest.raises(TypeError):
        Verified(threshold=0.5)  # criterion= only
    algorithm = Verified(max_failure=0.02, criterion="score >= 0.5", step=[3, 2])
    assert repr(algorithm) == "Verified(criterion='score >= 0.5', step=[3.0, 2.0], max_failure=0.02)"
    assert repr(Verified()) == "Verified()"
    params = algorithm.get_params()
    assert Verified(**params).get_params() == params and algorithm.describe()["name"] == "verified"
    assert {k: algorithm.describe()[k] for k in params} == params
    f = cube(np.array([80.0, 0]), np.array([140.0, 60]))
    runs = [semkit.find_regions(f, [[110.0, 30.0]], (Verified(criterion="score >= 0.5", random_state=state),),
                                space=SPACE, progress=False) for state in (3, 3, np.random.default_rng(3))]
    np.testing.assert_array_equal(runs[0].lower, runs[1].lower)
    np.testing.assert_array_equal(runs[0].check_n_samples, runs[1].check_n_samples)


def test_robustness_radius_takes_a_guarantee_and_a_random_state():
    f = cube(np.array([80.0, 0]), np.array([140.0, 60]))
    strict = robustness_radius(f, [[110.0, 30.0]], space=SPACE, criterion="score >= 0.5", step=3, max_steps=4,
                               guarantee=Guarantee(confidence=0.99, max_failure=0.05), random_state=1, progress=False)
    assert strict.attrs["confidence"] == 0.99 and strict.attrs["max_failure"] == 0.05 and int(strict.radius_steps[0]) == 4
    with pytest.raises(TypeError, match="guarantee must be a semkit.trust.Guarantee"):
        robustness_radius(f, [[110.0, 30.0]], space=SPACE, criterion="score >= 0.5", guarantee=0.95)
    with pytest.raises(TypeError, match="max_failure must be a number"):
        Guarantee(max_failure="0.05")
