"""The embree backend: exact ray casting on the CPU, one primary ray per sample.

Per mesh, the embree scene and the face normals are built once and cached.
Per view, rays through the (supersampled) pixel centres find the first face
hit; the face's flat, two-sided shade (ambient + directional along the
light, with the normal turned toward the camera) is looked up from a
per-face table (times the face's Kd with materials, and times its texture,
sampled at the hit's barycentric UV, on textured faces); supersamples are
averaged, and the background fills the fraction of samples that missed. Only the pixels inside the
screen rectangle that bounds the projected vertices are traced: a ray
outside it cannot hit the mesh, and objects cover about a quarter of
the image in the paper's views. embreex releases the GIL while it
traces, so views render in parallel threads.
"""

from __future__ import annotations

import math
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch

from .camera import Views
from .mesh import Mesh, front_twins, sample_texture
from .renderer import RenderSettings

_scenes: "weakref.WeakKeyDictionary[Mesh, object]" = weakref.WeakKeyDictionary()


def _scene(mesh: Mesh):
    """The committed embree scene of a mesh (built once, shared by threads)."""
    scene = _scenes.get(mesh)
    if scene is None:
        from embreex import mesh_construction, rtcore_scene

        scene = rtcore_scene.EmbreeScene()
        mesh_construction.TriangleMesh(scene, mesh.triangles)
        # The first run() commits the scene; do it here, before threads share it.
        scene.run(np.zeros((1, 3), np.float32), np.ones((1, 3), np.float32))
        _scenes[mesh] = scene
    return scene


@lru_cache(maxsize=16)
def _image_plane(size: int, supersample: int, fov: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera-space x and y (at z = 1) of every ray, float32 [size*size*k*k] each.

    Rays are pixel-major (row-major from the top-left pixel), with the k x k
    subsamples of each pixel contiguous, so averaging them is a contiguous
    reduction.
    """
    k = supersample
    t = math.tan(math.radians(fov) / 2.0)
    c = ((2.0 * np.arange(size * k) + 1.0 - size * k) / (size * k) * t).reshape(size, k)
    x = np.broadcast_to(c[None, :, None, :], (size, size, k, k)).astype(np.float32).ravel()
    y = np.broadcast_to(-c[:, None, :, None], (size, size, k, k)).astype(np.float32).ravel()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


class EmbreeBackend:
    differentiable = False

    def __init__(self, settings: RenderSettings, threads: int | None = None) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        self.settings = settings
        self.threads = threads or _usable_cores()
        self._background = settings.background_array()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="semkit-embree") if self.threads > 1 else None

    def options(self) -> dict:
        return {"threads": self.threads}

    def render(self, mesh: Mesh, views: Views) -> torch.Tensor:
        views = views.detach()
        eyes = views.eye.numpy()
        axes = views.axes.numpy()
        lights = views.light.numpy()
        ambient, intensity = views.ambient.numpy(), views.light_intensity.numpy()
        scene = _scene(mesh)
        s = self.settings
        out = np.empty((len(views), 3, s.image_size, s.image_size), np.float32)

        def one(b: int) -> None:
            out[b] = self._render_view(mesh, scene, eyes[b], axes[b], lights[b], ambient[b], intensity[b])

        if self._pool is None or len(views) == 1:
            for b in range(len(views)):
                one(b)
        else:
            list(self._pool.map(one, range(len(views))))
        return torch.from_numpy(out)

    def _render_view(
        self, mesh: Mesh, scene, eye: np.ndarray, axes: np.ndarray, light: np.ndarray, ambient: float, intensity: float
    ) -> np.ndarray:
        s = self.settings
        size, k = s.image_size, s.supersample
        materials = mesh.materials if s.materials else None
        textured = materials is not None and materials.textured
        image = self._background.copy()
        window = _screen_window(mesh.vertices, eye, axes, size, k, s.fov)
        if window is None:
            return image
        rows, cols = window
        eye32 = eye.astype(np.float32)
        # Element-wise rather than a matmul: BLAS threads would compete with
        # the rendering threads for the cores.
        x, y = (c.reshape(size, size, k * k)[rows, cols].ravel() for c in _image_plane(size, k, s.fov))
        ax = axes.astype(np.float32)
        dirs = np.empty((len(x), 3), np.float32)
        for j in range(3):
            np.multiply(x, ax[0, j], out=dirs[:, j])
            dirs[:, j] += y * ax[1, j]
            dirs[:, j] += ax[2, j]
        origins = np.empty_like(dirs)
        origins[:] = eye32
        if textured:
            ray = scene.run(origins, dirs, output=1)
            hit, bary = ray["primID"], (ray["u"], ray["v"])
        else:
            hit = scene.run(origins, dirs)

        # Flat two-sided shading, per face: turn the normal toward the camera,
        # then ambient + light_intensity * max(0, n . light). Index -1 (a miss) reads 0.
        normals = mesh.face_normals
        toward = np.einsum("fj,fj->f", normals, eye32 - mesh.triangles[:, 0]) >= 0
        cos = np.einsum("fj,j->f", normals, light.astype(np.float32)) * np.where(toward, 1.0, -1.0).astype(np.float32)
        shade = np.zeros(len(cos) + 1, np.float32)
        shade[:-1] = np.float32(ambient) + np.float32(intensity) * np.maximum(cos, 0.0)

        # Average the subsamples of each pixel: object colour and background fraction.
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        missed = (hit < 0).reshape(-1, k * k).mean(axis=1, dtype=np.float32).reshape(shape)
        if materials is None:
            lit = shade[hit].reshape(-1, k * k).mean(axis=1).reshape(shape)
            color = [s.color[channel] * lit for channel in range(3)]
        else:
            rgb = _material_colors(mesh, shade, toward, hit, bary if textured else None)
            color = list(rgb.reshape(-1, k * k, 3).mean(axis=1).reshape(*shape, 3).transpose(2, 0, 1))
        for channel in range(3):
            image[channel, rows, cols] = color[channel] + image[channel, rows, cols] * missed
        return image


def _material_colors(mesh: Mesh, shade: np.ndarray, toward: np.ndarray, hit: np.ndarray, bary) -> np.ndarray:
    """Kd * texture(uv) * shade of every ray [N, 3] (0 for a miss); ``bary`` = embree's (u, v) when textured.

    Where faces coincide, the colour is that of the twin facing the camera.
    """
    materials, twins = mesh.materials, mesh.twins
    shown = np.arange(len(materials)) if twins is None else front_twins(twins[0], toward)
    face_rgb = np.zeros((len(shade), 3), np.float32)
    face_rgb[:-1] = materials.kd[shown] * shade[:-1, None]
    rgb = face_rgb[hit]
    if bary is None:
        return rgb
    texture = np.append(materials.texture[shown], -1)[hit]
    for t in np.unique(texture[texture >= 0]):
        rays = np.nonzero(texture == t)[0]
        faces = hit[rays]
        u, v = bary[0][rays], bary[1][rays]  # weights of corners 1 and 2
        weights = np.stack([1.0 - u - v, u, v], axis=1)
        if twins is not None:  # the same point in the corner order of the twin that shows
            _, rank = twins
            canonical = np.empty_like(weights)
            np.put_along_axis(canonical, rank[faces], weights, axis=1)
            faces = shown[faces]
            weights = np.take_along_axis(canonical, rank[faces], axis=1)
        uv = np.einsum("nc,ncj->nj", weights, materials.uv[faces])
        rgb[rays] *= sample_texture(materials.images[t], uv)
    return rgb


def _screen_window(vertices: np.ndarray, eye: np.ndarray, axes: np.ndarray, size: int, k: int, fov: float):
    """(rows, cols) slices of the pixels that the mesh can cover in this view; None if it is out of view.

    The projection of a triangle in front of the camera lies inside the
    rectangle of its projected vertices, so rays outside the rectangle miss.
    With a vertex at or behind the camera plane the whole image is traced.
    A one-pixel margin keeps rays on the rectangle's edge.
    """
    camera = np.einsum("vj,ij->vi", vertices - eye, axes)  # columns: x, y, depth (no BLAS threads)
    depth = camera[:, 2]
    if depth.min() <= 1e-6 * max(1.0, float(np.abs(depth).max())):
        return slice(0, size), slice(0, size)
    x, y = camera[:, 0] / depth, camera[:, 1] / depth
    # subsample i of n = size * k sits at ((2 i + 1 - n) / n) tan(fov / 2); image rows grow with -y
    n, t = size * k, math.tan(math.radians(fov) / 2.0)

    def pixels(low: float, high: float) -> slice | None:
        first = math.floor((low / t * n + n - 1) / 2) // k - 1
        last = math.ceil((high / t * n + n - 1) / 2) // k + 1
        if last < 0 or first >= size:
            return None
        return slice(max(first, 0), min(last + 1, size))

    cols, rows = pixels(x.min(), x.max()), pixels(-y.max(), -y.min())
    return None if cols is None or rows is None else (rows, cols)


def _usable_cores() -> int:
    """The cores this process may run on (Linux), else all of the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
