"""The embree backend: exact ray casting on the CPU, one primary ray per sample.

Per mesh, the embree scene is built once and cached. Per view, rays
through the (supersampled) pixel centres find the first face hit and, when
textures are drawn, the hit's barycentric weights; `semkit.render.shading`
(shared with the OpenGL backend) turns those into the image. Only the pixels inside the
screen rectangle that bounds the projected vertices are traced: a ray
outside it cannot hit the mesh, and objects cover about a quarter of
the image in the paper's views. embreex releases the GIL while it
traces, so views render in parallel threads. Rays that hit an alpha-masked
hole (`semkit.scene.Materials.cutoff`) are traced on past it.
"""

from __future__ import annotations

import math
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch

from ..scene import Mesh
from ..validation import check_count
from .camera import Views
from .settings import RenderSettings
from .shading import hit_uv, screen_window, shade, usable_cores


@lru_cache(maxsize=16)
def image_plane(size: int, supersample: int, fov: float) -> tuple[np.ndarray, np.ndarray]:
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
    """Ray casting on the CPU: views traced on a pool of ``threads`` threads, each mesh's scene built once
    (kept while the mesh lives); ``close()`` stops the threads and drops the scenes."""

    differentiable = False

    def __init__(self, settings: RenderSettings, threads: int | None = None) -> None:
        if threads is not None:
            threads = check_count(threads, "threads")
        self.settings = settings
        self.threads = threads or usable_cores()
        self._background = settings.background_array()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="semkit-embree") if self.threads > 1 else None
        self._scenes: "weakref.WeakKeyDictionary[Mesh, object]" = weakref.WeakKeyDictionary()

    def scene(self, mesh: Mesh):
        """The committed embree scene of a mesh (built once, shared by threads)."""
        scene = self._scenes.get(mesh)
        if scene is None:
            from embreex import mesh_construction, rtcore_scene

            scene = rtcore_scene.EmbreeScene()
            mesh_construction.TriangleMesh(scene, mesh.triangles)
            # The first run() commits the scene; do it here, before threads share it.
            scene.run(np.zeros((1, 3), np.float32), np.ones((1, 3), np.float32))
            self._scenes[mesh] = scene
        return scene

    def close(self) -> None:
        if self._pool is not None:  # its threads end; a new pool starts threads only when used again
            self._pool.shutdown()
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="semkit-embree")
        self._scenes.clear()

    def options(self) -> dict:
        return {"threads": self.threads}

    def render(self, mesh: Mesh, views: Views) -> torch.Tensor:
        views = views.detach()
        eyes = views.eye.numpy()
        axes = views.axes.numpy()
        lights = views.light.numpy()
        ambient, intensity = views.ambient.numpy(), views.light_intensity.numpy()
        scene = self.scene(mesh)
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
        image = self._background.copy()
        window = screen_window(mesh.vertices, eye, axes, size, k, s.fov)
        if window is None:
            return image
        rows, cols = window
        eye32 = eye.astype(np.float32)
        # Element-wise rather than a matmul: BLAS threads would compete with
        # the rendering threads for the cores.
        x, y = (c.reshape(size, size, k * k)[rows, cols].ravel() for c in image_plane(size, k, s.fov))
        ax = axes.astype(np.float32)
        dirs = np.empty((len(x), 3), np.float32)
        for j in range(3):
            np.multiply(x, ax[0, j], out=dirs[:, j])
            dirs[:, j] += y * ax[1, j]
            dirs[:, j] += ax[2, j]
        origins = np.empty_like(dirs)
        origins[:] = eye32
        materials = mesh.materials if s.materials else None
        masked = materials.masked if materials is not None else None
        if materials is not None and (materials.interpolated or masked is not None):
            ray = scene.run(origins, dirs, output=1)
            hit, bary = ray["primID"], (ray["u"], ray["v"])
            if masked is not None:
                see_through_holes(scene, mesh, masked, origins, dirs, ray)
        else:
            hit, bary = scene.run(origins, dirs), None
        return shade(s, mesh, image, window, hit, bary, eye, light, ambient, intensity)


#: At most this many alpha-masked surfaces are seen through along one ray.
MAX_HOLES = 16


def see_through_holes(scene, mesh: Mesh, masked: np.ndarray, origins: np.ndarray, dirs: np.ndarray, ray: dict) -> None:
    """Trace on, past alpha-masked holes, the rays of ``ray`` (embree's output, updated in place) that hit one.

    ``masked`` [F] marks the faces with alpha masks. A ray that hits a hole
    continues from just past the hit, up to `MAX_HOLES` times.
    """
    hit, u, v, tfar = ray["primID"], ray["u"], ray["v"], ray["tfar"]
    for _ in range(MAX_HOLES):
        rays = np.nonzero(hit >= 0)[0]
        rays = rays[masked[hit[rays]]]
        rays = rays[mesh.materials.holes(hit[rays], hit_uv(mesh, hit[rays], u[rays], v[rays]))]
        if not len(rays):
            return
        past = tfar[rays] * np.float32(1 + 1e-5)
        more = scene.run(origins[rays] + dirs[rays] * past[:, None], dirs[rays], output=1)
        hit[rays], u[rays], v[rays], tfar[rays] = more["primID"], more["u"], more["v"], past + more["tfar"]
