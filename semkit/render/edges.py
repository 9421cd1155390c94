"""Gradients of hard-rasterized images with respect to the geometry, by edge sampling.

A hard render (one visible face per raster pixel) is piecewise constant in
the camera parameters: its derivative is zero almost everywhere and the
change happens where edges sweep over pixels. Following the idea of
nvdiffrast's antialiasing op, for every pair of neighbouring pixels that
see different faces we locate, on the segment between their centres, the
edge that separates them, as a differentiable function of the projected
vertices, and blend the two pixel values by the area that edge position
implies. The blend is returned as a zero-valued correction whose gradient
is the derivative of the box-filtered image with respect to edge motion.
Each edge is handled by the pixel pairs across its dominant direction
(horizontal pairs for steep edges, vertical pairs for flat ones), so none
is counted twice.

Finding the separating edge: near the silhouette of a smooth, finely
tessellated surface the face seen at a pixel usually ends at an internal
edge, with thinner faces beyond it that no pixel centre sampled. So from
each pixel's face we walk across the mesh along the segment until the
surface folds away or ends (a silhouette), or enters the face the other
pixel sees (a crease). If the walk passes the other pixel, that pixel's
surface is in front and the boundary is found from its side instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..scene import Mesh

#: Neighbours kept per edge (more only on non-manifold edges, which are rare).
_MAX_NEIGHBOURS = 2
#: Faces crossed at most when walking from a pixel's face to the edge that ends its surface.
_MAX_STEPS = 12


@dataclass
class Topology:
    """Which faces meet across each face edge.

    Vertices are merged by position and coincident duplicate faces grouped,
    since modelled meshes (ShapeNet) repeat both.
    """

    faces: torch.Tensor  #: [F, 3] vertex indices
    group: torch.Tensor  #: [F] id shared by coincident duplicate faces
    neighbour: torch.Tensor  #: [F, 3 edges, K] faces across edge k (corners k, k+1), -1 if none
    opposite: torch.Tensor  #: [F, 3 edges, K] the neighbour's vertex off that edge

    @classmethod
    def of(cls, mesh: Mesh, device: torch.device | str = "cpu") -> "Topology":
        _, merged = np.unique(np.round(mesh.vertices, 6), axis=0, return_inverse=True)
        merged = merged.reshape(-1)
        tri = merged[mesh.faces]  # [F, 3] merged vertex ids
        _, group = np.unique(np.sort(tri, axis=1), axis=0, return_inverse=True)
        group = group.reshape(-1)
        F = len(tri)
        a, b = tri, np.roll(tri, -1, axis=1)  # edge k joins corners k and k+1
        key = (np.minimum(a, b).astype(np.int64) * (merged.max() + 1) + np.maximum(a, b)).ravel()  # [3F]
        order = np.argsort(key, kind="stable")
        neighbour = np.full((F * 3, _MAX_NEIGHBOURS), -1, np.int64)
        opposite = np.full((F * 3, _MAX_NEIGHBOURS), -1, np.int64)
        starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True])
        for lo, hi in zip(starts[:-1], starts[1:]):
            if hi - lo < 2:
                continue
            members = order[lo:hi]  # directed edges (3 * face + k) on one undirected edge
            for m in members:
                others = [o for o in members if group[o // 3] != group[m // 3]][:_MAX_NEIGHBOURS]
                neighbour[m, : len(others)] = [o // 3 for o in others]
                opposite[m, : len(others)] = [mesh.faces[o // 3, (o % 3 + 2) % 3] for o in others]
        as_t = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
        return cls(
            as_t(mesh.faces), as_t(group), as_t(neighbour.reshape(F, 3, -1)), as_t(opposite.reshape(F, 3, -1))
        )


def project(vertices: torch.Tensor, eye: torch.Tensor, axes: torch.Tensor, fov: float, size: int) -> torch.Tensor:
    """Raster coordinates [B, V, 2] (column, row; pixel centres at integers) of world vertices [V, 3]."""
    cam = torch.einsum("bij,bvj->bvi", axes, vertices[None] - eye[:, None, :])
    t = torch.tan(torch.deg2rad(torch.tensor(fov / 2.0, dtype=cam.dtype, device=cam.device)))
    z = cam[..., 2].clamp(min=1e-6)
    x_ndc = cam[..., 0] / (z * t)
    y_ndc = cam[..., 1] / (z * t)
    return torch.stack([(x_ndc + 1.0) * size / 2.0 - 0.5, (1.0 - y_ndc) * size / 2.0 - 0.5], dim=-1)


def edge_correction(face_ids: torch.Tensor, values: torch.Tensor, xy: torch.Tensor, topology: Topology) -> torch.Tensor:
    """A correction [C, B, H, W] whose value is 0 and whose gradient moves edges.

    face_ids [B, H, W]: visible face per raster pixel (-1 for background);
    values [C, B, H, W]: what each pixel shows (gradients pass through too);
    xy [B, V, 2]: raster positions of the vertices (differentiable);
    topology: the mesh's faces and edge neighbours.
    """
    C, B, H, W = values.shape
    delta = values.new_zeros(C, B * H * W)
    for axis in (1, 0):  # pairs along rows (neighbours in x), then along columns (in y)
        found = _pair_blends(face_ids, values, xy, topology, axis)
        if found is not None:
            index, contribution = found
            delta = delta.index_add(1, index, contribution)
    delta = delta.view(C, B, H, W)
    return delta - delta.detach()


def _pair_blends(face_ids, values, xy, topology: Topology, axis: int):
    """Flat pixel indices [2N] and their blend contributions [C, 2N] for pairs along one axis."""
    # axis = 1: p = (i, j), q = (i, j + 1), the segment runs along x at row i.
    # axis = 0: p = (i, j), q = (i + 1, j), the segment runs along y at column j.
    if axis == 1:
        ids_p, ids_q = face_ids[:, :, :-1], face_ids[:, :, 1:]
    else:
        ids_p, ids_q = face_ids[:, :-1, :], face_ids[:, 1:, :]
    b, i, j = torch.nonzero(ids_p != ids_q, as_tuple=True)
    if len(b) == 0:
        return None
    fp, fq = ids_p[b, i, j], ids_q[b, i, j]
    coord = 0 if axis == 1 else 1  # which of (x, y) varies along the segment
    along = (j if axis == 1 else i).to(xy.dtype)  # p's coordinate along it; q is at along + 1
    line = (i if axis == 1 else j).to(xy.dtype)  # the segment's fixed coordinate

    pos_p, dir_p, ok_p = _walk(fp, fq, +1, b, line, along, xy, topology, coord)
    pos_q, dir_q, ok_q = _walk(fq, fp, -1, b, line, along, xy, topology, coord)
    use_p = ok_p
    boundary = torch.where(use_p, pos_p, pos_q)
    edge_dir = torch.where(use_p[:, None], dir_p, dir_q)
    steep = edge_dir[:, 1 - coord].abs() >= edge_dir[:, coord].abs()  # the edge runs across the segment
    keep = (ok_p | ok_q) & steep & torch.isfinite(boundary)
    if not keep.any():
        return None
    b, i, j, boundary, along = b[keep], i[keep], j[keep], boundary[keep], along[keep]
    tau = (boundary - along).clamp(0.0, 1.0)  # boundary position from p's centre, in pixels
    qi, qj = (i, j + 1) if axis == 1 else (i + 1, j)
    vp = values[:, b, i, j]
    vq = values[:, b, qi, qj]
    # Pixel p spans [a - 1/2, a + 1/2]: a boundary before its far edge gives (1/2 - tau) of it to q's value;
    # pixel q spans [a + 1/2, a + 3/2]: a boundary past its near edge gives (tau - 1/2) of it to p's value.
    H, W = face_ids.shape[1:]
    index = torch.cat([(b * H + i) * W + j, (b * H + qi) * W + qj])
    contribution = torch.cat([(0.5 - tau).clamp(min=0.0) * (vq - vp), (tau - 0.5).clamp(min=0.0) * (vp - vq)], dim=1)
    return index, contribution


def _walk(start, other, sign: int, b, line, along, xy, topology: Topology, coord: int):
    """From each pixel's face, cross the mesh along the segment to the edge that ends its surface.

    ``sign`` +1 walks from p toward q (leaving faces at their high end),
    -1 from q toward p. Returns the boundary position (differentiable), the
    boundary edge's direction, and whether a boundary was found between the
    two pixel centres.
    """
    n = len(start)
    rows = torch.arange(n, device=xy.device)
    position = xy.new_full((n,), float("nan"))
    direction = xy.new_zeros((n, 2))
    found = torch.zeros(n, dtype=torch.bool, device=xy.device)
    active = start >= 0
    face = start.clamp(min=0)
    far = along + 1.0 if sign > 0 else along  # the other pixel's centre
    for _ in range(_MAX_STEPS):
        if not active.any():
            break
        corners = topology.faces[face]  # [n, 3]
        tri = xy[b[:, None], corners]  # [n, 3, 2]
        pos, edge = _exit(tri, line, coord, sign)
        past = (pos.detach() - far) * sign > 0  # the surface reaches the other pixel: it is behind
        ends, into_other, next_face = _across(face, edge, other, tri, b, xy, topology)
        stop_here = active & ~past & (ends | into_other)
        start_edge = tri[rows, edge]
        end_edge = tri[rows, (edge + 1) % 3]
        position = torch.where(stop_here, pos, position)
        direction = torch.where(stop_here[:, None], end_edge - start_edge, direction)
        found = found | stop_here
        active = active & ~past & ~ends & ~into_other & ~torch.isnan(pos)
        face = torch.where(active, next_face, face)
    return position, direction, found


def _exit(tri, line, coord: int, sign: int):
    """Where the segment's line leaves each triangle in the walking direction, and through which edge."""
    other = 1 - coord
    start, end = tri, tri.roll(-1, dims=1)  # edge k: corners k -> k + 1
    s0, s1 = start[..., other], end[..., other]
    level = line[:, None]
    crosses = ((s0 - level) * (s1 - level) <= 0) & (s0 != s1)
    t = (level - s0) / torch.where(s0 != s1, s1 - s0, torch.ones_like(s0))
    hit = start[..., coord] + t * (end[..., coord] - start[..., coord])  # [n, 3]
    fill = torch.full_like(hit, -float("inf") if sign > 0 else float("inf"))
    candidates = torch.where(crosses, hit, fill)
    best = candidates.max(dim=1) if sign > 0 else candidates.min(dim=1)
    position = torch.where(crosses.any(dim=1), best.values, torch.full_like(best.values, float("nan")))
    return position, best.indices


def _across(face, edge, other, tri, b, xy, topology: Topology):
    """What lies across edge ``edge`` of ``face``: the surface ends (boundary or fold), or
    continues into the other pixel's face, or into ``next_face``."""
    rows = torch.arange(len(face), device=xy.device)
    a = tri[rows, edge]
    c = tri[rows, (edge + 1) % 3]
    own = tri[rows, (edge + 2) % 3]
    neighbours = topology.neighbour[face, edge]  # [n, K]
    opposite = xy[b[:, None], topology.opposite[face, edge].clamp(min=0)]  # [n, K, 2]
    d = (c - a).detach()

    def side(p: torch.Tensor) -> torch.Tensor:
        p = p.detach()
        return torch.sign(d[:, 0, None] * (p[..., 1] - a.detach()[:, 1, None]) - d[:, 1, None] * (p[..., 0] - a.detach()[:, 0, None]))

    continues = (neighbours >= 0) & (side(opposite) * side(own[:, None, :]) < 0)  # [n, K]
    same_as_other = (other[:, None] >= 0) & (topology.group[neighbours.clamp(min=0)] == topology.group[other.clamp(min=0)][:, None])
    into_other = (continues & same_as_other).any(dim=1)
    ends = ~continues.any(dim=1)
    first = torch.argmax(continues.to(torch.int8), dim=1)
    next_face = neighbours[torch.arange(len(face), device=xy.device), first].clamp(min=0)
    return ends, into_other, next_face
