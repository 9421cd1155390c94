"""The optional pytorch3d backend: same images as embree, and gradients by autograd.

pytorch3d has no PyPI wheels for Linux, so CI runs without it. Lest these tests rot unseen there, each still makes
its pytorch3d renderers where pytorch3d is missing (the calls as written) and expects the backend's not-installed
error, not a TypeError from a renamed keyword; only what follows skips. pytorch3d renders on the current CUDA device
(else on the CPU), so its images come back to the CPU before they meet embree's.
"""

import contextlib

import numpy as np
import pytest
import torch

import semkit
from semkit import Renderer, SemanticFunction
from semkit.render import renderer as renderer_module

from conftest import silhouette_iou

pytorch3d_missing = not renderer_module.pytorch3d_available()
NOT_INSTALLED = "no PyPI wheels.*environment.yml.*embree backend works without it"


@contextlib.contextmanager
def pytorch3d_or_its_error():
    """Run a pytorch3d renderer's construction; where pytorch3d is missing, it must fail as not installed, then skip."""
    if not pytorch3d_missing:
        yield
        return
    with pytest.raises(ImportError, match=NOT_INSTALLED):
        yield
    pytest.skip("pytorch3d is not installed (the test's pytorch3d renderer was made and gave its not-installed error)")


def test_missing_pytorch3d_gives_an_actionable_error(monkeypatch):
    monkeypatch.setattr(renderer_module, "pytorch3d_available", lambda: False)
    with pytest.raises(ImportError, match=NOT_INSTALLED):
        Renderer("pytorch3d")
    assert Renderer("auto").backend_name == "embree"


@pytest.mark.parametrize("az,el", [(120, 30), (10, -5), (250, 60), (0, 90)])
def test_same_images_as_embree(chair_mesh, az, el):
    with pytorch3d_or_its_error():
        renderer = Renderer("pytorch3d", image_size=96)
    a = Renderer("embree", image_size=96).render(chair_mesh, azimuth=az, elevation=el)[0]
    b = renderer.render(chair_mesh, azimuth=az, elevation=el)[0].cpu()
    assert silhouette_iou(a, b) >= 0.97
    assert (a - b).abs().mean() <= 0.01


def _jacobian(renderer, mesh, name, value, others):
    def render(x):
        return renderer.render(mesh, **{name: x}, **others)[0]

    x = torch.tensor([value], dtype=torch.float64)
    return torch.autograd.functional.jvp(render, x, torch.ones_like(x))[1].cpu()  # d image / d x, in one pass


def _finite_difference(mesh, name, value, others, h):
    fine = Renderer("embree", image_size=64, supersample=8)
    return (fine.render(mesh, **{name: value + h}, **others) - fine.render(mesh, **{name: value - h}, **others))[0] / (2 * h)


@pytest.mark.parametrize(
    "name,value,others,h",
    [
        ("azimuth", 20.0, {"elevation": 25.0}, 0.25),
        ("elevation", 25.0, {"azimuth": 40.0}, 0.25),
        ("distance", 2.732, {"azimuth": 40.0, "elevation": 25.0}, 0.02),
    ],
)
def test_image_gradients_match_finite_differences_on_a_box(box_mesh, name, value, others, h):
    with pytorch3d_or_its_error():
        r = Renderer("pytorch3d", image_size=64)
    assert r.differentiable
    jac = _jacobian(r, box_mesh, name, value, others)
    fd = _finite_difference(box_mesh, name, value, others, h)
    assert jac.sum().item() == pytest.approx(fd.sum().item(), rel=0.1)
    assert np.corrcoef(jac.flatten(), fd.flatten())[0, 1] > 0.8


def test_image_gradients_on_a_real_shapenet_mesh(chair_mesh):
    """Thin tessellated tubes and curved shells: silhouettes found by walking the mesh."""
    with pytorch3d_or_its_error():
        r = Renderer("pytorch3d", image_size=64)
    jac = _jacobian(r, chair_mesh, "azimuth", 130.0, {"elevation": 30.0})
    fd = _finite_difference(chair_mesh, "azimuth", 130.0, {"elevation": 30.0}, 0.25)
    assert np.corrcoef(jac.flatten(), fd.flatten())[0, 1] > 0.8


def test_light_direction_gradients_flow_through_shading(box_mesh):
    with pytorch3d_or_its_error():
        r = Renderer("pytorch3d", image_size=32)
    jac = _jacobian(r, box_mesh, "light_elevation", 60.0, {"azimuth": 30.0, "elevation": 20.0})
    fd = _finite_difference(box_mesh, "light_elevation", 60.0, {"azimuth": 30.0, "elevation": 20.0}, 0.5)
    fd = torch.nn.functional.avg_pool2d(fd[None], 2)[0]  # the finite differences were rendered at 64
    assert jac.sum().item() == pytest.approx(fd.sum().item(), rel=0.05)


def test_semantic_function_gradients_by_autograd(box_mesh):
    """A score smooth in the image (its brightness) isolates the renderer's gradients from a network's."""

    class Brightness(torch.nn.Module):
        def forward(self, x):
            brightness = x.mean(dim=(1, 2, 3))
            return torch.stack([brightness * 20, torch.zeros_like(brightness)], dim=1)

    score = semkit.Classifier(Brightness(), input_size=64, name="brightness", labels=["bright", "dark"], preprocess=lambda x: x)
    reference = SemanticFunction(box_mesh, score, label=0, renderer=Renderer("embree", image_size=64, supersample=8), fd_step=0.25)
    with pytorch3d_or_its_error():
        renderer = Renderer("pytorch3d", image_size=64)
    f = SemanticFunction(box_mesh, score, label=0, renderer=renderer)
    assert f.gradient_method == "autograd (pytorch3d renderer)"
    points = np.array([[20.0, 25.0], [65.0, 10.0], [200.0, 40.0]])
    np.testing.assert_allclose(f.gradient(points), reference.gradient(points), rtol=0.15, atol=2e-4)


def test_materials_roll_light_and_background_as_embree(shapenet_root):
    """The textured chair, rolled, dimmer, on a background image: the same image on both backends."""
    mesh = semkit.scene.load_mesh(shapenet_root / "chair" / "341fcdd8a40a2612456cbf78e1e89022" / "models" / "model_normalized.obj")
    assert mesh.materials.textured
    background = np.random.default_rng(0).uniform(size=(30, 40, 3))
    with pytorch3d_or_its_error():
        renderer = Renderer("pytorch3d", image_size=96, materials=True, background=background)
    views = dict(azimuth=[120, 30], elevation=30, roll=[0, 25], light_intensity=[0.5, 0.2], ambient=[0.5, 0.7])
    a = Renderer("embree", image_size=96, materials=True, background=background).render(mesh, **views)
    b = renderer.render(mesh, **views).cpu()
    for x, y in zip(a, b):
        assert silhouette_iou(x, y) >= 0.97
    assert (a - b).abs().mean() <= 0.02


def test_gradients_with_respect_to_light_intensity_and_ambient(box_mesh):
    """The image is linear in both, so embree's differences at the same size are their exact derivatives."""
    embree = Renderer("embree", image_size=32)
    with pytorch3d_or_its_error():
        r = Renderer("pytorch3d", image_size=32)
    others = {"azimuth": 30.0, "elevation": 20.0, "light_elevation": 60.0}
    for name in ("light_intensity", "ambient"):
        jac = _jacobian(r, box_mesh, name, 0.5, others)
        fd = (embree.render(box_mesh, **{name: 0.6}, **others) - embree.render(box_mesh, **{name: 0.4}, **others))[0] / 0.2
        assert jac.abs().sum() > 0 and (jac - fd).abs().mean() < 0.01
