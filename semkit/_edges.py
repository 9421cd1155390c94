"""Gradients of hard-rasterized images with respect to the geometry, by edge sampling.

A hard render (one visible face per raster pixel) is piecewise constant in
the camera parameters: its derivative is zero almost everywhere and the
change happens where edges sweep over pixels. Following the idea of
nvdiffrast's antialiasing op, for every pair of neighbouring pixels that
see different faces we locate, on the segment between their centres, the
edge that separates them, as a differentiable function of the projected
vertices, and blend the two pixel values by the area that edge position
implies. The blend is returned as a zero-valued correction whose gradient
is the derivative of the box-filtered image with respect to edge motion:
summed over pixels it is exact for straight edges. Each edge is handled by
the pixel pairs across its dominant direction (horizontal pairs for steep
edges, vertical pairs for flat ones), so none is counted twice.

Silhouettes, occlusion boundaries and creases between differently shaded
faces are all handled alike: the separating edge is the front face's.
"""

from __future__ import annotations

import torch


def project(vertices: torch.Tensor, eye: torch.Tensor, axes: torch.Tensor, fov: float, size: int) -> torch.Tensor:
    """Raster coordinates [B, V, 2] (column, row; pixel centres at integers) of world vertices [V, 3]."""
    cam = torch.einsum("bij,bvj->bvi", axes, vertices[None] - eye[:, None, :])
    t = torch.tan(torch.deg2rad(torch.tensor(fov / 2.0, dtype=cam.dtype, device=cam.device)))
    z = cam[..., 2].clamp(min=1e-6)
    x_ndc = cam[..., 0] / (z * t)
    y_ndc = cam[..., 1] / (z * t)
    return torch.stack([(x_ndc + 1.0) * size / 2.0 - 0.5, (1.0 - y_ndc) * size / 2.0 - 0.5], dim=-1)


def edge_correction(
    face_ids: torch.Tensor,
    values: torch.Tensor,
    xy: torch.Tensor,
    faces: torch.Tensor,
) -> torch.Tensor:
    """A correction [C, B, H, W] whose value is 0 and whose gradient moves edges.

    face_ids [B, H, W]: visible face per raster pixel (-1 for background);
    values [C, B, H, W]: what each pixel shows (gradients pass through too);
    xy [B, V, 2]: raster positions of the vertices (differentiable);
    faces [F, 3]: vertex indices.
    """
    C, B, H, W = values.shape
    delta = values.new_zeros(C, B * H * W)
    for axis in (1, 0):  # pairs along rows (neighbours in x), then along columns (in y)
        found = _pair_blends(face_ids, values, xy, faces, axis)
        if found is not None:
            index, contribution = found
            delta = delta.index_add(1, index, contribution)
    delta = delta.view(C, B, H, W)
    return delta - delta.detach()


def _pair_blends(face_ids, values, xy, faces, axis: int):
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
    fp = ids_p[b, i, j]
    fq = ids_q[b, i, j]
    along = j if axis == 1 else i  # coordinate of p along the segment (q is at along + 1)
    across = i if axis == 1 else j  # the fixed coordinate of the segment
    coord = 0 if axis == 1 else 1  # which of (x, y) varies along the segment

    # Cross-section of each face with the line through the segment: [low, high] and the edges there.
    lo_p, hi_p, hi_edge_p = _cross_section(fp, b, across, xy, faces, coord)
    lo_q, hi_q, lo_edge_q = _cross_section(fq, b, across, xy, faces, coord, want_low=True)
    has_p, has_q = fp >= 0, fq >= 0
    a = along.to(xy.dtype)
    # The boundary is the front face's edge: p's face ends at hi_p, q's face begins at lo_q.
    q_under_p = has_q & (lo_q.detach() <= a)  # q's face reaches p's centre, yet p sees its own face
    p_under_q = has_p & (hi_p.detach() >= a + 1)
    use_p = has_p & (~has_q | q_under_p | ~p_under_q & (hi_p.detach() <= lo_q.detach()))
    use_q = has_q & ~use_p
    boundary = torch.where(use_p, hi_p, lo_q)
    edge_dir = torch.where(use_p[:, None], hi_edge_p, lo_edge_q)  # [N, 2] edge direction (dx, dy)
    steep = edge_dir[:, 1 - coord].abs() >= edge_dir[:, coord].abs()  # edge runs across the segment
    keep = (use_p | use_q) & steep & torch.isfinite(boundary)
    if not keep.any():
        return None
    b, i, j, boundary, a = b[keep], i[keep], j[keep], boundary[keep], a[keep]
    tau = (boundary - a).clamp(0.0, 1.0)  # boundary position from p's centre, in pixels
    qi, qj = (i, j + 1) if axis == 1 else (i + 1, j)
    vp = values[:, b, i, j]
    vq = values[:, b, qi, qj]
    # Pixel p spans [a - 1/2, a + 1/2]: a boundary before its far edge gives (1/2 - tau) of it to q's value;
    # pixel q spans [a + 1/2, a + 3/2]: a boundary past its near edge gives (tau - 1/2) of it to p's value.
    H, W = face_ids.shape[1:]
    index = torch.cat([(b * H + i) * W + j, (b * H + qi) * W + qj])
    contribution = torch.cat([(0.5 - tau).clamp(min=0.0) * (vq - vp), (tau - 0.5).clamp(min=0.0) * (vp - vq)], dim=1)
    return index, contribution


def _cross_section(face, b, across, xy, faces, coord: int, want_low: bool = False):
    """Where the line (other coordinate = across) enters and leaves each face.

    Returns (low, high, edge direction at the requested end) for faces >= 0;
    entries for background (-1) are +/-inf and unused.
    """
    n = len(face)
    other = 1 - coord
    valid = face >= 0
    tri = xy[b[:, None], faces[face.clamp(min=0)]]  # [N, 3, 2]
    start, end = tri, tri.roll(-1, dims=1)  # edges v0v1, v1v2, v2v0
    s0, s1 = start[..., other], end[..., other]
    line = across.to(xy.dtype)[:, None]
    crosses = ((s0 - line) * (s1 - line) <= 0) & (s0 != s1)
    t = (line - s0) / torch.where(s0 != s1, s1 - s0, torch.ones_like(s0))
    hit = start[..., coord] + t * (end[..., coord] - start[..., coord])  # [N, 3]
    inf = torch.full_like(hit, float("inf"))
    low = torch.where(crosses, hit, inf).min(dim=1)
    high = torch.where(crosses, hit, -inf).max(dim=1)
    pick = low.indices if want_low else high.indices
    direction = (end - start)[torch.arange(n, device=xy.device), pick]
    low_v = torch.where(valid, low.values, inf[:, 0])
    high_v = torch.where(valid, high.values, -inf[:, 0])
    return low_v, high_v, direction
