import numpy as np
import pytest
import torch

from semkit.render.camera import DEFAULTS, Views, direction, look_at_axes


def nmr_look_at_axes(eye: np.ndarray) -> np.ndarray:
    """The Neural Mesh Renderer's look_at, written out independently (cross products)."""
    z = -eye / np.linalg.norm(eye)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


@pytest.mark.parametrize("az,el", [(0, 0), (30, 20), (130, 30), (200, -10), (310, 50), (359, 89)])
def test_eye_and_axes_follow_the_paper(az, el):
    views = Views.from_inputs(None, None, {"azimuth": az, "elevation": el})
    d = 2.732
    a, e = np.radians(az), np.radians(el)
    eye = [d * np.cos(e) * np.sin(a), d * np.sin(e), -d * np.cos(e) * np.cos(a)]
    np.testing.assert_allclose(views.eye[0].numpy(), eye, atol=1e-12)
    np.testing.assert_allclose(views.axes[0].numpy(), nmr_look_at_axes(np.array(eye)), atol=1e-9)


def test_axes_are_continuous_at_the_pole():
    """Normalizing a cross product that vanishes at elevation 90 must not shrink the axes."""
    axes = look_at_axes(torch.tensor([40.0, 40.0], dtype=torch.float64), torch.tensor([90.0, 89.999], dtype=torch.float64))
    np.testing.assert_allclose(axes[0] @ axes[0].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(axes[0], axes[1], atol=1e-4)


def test_defaults_and_light():
    views = Views.from_inputs(None, None, {"azimuth": [0, 90]})
    assert len(views) == 2
    assert views.distance.tolist() == [DEFAULTS["distance"]] * 2
    np.testing.assert_allclose(views.light.numpy(), [[0, 1, 0]] * 2, atol=1e-12)
    np.testing.assert_allclose(direction(torch.tensor([90.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)).numpy(), [[1, 0, 0]], atol=1e-12)


def test_invalid_views():
    with pytest.raises(ValueError, match="unknown rendering parameters \\['zoom'\\]"):
        Views.from_inputs(None, None, {"zoom": 2})
    with pytest.raises(ValueError, match="elevation has 2 values but other parameters have 3"):
        Views.from_inputs(None, None, {"azimuth": [1, 2, 3], "elevation": [1, 2]})
    with pytest.raises(ValueError, match="distance must be positive"):
        Views.from_inputs(None, None, {"distance": 0})
    with pytest.raises(ValueError, match="elevation contains NaN"):
        Views.from_inputs(None, None, {"elevation": np.nan})
