import numpy as np
import pytest

import semkit
from semkit import gallery


def test_gallery_shapes_are_normalized_and_labelled():
    assert len(gallery.names()) >= 6
    for mesh in gallery.meshes():
        extent = mesh.vertices.max(0) - mesh.vertices.min(0)
        assert extent.max() == pytest.approx(2.0)
        assert mesh.label is not None and 0 <= mesh.label < 1000
        assert mesh.source == "semkit.gallery"
    with pytest.raises(KeyError, match="no gallery shape 'teapot'"):
        gallery.load("teapot")


def test_gallery_is_deterministic():
    a, b = gallery.load("park_bench"), gallery.load("park_bench")
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)


@pytest.mark.slow
def test_every_shape_is_recognised_by_a_bundled_network():
    """Top-1 in at least 30% of azimuths at elevation 30 for at least one bundled network (docs/gallery.md)."""
    networks = [semkit.load_classifier(name) for name in semkit.BUNDLED]
    views = {"azimuth": np.arange(0.0, 360.0, 30.0), "elevation": 30.0}
    for mesh in gallery.meshes():
        rates = [np.mean(semkit.SemanticFunction(mesh, c).evaluate(views).top1 == mesh.label) for c in networks]
        assert max(rates) >= 0.3, (mesh.name, rates)
