"""The shading of a whole batch of views in torch, on the device where the images end (the gl backend's).

The same shading as `semkit.render.shading` (which embree runs in numpy, one
view at a time), from the same inputs: for each sample, the face it sees and
the barycentric weights of the hit. Here the samples of every view of a
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
    kd: torch.Tensor | None = None  # [F, 3]
    texture: torch.Tensor | None = None  # [F] long, -1 for none
    uv: torch.Tensor | None = None  # [F, 3, 2]
    images: tuple = ()  # [H, W, 3] each
    wrap: tuple = ()
    vertex_rgb: torch.Tensor | None = None  # [F, 3, 3]
    group: torch.Tensor | None = None  # [F] long: coincident faces share a group
    rank: torch.Tensor | None = None  # [F, 3] long
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

    kept = MeshTensors(put(mesh.face_normals), put(mesh.triangles[:, 0]))
    m = mesh.materials if materials else None
    if m is not None:
        kept.kd, kept.texture, kept.uv, kept.vertex_rgb = put(m.kd), put(m.texture), put(m.uv), put(m.vertex_rgb)
        kept.images = tuple(put(image[..., :3].copy()) for image in m.images)
        kept.wrap = tuple(m.wrap)
        if mesh.twins is not None:
            kept.group, kept.rank = put(mesh.twins[0]), put(mesh.twins[1])
            kept.n_groups = int(mesh.twins[0].max()) + 1
    with _kept_lock:
        by_key[(str(device), materials)] = kept
    return kept


def shade_batch(
    settings: RenderSettings,
    mesh: Mesh,
    out: torch.Tensor,
    ids: torch.Tensor,
    bary: torch.Tensor | None,
    pixel: torch.Tensor,
    views: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    """Draw the object into ``out`` [B * H * W, 3] (the background, channels last), changed in place.

    ``ids`` [P, k * k] int: for the k x k samples of P pixels, 1 + view *
    F + the face seen (of F faces; 0 for a miss); ``bary`` [P, k * k, 2]:
    the hits' barycentric weights of corners 1 and 2 (None unless colours
    vary over faces); ``pixel`` [P]: each pixel's row of ``out``;
    ``views``: (eye [V, 3], unit light [V, 3], ambient [V], intensity [V])
    on ``out``'s device.
    """
    s = settings
    m = mesh.materials if s.materials else None
    t = mesh_tensors(mesh, out.device, m is not None)
    eyes, lights, ambient, intensity = views
    kk = ids.shape[1]
    flat = ids.reshape(-1)

    # Flat two-sided shading of every face in every view [V, F]: the normal turned toward the camera, then
    # ambient + intensity * max(0, n . light); the tables' row 0 is a miss.
    toward = _toward(t, eyes)
    cos = (lights @ t.normals.T) * torch.where(toward, 1.0, -1.0)
    lit = ambient[:, None] + intensity[:, None] * cos.clamp(min=0.0)
    # Each table row ends in 1 for a hit (0 for a miss): its mean over a pixel's samples is the object's coverage.
    if m is None:
        table = torch.stack([lit.reshape(-1), torch.ones_like(lit).reshape(-1)], dim=1)
        mean = torch.cat([lit.new_zeros(1, 2), table]).index_select(0, flat).view(-1, kk, 2).mean(dim=1)
        color = mean[:, :1] * torch.tensor(s.color, dtype=torch.float32, device=out.device)
    else:
        # Of coincident faces, the copy facing the camera shows.
        shown = _front_twins(t, toward) if t.group is not None else torch.arange(len(t.kd), device=out.device).expand_as(lit)
        table = torch.cat([t.kd[shown] * lit[..., None], torch.ones_like(lit)[..., None]], dim=2).reshape(-1, 4)
        rgb = torch.cat([lit.new_zeros(1, 4), table]).index_select(0, flat)
        if m.interpolated:
            varies = torch.ones_like(shown, dtype=torch.bool) if t.vertex_rgb is not None else t.texture[shown] >= 0
            samples = torch.nonzero(torch.cat([varies.new_zeros(1), varies.reshape(-1)]).index_select(0, flat)).squeeze(1)
            row = flat.index_select(0, samples).long() - 1  # view * F + face
            uv = bary.reshape(-1, 2).index_select(0, samples)
            faces = row % len(t.kd)
            part = rgb.index_select(0, samples)
            _interpolate(t, part[:, :3], faces, shown.reshape(-1).index_select(0, row), uv[:, 0], uv[:, 1])
            rgb.index_copy_(0, samples, part)
        mean = rgb.view(-1, kk, 4).mean(dim=1)
        color = mean[:, :3]
    missed = 1.0 - mean[:, -1:]
    out.index_copy_(0, pixel, color + out.index_select(0, pixel) * missed)


def _toward(t: MeshTensors, eyes: torch.Tensor) -> torch.Tensor:
    """Whether each face's front side faces each camera [V, F]."""
    chunk = max(1, 2**22 // max(len(t.normals), 1))  # views at a time: at most 4M face-view pairs in memory
    return torch.cat([((part[:, None] - t.first_corner) * t.normals).sum(2) >= 0 for part in eyes.split(chunk)])


def _front_twins(t: MeshTensors, toward: torch.Tensor) -> torch.Tensor:
    """For each view and face [V, F], the coincident face whose material shows (as `semkit.scene.front_twins`)."""
    V, F = toward.shape
    key = torch.arange(F, device=toward.device) + torch.where(toward, 0, F)
    group = t.group.expand(V, F)
    best = torch.full((V, t.n_groups), 2 * F, dtype=key.dtype, device=toward.device)
    best.scatter_reduce_(1, group, key, "amin")
    return best.gather(1, group) % F


def _interpolate(t: MeshTensors, rgb: torch.Tensor, faces, shown, u: torch.Tensor, v: torch.Tensor) -> None:
    """Multiply ``rgb`` [N, 3] by the vertex colours and textures of the ``shown`` faces at the hits (u, v) on ``faces``."""
    weights = torch.stack([1.0 - u - v, u, v], dim=1)
    if t.group is not None:  # the same point in the corner order of the twin that shows
        canonical = torch.empty_like(weights).scatter_(1, t.rank[faces], weights)
        weights = canonical.gather(1, t.rank[shown])
    if t.vertex_rgb is not None:
        rgb *= (weights[:, :, None] * t.vertex_rgb[shown]).sum(1)
    texture = t.texture[shown]
    for i, (image, wrap) in enumerate(zip(t.images, t.wrap)):
        where = torch.nonzero(texture == i).squeeze(1)
        if len(where):
            uv = (weights[where, :, None] * t.uv[shown[where]]).sum(1)
            rgb[where] *= sample_texture(image, uv, wrap)
