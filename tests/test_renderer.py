import numpy as np
import pytest
import torch
from PIL import Image

import semkit
from semkit import Renderer, Space

from conftest import silhouette_iou

# The paper's renders are named render_<class>_<elevation>_<azimuth>.png; these three
# shapes are in the ShapeNet sample (the others are not).
PAPER_RENDERS = [
    ("bench", "c069553c08631597cb2a965e75be701c", 20, 30),
    ("chair", "341fcdd8a40a2612456cbf78e1e89022", 30, 120),
    ("bathtub", "bdf94fe1bef0281b362845c6edb57fc", 50, 310),
]


@pytest.mark.parametrize("cls,model,el,az", PAPER_RENDERS)
def test_embree_reproduces_the_papers_renders(shapenet_root, paper_figures, cls, model, el, az):
    mesh = semkit.scene.load_mesh(shapenet_root / cls / model / "models" / "model_normalized.obj")
    image = Renderer("embree").render(mesh, azimuth=az, elevation=el)[0].numpy()
    reference = np.asarray(Image.open(paper_figures / f"render_{cls}_{el}_{az}.png").convert("RGB"), float) / 255
    reference = reference.transpose(2, 0, 1)
    assert silhouette_iou(image, reference) >= 0.97
    assert np.abs(image - reference).mean() <= 0.01


def test_output_shape_range_and_batching(chair_mesh):
    r = Renderer(image_size=48)
    images = r.render(chair_mesh, azimuth=[0, 90, 200], elevation=30)
    assert images.shape == (3, 3, 48, 48) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    one = r.render(chair_mesh, azimuth=90, elevation=30)
    torch.testing.assert_close(images[1:2], one)
    # points of a Space give the same images as named values
    torch.testing.assert_close(r.render(chair_mesh, [[0, 30], [90, 30], [200, 30]], space=Space.paper()), images)
    torch.testing.assert_close(r.render(chair_mesh, azimuth=360, elevation=30), r.render(chair_mesh, azimuth=0, elevation=30))


def test_box_silhouette_matches_projection(box_mesh):
    """Straight on, a box's front face projects to a known square of pixels."""
    size = 100
    image = Renderer(image_size=size, supersample=4).render(box_mesh, azimuth=0, elevation=0)[0, 0].numpy()
    # front face z = -0.8 at distance 2.732 - 0.8 from the eye; half-width 1 (x), half-height 0.6 (y)
    depth, t = 2.732 - 0.8, np.tan(np.radians(30))
    half_w, half_h = 1.0 / (depth * t) * size / 2, 0.6 / (depth * t) * size / 2
    assert (image > 0.25).sum(axis=1).max() == pytest.approx(2 * half_w, abs=1.5)
    assert (image > 0.25).sum(axis=0).max() == pytest.approx(2 * half_h, abs=1.5)
    # the front face is vertical: ambient only (0.5); seen from above, the top is brightest (1.0)
    assert image[50, 50] == pytest.approx(0.5)
    top = Renderer(image_size=size).render(box_mesh, azimuth=0, elevation=89)[0, 0].numpy()
    assert top[50, 50] == pytest.approx(1.0)


def test_two_sided_shading_ignores_winding(box_mesh):
    flipped = semkit.Mesh(box_mesh.vertices, box_mesh.faces[:, ::-1], name="flipped")
    r = Renderer(image_size=40)
    torch.testing.assert_close(r.render(box_mesh, azimuth=30, elevation=20), r.render(flipped, azimuth=30, elevation=20))


def test_light_distance_and_background_options(box_mesh):
    r = Renderer(image_size=40)
    base = r.render(box_mesh, azimuth=0, elevation=0)[0, 0]
    # light from the camera's side lights the front face fully
    lit = r.render(box_mesh, azimuth=0, elevation=0, light_azimuth=0, light_elevation=0)[0, 0]
    assert lit[20, 20] == pytest.approx(1.0) and base[20, 20] == pytest.approx(0.5)
    # farther away, smaller
    far = r.render(box_mesh, azimuth=0, elevation=0, distance=6.0)[0, 0]
    assert (far > 0.1).sum() < (base > 0.1).sum() / 3
    grey = Renderer(image_size=40, background=(0.2, 0.3, 0.4)).render(box_mesh, azimuth=0, elevation=0)[0]
    np.testing.assert_allclose(grey[:, 0, 0].numpy(), [0.2, 0.3, 0.4], atol=1e-6)
    red = Renderer(image_size=40, color=(1, 0, 0)).render(box_mesh, azimuth=0, elevation=0)[0]
    assert red[1].max() == 0 and red[0, 20, 20] == pytest.approx(0.5)


def test_supersampling_antialiases_edges(chair_mesh):
    hard = Renderer(image_size=64, supersample=1).render(chair_mesh, azimuth=120, elevation=30)
    soft = Renderer(image_size=64, supersample=4).render(chair_mesh, azimuth=120, elevation=30)
    fraction = lambda im: ((im > 0.02) & (im < 0.48)).float().mean()  # partly covered background pixels
    assert fraction(soft) > 2 * fraction(hard)
    assert silhouette_iou(hard[0], soft[0], min_brightness=0.25) > 0.8


def test_invalid_renderer_settings_and_inputs(chair_mesh):
    with pytest.raises(ValueError, match="unknown renderer backend 'opengl'"):
        Renderer("opengl")
    with pytest.raises(ValueError, match="image_size"):
        Renderer(image_size=0)
    with pytest.raises(ValueError, match="supersample"):
        Renderer(supersample=0)
    with pytest.raises(ValueError, match="background"):
        Renderer(background=(2, 0, 0))
    r = Renderer(image_size=16)
    with pytest.raises(TypeError, match="needs a semkit.Mesh"):
        r.render("chair.obj", azimuth=0)
    with pytest.raises(ValueError, match="elevation=120 is outside"):
        r.render(chair_mesh, [[0, 120]], space=Space.paper())
    with pytest.raises(ValueError, match="the renderer has no parameters \\['x'\\]"):
        r.render(chair_mesh, [[0.5]], space=Space({"x": (0, 1)}))


def test_auto_backend_is_embree_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = Renderer()
    assert r.backend_name == "embree" and not r.differentiable
    assert r.describe()["supersample"] == 2


def test_tracing_only_the_meshs_screen_window_changes_no_pixel(chair_mesh, monkeypatch):
    """Rays outside the rectangle of the projected vertices are not traced; the images equal full tracing.

    Views include the poles, a camera inside the chair's bounding box (every pixel traced) and,
    for a mesh moved off-axis, views that see part of it and views that see none of it.
    """
    from semkit.render import embree as _embree

    moved = semkit.Mesh(chair_mesh.vertices + [2.5, 0.0, 0.0], chair_mesh.faces, name="moved")
    views = {
        "azimuth": [0, 35, 120, 200, 290, 180, 0],
        "elevation": [90, -90, 30, 10, 60, 0, 0],
        "distance": [2.732, 2.0, 0.2, 3.5, 1.2, 2.732, 1.0],
    }
    r = Renderer(image_size=50, supersample=3, background=(0.1, 0.2, 0.3), color=(1.0, 0.8, 0.6))
    windowed = {m.name: r.render(m, **views) for m in (chair_mesh, moved)}
    calls = []

    def everywhere(vertices, eye, axes, size, k, fov):
        calls.append(_embree_window(vertices, eye, axes, size, k, fov))
        return slice(0, size), slice(0, size)

    _embree_window = _embree.screen_window
    monkeypatch.setattr(_embree, "screen_window", everywhere)
    for mesh in (chair_mesh, moved):
        torch.testing.assert_close(r.render(mesh, **views), windowed[mesh.name], rtol=0, atol=0)
    windows = [w for w in calls if w is not None and w != (slice(0, 50), slice(0, 50))]
    assert len(windows) >= 6, "most views should trace a window, not the whole image"
    assert None in calls, "a view of the moved mesh that sees none of it traces nothing"
    assert (slice(0, 50), slice(0, 50)) in calls, "a camera inside the bounding box traces everything"
