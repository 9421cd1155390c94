"""The screen window (both CPU-side backends use it) and embree's shading from visible faces to an image.

A backend finds, for each (supersampled) sample of a view, the face it
sees and the barycentric weights of the hit on it; embree by ray casting
(`semkit.render.embree`), OpenGL by rasterizing face ids
(`semkit.render.gl`). embree shades one view at a time here, in numpy; gl
shades a whole batch in torch on its device (`semkit.render.batch_shading`,
the same rules, held to this module's images by tests/test_gl.py): the flat, two-sided
shade of every face (ambient + directional along the light, with the
normal turned toward the camera), times the face's Kd with materials and
times its texture at the hit's UV on textured faces (wrapped as the
texture's sampler says) and times its vertex colours interpolated at the
hit; alpha-masked texels are holes the backends see through (they never
report a hit there); of coincident faces
([`semkit.Mesh.twins`][semkit.Mesh.twins]) the copy facing the camera shows.
Subsamples are averaged, and the background fills the fraction of a
pixel's samples that missed.

Samples are laid out pixel-major (row-major from the top-left pixel of the
screen window), with the k x k subsamples of each pixel contiguous, so
averaging them is a contiguous reduction.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..scene import Mesh, front_twins, sample_texture
from .settings import RenderSettings

Window = tuple[slice, slice]


def screen_window(vertices: np.ndarray, eye: np.ndarray, axes: np.ndarray, size: int, k: int, fov: float) -> Window | None:
    """(rows, cols) slices of the pixels that the mesh can cover in this view; None if it is out of view.

    The projection of a triangle in front of the camera lies inside the
    rectangle of its projected vertices, so samples outside the rectangle
    miss. With a vertex at or behind the camera plane the whole image
    counts. A one-pixel margin keeps samples on the rectangle's edge.
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


def shade(
    settings: RenderSettings,
    mesh: Mesh,
    image: np.ndarray,
    window: Window,
    hit: np.ndarray,
    bary: tuple[np.ndarray, np.ndarray] | None,
    eye: np.ndarray,
    light: np.ndarray,
    ambient: float,
    intensity: float,
) -> np.ndarray:
    """Draw the object into ``image`` [3, H, W] (the background, changed in place) and return it.

    ``hit`` [N] int: the face each sample of ``window`` sees, -1 for a
    miss (samples in the layout of this module's docstring); ``bary``
    (u, v) [N] each: the hit's barycentric weights of corners 1 and 2,
    needed only when textures are drawn (else None); ``eye`` [3] and
    ``light`` [3] the camera position and unit light direction.
    """
    s = settings
    k = s.supersample
    rows, cols = window
    materials = mesh.materials if s.materials else None

    # Flat two-sided shading, per face: turn the normal toward the camera,
    # then ambient + light_intensity * max(0, n . light). Index -1 (a miss) reads 0.
    normals = mesh.face_normals
    toward = np.einsum("fj,fj->f", normals, eye.astype(np.float32) - mesh.triangles[:, 0]) >= 0
    cos = np.einsum("fj,j->f", normals, light.astype(np.float32)) * np.where(toward, 1.0, -1.0).astype(np.float32)
    face_shade = np.zeros(len(cos) + 1, np.float32)
    face_shade[:-1] = np.float32(ambient) + np.float32(intensity) * np.maximum(cos, 0.0)

    # Average the subsamples of each pixel: object colour and background fraction.
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    missed = (hit < 0).reshape(-1, k * k).mean(axis=1, dtype=np.float32).reshape(shape)
    if materials is None:
        lit = face_shade[hit].reshape(-1, k * k).mean(axis=1).reshape(shape)
        color = [s.color[channel] * lit for channel in range(3)]
    else:
        rgb = _material_colors(mesh, face_shade, toward, hit, bary if materials.interpolated else None)
        color = list(rgb.reshape(-1, k * k, 3).mean(axis=1).reshape(*shape, 3).transpose(2, 0, 1))
    for channel in range(3):
        image[channel, rows, cols] = color[channel] + image[channel, rows, cols] * missed
    return image


def _material_colors(mesh: Mesh, shade: np.ndarray, toward: np.ndarray, hit: np.ndarray, bary) -> np.ndarray:
    """Kd * texture(uv) * vertex colour * shade of every sample [N, 3] (0 for a miss).

    ``bary`` = the hits' (u, v) when colours vary over faces (else None).
    Where faces coincide, the colour is that of the twin facing the camera.
    """
    materials, twins = mesh.materials, mesh.twins
    shown = np.arange(len(materials)) if twins is None else front_twins(twins[0], toward)
    face_rgb = np.zeros((len(shade), 3), np.float32)
    face_rgb[:-1] = materials.kd[shown] * shade[:-1, None]
    rgb = face_rgb[hit]
    if bary is None:
        return rgb
    samples = np.nonzero(hit >= 0)[0]
    faces = hit[samples]
    u, v = bary[0][samples], bary[1][samples]  # weights of corners 1 and 2
    weights = np.stack([1.0 - u - v, u, v], axis=1)
    if twins is not None:  # the same point in the corner order of the twin that shows
        _, rank = twins
        canonical = np.empty_like(weights)
        np.put_along_axis(canonical, rank[faces], weights, axis=1)
        faces = shown[faces]
        weights = np.take_along_axis(canonical, rank[faces], axis=1)
    if materials.vertex_rgb is not None:
        rgb[samples] *= np.einsum("nc,ncj->nj", weights, materials.vertex_rgb[faces])
    texture = materials.texture[faces]
    for t in np.unique(texture[texture >= 0]):
        where = np.nonzero(texture == t)[0]
        uv = np.einsum("nc,ncj->nj", weights[where], materials.uv[faces[where]])
        rgb[samples[where]] *= sample_texture(materials.images[t][..., :3], uv, materials.wrap[t])
    return rgb


def hit_uv(mesh: Mesh, hit: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The texture coordinates [N, 2] of hits on faces ``hit`` [N] (>= 0) at barycentric weights (u, v) of corners 1, 2."""
    weights = np.stack([1.0 - u - v, u, v], axis=1)
    return np.einsum("nc,ncj->nj", weights, mesh.materials.uv[hit])


def usable_cores() -> int:
    """The cores this process may run on (Linux), else all of the machine's: the backends' default thread count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
