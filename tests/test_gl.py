"""The gl backend (OpenGL through headless EGL) draws what embree draws; on a CPU it runs on Mesa's llvmpipe.

It needs moderngl (``pip install 'semkit[gl]'``, in the test extra) and an EGL driver (Debian: libegl1,
libegl-mesa0, libgl1-mesa-dri, which .ci/run installs); without them these tests skip, saying which is missing.
"""

import importlib.util
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import semkit
from semkit import Renderer, gallery
from semkit.render import renderer as renderer_module

from conftest import ROOT, silhouette_iou

gl_missing = renderer_module.gl_unavailable_reason()
needs_gl = pytest.mark.skipif(gl_missing is not None, reason=str(gl_missing))

# ShapeNet sample meshes: textured (with Kd-only parts), many Kd colours, plain; all have coincident faces.
MESHES = [
    ("chair", "341fcdd8a40a2612456cbf78e1e89022"),  # wood texture on seat and back, black frame
    ("bench", "a58e45ec5204f09559cbde03ded257fd"),  # textured
    ("aeroplane", "4de5861211ad5b95e7ef9fff09638f8e"),  # textured
    ("aeroplane", "4de653411d132abdf1e2558bb9cfc329"),  # nine Kd colours
]
# (azimuth, elevation, roll, distance, light_azimuth, light_elevation, light_intensity, ambient)
VIEWS = np.array([
    [120, 30, 0, 2.732, 0, 90, 0.5, 0.5],
    [200, 15, 35, 2.732, 0, 90, 0.5, 0.5],
    [10, -10, 0, 2.0, 60, 20, 0.8, 0.2],
    [0, 90, -90, 2.732, 0, 90, 0.5, 0.5],
    [300, 60, 170, 3.5, 200, 30, 0.9, 0.3],
])
NAMES = ["azimuth", "elevation", "roll", "distance", "light_azimuth", "light_elevation", "light_intensity", "ambient"]


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Each image pair: silhouette IoU >= 0.99 and mean absolute difference <= 0.01 (the issue's bar)."""
    for i in range(len(a)):
        assert silhouette_iou(a[i], b[i]) >= 0.99, f"view {i}"
        assert (a[i] - b[i]).abs().mean() <= 0.01, f"view {i}"


def _both(mesh, **options):
    views = dict(zip(NAMES, VIEWS.T))
    return Renderer("embree", **options).render(mesh, **views), Renderer("gl", **options).render(mesh, **views)


@needs_gl
@pytest.mark.parametrize("entry", MESHES, ids=lambda e: f"{e[0]}-{e[1][:6]}")
def test_same_images_as_embree_with_materials_textures_roll_light_and_distance(shapenet_root, entry):
    mesh = semkit.scene.load_mesh(shapenet_root / entry[0] / entry[1] / "models" / "model_normalized.obj")
    assert mesh.twins is not None  # ShapeNet's coincident faces: the copy facing the camera shows
    a, b = _both(mesh, image_size=224, materials=True)
    _same(a, b)
    assert (a.amax(dim=1) > 0.05).float().mean() > 0.02  # the object is in view


@needs_gl
@pytest.mark.parametrize("supersample", [1, 3])
def test_same_images_as_embree_at_other_supersampling_and_in_white(chair_mesh, supersample):
    a, b = _both(chair_mesh, image_size=96, supersample=supersample)
    _same(a, b)
    a, b = _both(chair_mesh, image_size=96, supersample=supersample, materials=True, color=(1.0, 0.5, 0.2))
    _same(a, b)


@needs_gl
def test_backgrounds_grey_rgb_and_image(chair_mesh):
    picture = np.random.default_rng(2).uniform(size=(30, 50, 3)).astype(np.float32)
    for background in (0.5, (0.1, 0.6, 0.3), picture):
        a, b = _both(chair_mesh, image_size=64, materials=True, background=background)
        _same(a, b)
        away = (a - b).abs().amax(dim=1) == 0  # the background shows the same
        assert away.float().mean() > 0.5


@needs_gl
def test_coincident_faces_show_the_copy_facing_the_camera():
    """Two copies of a square, one per side, red facing -z and blue facing +z: each side shows its own colour."""
    v = np.array([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]], float)
    front = [[0, 2, 1], [0, 3, 2]]  # normal -z: toward the camera at azimuth 0 (eye on -z)
    back = [[0, 1, 2], [0, 2, 3]]
    for order in ("red first", "blue first"):
        faces, kd = (front + back, [[1, 0, 0]] * 2 + [[0, 0, 1]] * 2)
        if order == "blue first":
            faces, kd = back + front, [[0, 0, 1]] * 2 + [[1, 0, 0]] * 2
        mesh = semkit.Mesh(v, np.array(faces), materials=semkit.scene.mesh.Materials.colors(kd))
        r = Renderer("gl", image_size=32, materials=True)
        seen = r.render(mesh, azimuth=[0, 180], elevation=0, light_intensity=0, ambient=1.0)
        assert seen[0, :, 16, 16].tolist() == [1.0, 0.0, 0.0], order
        assert seen[1, :, 16, 16].tolist() == [0.0, 0.0, 1.0], order
        torch.testing.assert_close(seen, Renderer("embree", image_size=32, materials=True).render(
            mesh, azimuth=[0, 180], elevation=0, light_intensity=0, ambient=1.0))


@needs_gl
def test_views_out_of_sight_or_from_inside_the_mesh(chair_mesh):
    """A camera inside the chair's bounding box, and a chair moved behind the camera (nothing drawn) or far in front."""
    moved = semkit.Mesh(chair_mesh.vertices + [0.0, 0.0, -5.0], chair_mesh.faces, name="moved")
    views = {"azimuth": [0, 180, 35, 0], "elevation": [0, 0, 30, 0], "distance": [2.732, 2.732, 0.2, 1.0]}
    for mesh in (chair_mesh, moved):
        a, b = (Renderer(name, image_size=48, background=(0.1, 0.2, 0.3)).render(mesh, **views) for name in ("embree", "gl"))
        _same(a, b)
    background = torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1).expand(3, 48, 48)
    assert torch.equal(b[0], background) and not torch.equal(b[1], background)


@needs_gl
def test_threads_share_one_context_and_other_sizes_render(chair_mesh):
    r = Renderer("gl", image_size=64)
    expected = r.render(chair_mesh, azimuth=[30, 100], elevation=20)
    results = {}

    def render(key):
        results[key] = Renderer("gl", image_size=64).render(chair_mesh, azimuth=[30, 100], elevation=20)

    workers = [threading.Thread(target=render, args=(key,)) for key in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for images in results.values():
        torch.testing.assert_close(images, expected, rtol=0, atol=0)
    assert r.resized(40).render(chair_mesh, azimuth=30).shape == (1, 3, 40, 40)
    assert not r.differentiable and r.describe()["backend"] == "gl"


@needs_gl
def test_listed_and_named_errors(chair_mesh):
    assert "gl" in Renderer.backends() and renderer_module.gl_renderer()
    if not torch.cuda.is_available():  # on a CPU, auto's embree comes first
        assert Renderer.backends()[:2] == ("embree", "gl")
    with pytest.raises(ValueError, match="the gl backend rasterizes at most .* px.*image_size x supersample is 32768"):
        Renderer("gl", image_size=4096, supersample=8)
    with pytest.raises(TypeError, match="unexpected keyword argument .samples."):
        Renderer("gl", samples=4)
    with pytest.raises(ValueError, match="threads= is for the embree backend; gl shades whole batches in torch"):
        Renderer("gl", threads=2)


def test_a_missing_gl_backend_is_named_and_left_out(monkeypatch):
    reason = "the gl backend needs moderngl: pip install 'semkit[gl]'"
    monkeypatch.setattr(renderer_module, "gl_unavailable_reason", lambda: reason)
    with pytest.raises(ImportError, match=r"needs moderngl: pip install 'semkit\[gl\]'; the embree backend works without it"):
        Renderer("gl")
    assert "gl" not in Renderer.backends() and "embree" in Renderer.backends()
    if not torch.cuda.is_available():
        assert Renderer().backend_name == "embree" and Renderer.backends()[0] == "embree"


@needs_gl
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_torch_compilers_still_load_after_a_gl_render():
    """triton and Mesa's llvmpipe both carry LLVM; loaded in the wrong order, importing triton crashed the process."""
    code = "import semkit; semkit.Renderer('gl', image_size=16).render(semkit.gallery.load('vase')); import triton.knobs"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


def test_auto_takes_gl_on_a_cuda_machine_whose_opengl_is_a_gpu(monkeypatch):
    """The rule of auto on a GPU machine (none here: CUDA and the driver's name are stand-ins)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(renderer_module, "pytorch3d_available", lambda: False)
    monkeypatch.setattr(renderer_module, "gl_unavailable_reason", lambda: None)
    monkeypatch.setattr(renderer_module, "gl_renderer", lambda: "NVIDIA H200/PCIe/SSE2")
    assert Renderer.backends() == ("gl", "embree")
    monkeypatch.setattr(renderer_module, "pytorch3d_available", lambda: True)
    assert Renderer.backends()[0] == "gl"  # gl on the GPU before pytorch3d: it draws whole batches
    monkeypatch.setattr(renderer_module, "gl_renderer", lambda: "llvmpipe (LLVM 15.0.6, 256 bits)")
    assert Renderer.backends()[0] == "pytorch3d"
    monkeypatch.setattr(renderer_module, "pytorch3d_available", lambda: False)
    with pytest.warns(UserWarning, match="cannot draw on it: OpenGL runs on llvmpipe .* libegl1"):
        assert Renderer.backends() == ("embree", "gl")  # Mesa's CPU rasterizer: embree is faster, and auto says why


def _batch_views(n: int, seed: int) -> dict:
    """n random views around the object: azimuth, elevation, roll, distance and light all vary."""
    rng = np.random.default_rng(seed)
    return {"azimuth": rng.uniform(0, 360, n), "elevation": rng.uniform(-40, 80, n), "roll": rng.uniform(-60, 60, n),
            "distance": rng.uniform(1.6, 3.5, n), "light_azimuth": rng.uniform(0, 360, n),
            "light_elevation": rng.uniform(0, 90, n), "light_intensity": rng.uniform(0.3, 0.9, n),
            "ambient": rng.uniform(0.1, 0.5, n)}


@needs_gl
@pytest.mark.parametrize("entry", MESHES[::3], ids=lambda e: f"{e[0]}-{e[1][:6]}")
@pytest.mark.parametrize("materials", [False, True])
def test_a_batch_of_48_draws_what_embree_and_gl_view_by_view_draw(shapenet_root, entry, materials):
    """One render call draws its 48 views in one pass: the same as embree, and as gl called once per view."""
    mesh = semkit.scene.load_mesh(shapenet_root / entry[0] / entry[1] / "models" / "model_normalized.obj")
    views = _batch_views(48, seed=len(entry[1]) + materials)
    gl = Renderer("gl", image_size=64, materials=materials)
    batch = gl.render(mesh, **views)
    one_by_one = torch.cat([gl.render(mesh, **{k: v[i] for k, v in views.items()}) for i in range(48)])
    _same(batch, one_by_one)
    _same(batch, Renderer("embree", image_size=64, materials=materials).render(mesh, **views))
    assert (batch.amax(dim=1) > 0.05).float().mean() > 0.02


@needs_gl
def test_a_batch_larger_than_the_framebuffer_is_drawn_in_several_passes(chair_mesh):
    """A framebuffer of 256 x 256 samples holds at most 4 whole views of 64 px (2x supersampled): 48 views take several passes."""
    from semkit.render.gl import GLBackend

    renderer = Renderer("gl", image_size=64, materials=True, background=(0.2, 0.3, 0.4))
    views = _batch_views(48, seed=5)
    small = GLBackend(renderer.settings, max_framebuffer=256)
    split = small.render(chair_mesh, semkit.render.Views.from_inputs(None, None, views, {}))
    _same(split, renderer.render(chair_mesh, **views))
    _same(split, Renderer("embree", image_size=64, materials=True, background=(0.2, 0.3, 0.4)).render(chair_mesh, **views))
    with pytest.raises(ValueError, match="rasterizes at most 100 px .* image_size x supersample is 128"):
        GLBackend(renderer.settings, max_framebuffer=100)


@needs_gl
def test_the_draw_and_the_readback_let_other_threads_run(chair_mesh, monkeypatch):
    """Through ctypes the slow GL calls release the GIL: a Python thread keeps ticking while 48 views draw, where
    moderngl's own calls (the fallback) stop it for the whole draw; both draw the same images."""
    import threading
    import time

    from semkit.render import gl as module
    from semkit.render.gl_calls import gl_calls

    assert gl_calls() is not None  # the EGL loader opens here
    renderer = Renderer("gl", image_size=224, materials=True)
    views = _batch_views(48, seed=3)
    renderer.render(chair_mesh, **views)

    def longest_pause(calls) -> tuple[float, torch.Tensor]:
        monkeypatch.setattr(module, "gl_calls", lambda: calls)
        stop, pauses = threading.Event(), []

        def tick():
            last = time.perf_counter()
            while not stop.is_set():
                now = time.perf_counter()
                pauses.append(now - last)
                last = now
                time.sleep(0)

        thread = threading.Thread(target=tick)
        thread.start()
        try:
            images = renderer.render(chair_mesh, **views)
        finally:
            stop.set()
            thread.join()
        return max(pauses), images

    released, images = longest_pause(gl_calls())
    held, same = longest_pause(None)
    assert released < held / 4, (released, held)
    torch.testing.assert_close(images, same, rtol=0, atol=0)
