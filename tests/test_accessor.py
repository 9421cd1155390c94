"""ds.semkit: results keep their Space and criterion."""

import numpy as np
import pytest

import semkit
from semkit import Criterion


def passing(points):
    p = np.atleast_2d(points)
    return np.where(np.abs((p[:, 0] + 180) % 360 - 180) <= 40, 0.9, 0.1)


def test_a_map_and_its_regions_through_the_accessor():
    import matplotlib

    matplotlib.use("Agg")
    space = semkit.Space.paper()
    m = semkit.semantic_map(passing, space=space, step=10, progress=False)
    assert m.semkit.space == space and m.semkit.kind == "map" and m.semkit.criterion is None
    ra = m.semkit.robust_accuracy([0, 20], criterion="score >= 0.5")
    assert float(ra.sel(radius=0)) == pytest.approx(float((m.score >= 0.5).mean()))
    assert ra.semkit.criterion == Criterion.score(0.5)
    boxes = semkit.find_regions(passing, [[0.0, 40.0]], ("verified",), space=space, criterion="score >= 0.5", progress=False)
    assert boxes.semkit.kind == "regions" and boxes.semkit.srvr().sel(algorithm="verified") > 0
    assert boxes.semkit.check(m).attrs["criterion"] == "score >= 0.5"
    assert m.semkit.plot() is not None and boxes.semkit.plot(semantic_map=m) is not None
    with pytest.raises(ValueError, match="takes a region search"):
        m.semkit.srvr()
    assert m.score.semkit.space == space  # a DataArray taken from a map keeps its Space (in its coordinates)
    with pytest.raises(ValueError, match="record no Space"):
        m.score.drop_attrs().semkit.space
