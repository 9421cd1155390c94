"""The query cache: a point asked for again is neither rendered nor classified, nor counted as a query."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from semkit import Renderer, SemanticFunction, gallery
from semkit.function.cache import QueryCache

POINTS = np.array([[0.0, 30.0], [45.0, 10.0], [130.0, 30.0], [200.0, 15.0], [310.0, 50.0]])


@pytest.fixture(scope="module")
def mug():
    return gallery.load("coffee_mug")


def small(mug, lite0, **kw):
    return SemanticFunction(mug, lite0, renderer=Renderer(image_size=48), **kw)


def test_a_point_asked_again_is_no_query(mug, lite0):
    f = small(mug, lite0)
    first = f.evaluate(POINTS, k=3)
    assert f.queries == 5 and f.cache_hits == 0
    again = f.evaluate(POINTS[::-1], k=3)
    assert f.queries == 5 and f.cache_hits == 5
    for a, b in zip(first, again):
        np.testing.assert_array_equal(np.asarray(a)[::-1], b)
    # the same answers as a function without a cache
    plain = small(mug, lite0, cache_size=0)
    np.testing.assert_allclose(plain(POINTS), first.score, atol=1e-6)
    assert plain.cache is None and plain.cache_hits == 0
    plain(POINTS)
    assert plain.queries == 10  # off: every point is rendered again
    # a point repeated within one batch is computed once (and the repeat counted as a hit)
    mixed = f(np.r_[POINTS[:2], [[77.0, 7.0], [77.0, 7.0]]])
    assert f.queries == 6 and f.cache_hits == 8 and mixed[2] == mixed[3]
    info = f.cache.info()
    assert info["hits"] + info["misses"] == 14 and info["entries"] == 6 and info["hit_rate"] == 8 / 14


def test_points_are_keyed_by_their_wrapped_exact_values(mug, lite0):
    f = small(mug, lite0)
    f([[10.0, 30.0], [0.0, 20.0]])
    f([[370.0, 30.0], [-0.0, 20.0], [360.0, 20.0]])  # the same views: azimuth wraps, -0 is 0
    assert f.queries == 2 and f.cache_hits == 3
    f([[10.0 + 1e-9, 30.0]])  # another point, however close
    assert f.queries == 3


def test_more_predictions_than_cached_are_computed(mug, lite0):
    f = small(mug, lite0)
    f(POINTS)
    five = f.evaluate(POINTS, k=5)
    assert f.queries == 10 and five.topk.shape == (5, 5)
    three = f.evaluate(POINTS, k=3)  # fewer than cached: from the cache
    assert f.queries == 10
    np.testing.assert_array_equal(three.topk, five.topk[:, :3])
    np.testing.assert_array_equal(f.evaluate(POINTS).top1, five.top1)


def test_the_cache_is_bounded_and_forgets_the_least_recently_used(mug, lite0):
    f = small(mug, lite0, cache_size=3)
    f(POINTS)
    assert len(f.cache) == 3
    f(POINTS[-3:])
    assert f.queries == 5  # the last three are kept
    f(POINTS[:1])
    assert f.queries == 6  # the first was forgotten
    with pytest.raises(ValueError, match="cache_size must be 0"):
        small(mug, lite0, cache_size=-1)
    with pytest.raises(ValueError, match="at least 1 point"):
        QueryCache(0)


def test_gradients_reuse_the_cache(mug, lite0):
    f = small(mug, lite0)
    pts = np.array([[130.0, 30.0], [200.0, 89.5]])
    g = f.gradient(pts)
    asked = f.queries
    assert asked == 2 * 2 * 2
    np.testing.assert_array_equal(f.gradient(pts), g)
    assert f.queries == asked  # every stepped point came from the cache
    f([[131.0, 30.0], [129.0, 30.0]])  # the azimuth steps of the first point
    assert f.queries == asked


def test_threads_share_one_cache(mug, lite0):
    f = small(mug, lite0)
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(f, [POINTS, POINTS[::-1]])
    np.testing.assert_allclose(a, b[::-1], atol=1e-6)
    assert f.queries + f.cache_hits == 10 and len(f.cache) == 5
    f.cache.clear()
    assert len(f.cache) == 0 and f.cache_hits == 0
