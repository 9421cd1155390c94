"""The shading of a whole batch of views in torch, on the device where the images end (the gl backend's).

The same shading as `semkit.render.shading` (which embree runs in numpy, one
view at a time), from the face each sample sees; where colours vary over a
face (textures, vertex colours) the point hit is that of the sample's ray on
that face, found here (as embree's ray finds it). Here the samples of every view of a
batch come as one tensor, so a batch is shaded in a few tensor operations
(on a GPU, without the images passing through Python per view): the flat,
two-sided shade of the face seen, times its Kd with materials, its texture
at the hit's UV (with the texture's wrap) and its vertex colours; of
coincident faces the copy facing the camera shows. Subsamples are averaged
and the background fills the fraction of a pixel's samples that missed.

A mesh's arrays (normals, materials, textures) go to a device once and are
kept while the mesh lives.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass

import torch

from ..scene import Mesh, sample_texture
from .settings import RenderSettings


@dataclass
class MeshTensors:
    """A mesh's arrays that shading reads, on one device (materials only where drawn)."""

    normals: torch.Tensor  # [F, 3]
    first_corner: torch.Tensor  # [F, 3]
    plane: torch.Tensor  # [F]: normal . first corner (a camera sees a face's front where normal . eye >= plane)
    edges: torch.Tensor | None = None  # [F, 2, 3]: corner 1 - corner 0, corner 2 - corner 0 (where colours vary)
    kd: torch.Tensor | None = None  # [F, 3]
    texture: torch.Tensor | None = None  # [F] long, -1 for none
    uv: torch.Tensor | None = None  # [F, 3, 2]
    images: tuple = ()  # [H, W, 3] each
    wrap: tuple = ()
    vertex_rgb: torch.Tensor | None = None  # [F, 3, 3]
    group: torch.Tensor | None = None  # [F] long: coincident faces share a group
    n_groups: int = 0


_kept: "weakref.WeakKeyDictionary[Mesh, dict]" = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def mesh_tensors(mesh: Mesh, device: torch.device, materials: bool) -> MeshTensors:
    """The mesh's shading arrays on ``device`` (copied there once per mesh, device and materials)."""
    with _kept_lock:
        by_key = _kept.setdefault(mesh, {})
        kept = by_key.get((str(device), materials))
        if kept is not None:
            return kept

    def put(array):
        return None if array is None else torch.as_tensor(array).to(device)

    normals, first = put(mesh.face_normals), put(mesh.triangles[:, 0])
    kept = MeshTensors(normals, first, (normals * first).sum(1))
    m = mesh.materials if materials else None
    if m is not None:
        kept.kd, kept.texture, kept.uv, kept.vertex_rgb = put(m.kd), put(m.texture), put(m.uv), put(m.vertex_rgb)
        if m.interpolated:
            kept.edges = put(mesh.triangles[:, 1:] - mesh.triangles[:, :1])
        kept.images = tuple(put(image[..., :3].copy()) for image in m.images)
        kept.wrap = tuple(m.wrap)
        if mesh.twins is not None:
            kept.group = put(mesh.twins[0])
            kept.n_groups = int(mesh.twins[0].max()) + 1
    with _kept_lock:
        by_key[(str(device), materials)] = kept
    return kept


@dataclass
class Tiles:
    """Where a batch's views lie in a raster of tiles, a grid ``columns`` wide of th x tw pixels (k x k samples each).

    View i's tile is cell (i // columns, i % columns) of the grid and shows the
    pixels of image ``image[i]`` whose top-left is ``corner[i]`` (row, column).
    """

    columns: int
    th: int
    tw: int
    image: torch.Tensor  # [V] long
    corner: torch.Tensor  # [V, 2] long


def shade_batch(
    settings: RenderSettings,
    mesh: Mesh,
    out: torch.Tensor,
    ids: torch.Tensor,
    tiles: Tiles,
    views: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    """Draw the object into ``out`` [B * H * W, 3] (the background, channels last), changed in place.

    ``ids`` [rows * th * k, columns * tw * k] int: the raster of the views'
    tiles, for each sample 1 + view * F + the face seen (of F faces; 0 for a
    miss); ``views``: (eye [V, 3], camera axes [V, 3, 3], unit light [V, 3],
    ambient [V], intensity [V]) of the V views, on ``out``'s device.
    """
    s = settings
    k, size = s.supersample, s.image_size
    m = mesh.materials if s.materials else None
    t = mesh_tensors(mesh, out.device, m is not None)
    eyes, axes, lights, ambient, intensity = views
    V, height, width = len(eyes), *ids.shape
    flat = ids.reshape(-1)

    # Flat two-sided shading of every face in every view [V, F]: the normal turned toward the camera, then
    # ambient + intensity * max(0, n . light); the tables' column 0 is a miss.
    toward = _toward(t, eyes)
    cos = (lights @ t.normals.T) * torch.where(toward, 1.0, -1.0)
    lit = ambient[:, None] + intensity[:, None] * cos.clamp(min=0.0)
    # Per sample: its colour channels, then 1 for a hit (its mean over a pixel's samples is the object's coverage).
    channels = 1 if m is None else 3
    raster = torch.empty(channels + 1, height * width, device=out.device)
    torch.gt(flat, 0, out=raster[-1])
    table = lit.new_empty(channels, 1 + lit.numel())  # column 0: a miss
    table[:, 0] = 0.0
    if m is None:
        table[0, 1:] = lit.reshape(-1)
    else:
        # Of coincident faces, the copy facing the camera shows.
        shown = _front_twins(t, toward) if t.group is not None else torch.arange(len(t.kd), device=out.device).expand_as(lit)
        kd = t.kd.T[:, shown] if t.group is not None else t.kd.T[:, None, :]
        torch.mul(kd, lit, out=table[:, 1:].view(channels, *lit.shape))
    for c in range(channels):
        torch.index_select(table[c], 0, flat, out=raster[c])
    rgb = raster[:channels]
    if m is not None and m.interpolated:
        varies = torch.ones_like(shown, dtype=torch.bool) if t.vertex_rgb is not None else t.texture[shown] >= 0
        samples = torch.nonzero(torch.cat([varies.new_zeros(1), varies.reshape(-1)]).index_select(0, flat)).squeeze(1)
        row = flat.index_select(0, samples).long() - 1  # view * F + face
        view, faces = row // len(t.kd), shown.reshape(-1).index_select(0, row)  # the face whose colours show
        # The sample's place in its image's k-times finer raster: its tile's corner + its place in the tile. Its ray
        # meets the face seen where it meets the coincident face that shows, whose corners weigh the point.
        y, x = samples // width % (tiles.th * k), samples % width % (tiles.tw * k)
        corner = tiles.corner.index_select(0, view) * k
        u, v = _hit(t, faces, eyes[view], _ray(s, axes[view], corner[:, 0] + y, corner[:, 1] + x))
        part = rgb.index_select(1, samples).T.contiguous()
        _interpolate(t, part, faces, u, v)
        rgb.index_copy_(1, samples, part.T)
    # Samples to pixels: the mean of each k x k block; coverage is the fraction of a pixel's samples that hit.
    pooled = torch.nn.functional.avg_pool2d(raster.view(-1, height, width), k)
    rows, th, tw = height // (tiles.th * k), tiles.th, tiles.tw
    pooled = pooled.view(-1, rows, th, tiles.columns, tw).permute(1, 3, 2, 4, 0).reshape(-1, pooled.shape[0])[: V * th * tw]
    color = pooled[:, :-1] * torch.tensor(s.color, dtype=raster.dtype, device=out.device) if m is None else pooled[:, :-1]
    missed = 1.0 - pooled[:, -1:]
    first = tiles.image * size * size + tiles.corner[:, 0] * size + tiles.corner[:, 1]
    arange = torch.arange(max(th, tw), device=out.device)
    pixel = (first[:, None, None] + arange[:th, None] * size + arange[:tw]).reshape(-1)
    out.index_copy_(0, pixel, color + out.index_select(0, pixel) * missed)


def _ray(s: RenderSettings, axes: torch.Tensor, row: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
    """The world direction [N, 3] of the ray through each sample (``row``, ``column``) of the k-times finer raster
    of an image, in the view of camera ``axes`` [N, 3, 3] (as `semkit.render.embree`'s image plane)."""
    n, tan = s.image_size * s.supersample, math.tan(math.radians(s.fov) / 2.0)
    x = (2.0 * column + 1.0 - n) / n * tan
    y = -(2.0 * row + 1.0 - n) / n * tan
    return x[:, None] * axes[:, 0] + y[:, None] * axes[:, 1] + axes[:, 2]


def _hit(t: MeshTensors, faces: torch.Tensor, origins: torch.Tensor, directions: torch.Tensor) -> tuple:
    """The barycentric weights (u, v) of corners 1 and 2 where each ray meets the plane of its face (Moller-Trumbore),
    kept inside the triangle (a sample at its edge may land a rounding error outside)."""
    edges = t.edges.index_select(0, faces)
    e1, e2 = edges[:, 0], edges[:, 1]
    p = torch.linalg.cross(directions, e2)
    det = (e1 * p).sum(1)
    det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
    to = origins - t.first_corner.index_select(0, faces)
    u = (to * p).sum(1) / det
    v = (directions * torch.linalg.cross(to, e1)).sum(1) / det
    u, v = u.clamp(0.0, 1.0), v.clamp(0.0, 1.0)
    over = (u + v).clamp(min=1.0)
    return u / over, v / over


def _toward(t: MeshTensors, eyes: torch.Tensor) -> torch.Tensor:
    """Whether each face's front side faces each camera [V, F]."""
    return eyes @ t.normals.T >= t.plane


def _front_twins(t: MeshTensors, toward: torch.Tensor) -> torch.Tensor:
    """For each view and face [V, F], the coincident face whose material shows (as `semkit.scene.front_twins`)."""
    V, F = toward.shape
    key = torch.arange(F, device=toward.device) + torch.where(toward, 0, F)
    group = t.group.expand(V, F)
    best = torch.full((V, t.n_groups), 2 * F, dtype=key.dtype, device=toward.device)
    best.scatter_reduce_(1, group, key, "amin")
    return best.gather(1, group) % F


def _interpolate(t: MeshTensors, rgb: torch.Tensor, shown: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> None:
    """Multiply ``rgb`` [N, 3] by the vertex colours and textures of the ``shown`` faces at their points (u, v)."""
    weights = torch.stack([1.0 - u - v, u, v], dim=1)
    if t.vertex_rgb is not None:
        rgb *= (weights[:, :, None] * t.vertex_rgb[shown]).sum(1)
    texture = t.texture[shown]
    for i, (image, wrap) in enumerate(zip(t.images, t.wrap)):
        where = torch.nonzero(texture == i).squeeze(1)
        if len(where):
            uv = (weights[where, :, None] * t.uv[shown[where]]).sum(1)
            rgb[where] *= sample_texture(image, uv, wrap)
