"""Metrics of grown regions: the paper's SRVR, volume ratios, IoU of boxes, and checks against a dense map."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..space import Space, recorded_space

# ------------------------------------------------------------------ metrics

def volume_ratio(regions: xr.Dataset, *, space: Space | None = None) -> xr.DataArray:
    """|D| / |Omega| of every final box: its volume as a share of the Space's.

    Parameters
    ----------
    regions : Dataset
        Region searches, from [`find_regions`][semkit.find_regions].
    space : Space, optional
        The regions' Space; None: the one they record.

    Returns
    -------
    DataArray
        The ratio per box, over the dims of ``regions`` less ``param``.

    Raises
    ------
    ValueError
        If ``regions`` is not a region search (no ``lower`` and ``upper`` bounds).
    """
    if not {"lower", "upper"} <= set(getattr(regions, "data_vars", ())):
        raise ValueError("volume_ratio and srvr take region searches (find_regions' results, with lower and upper "
                         f"bounds), got {type(regions).__name__} with {sorted(getattr(regions, 'data_vars', []))}: grow "
                         "regions on a map with find_regions(semkit.interpolate(the_map), starts)")
    space = recorded_space(regions, space)
    widths = xr.DataArray(space.widths, dims="param", coords={"param": list(space.names)})
    return ((regions.upper - regions.lower) / widths).prod("param")


def box_iou(first: xr.Dataset, second: xr.Dataset) -> xr.DataArray:
    """Intersection over union of the boxes of two region results, box by box.

    Parameters
    ----------
    first, second : Dataset
        Region searches, from [`find_regions`][semkit.find_regions], over the same starts.

    Returns
    -------
    DataArray
        ``iou`` per box, over the dims of both less ``param``.
    """
    lo, hi = np.maximum(first.lower, second.lower), np.minimum(first.upper, second.upper)
    inter = (hi - lo).clip(min=0).prod("param")
    union = (first.upper - first.lower).prod("param") + (second.upper - second.lower).prod("param") - inter
    return (inter / union).rename("iou")


def srvr(regions: xr.Dataset, *, space: Space | None = None) -> xr.DataArray:
    """Semantic Robustness Volume Ratio: the mean over starts of |D| / |Omega|.

    Parameters
    ----------
    regions : Dataset
        Region searches, from [`find_regions`][semkit.find_regions] (or a region [`study`][semkit.study]).
    space : Space, optional
        The regions' Space; None: the one they record.

    Returns
    -------
    DataArray
        ``srvr``, one value per algorithm (and per network and shape where ``regions`` has those dims: average them
        for the paper's per-network numbers).

    Raises
    ------
    ValueError
        If ``regions`` is not a region search (no ``lower`` and ``upper`` bounds).
    """
    out = volume_ratio(regions, space=space).mean("start")
    out.attrs = {"long_name": "SRVR (mean box volume / volume of the Space)", "units": "1"}
    return out.rename("srvr")


def check_regions(regions: xr.Dataset, semantic_map: xr.Dataset, *, criterion: Criterion | str | None = None,
                  space: Space | None = None) -> xr.Dataset:
    """Each box against a dense map of the same function, judged by one criterion.

    A statement about the map's grid points only. The passing region around a start is the connected region of
    passing grid points that holds it (neighbours across a periodic parameter's period are connected).

    Parameters
    ----------
    regions : Dataset
        Region searches, from [`find_regions`][semkit.find_regions].
    semantic_map : Dataset
        A dense map of the same function over the regions' Space (from [`semantic_map`][semkit.semantic_map]).
    criterion : Criterion or str, optional
        What a grid point must pass; None: the one the regions were grown under (verified boxes record theirs), else
        top-1 correct (the map's ``correct``). A map of a plain function has no classes: it needs a score criterion.
    space : Space, optional
        The regions' Space when they record none.

    Returns
    -------
    Dataset
        Over ``start`` and ``algorithm``: ``points`` (grid points inside the box), ``fraction_correct`` (of those,
        the share that passes), ``mean_score`` (inside the box) and ``iou`` (in grid points, of the box with the
        passing region around the start); the criterion in attrs.

    Raises
    ------
    ValueError
        The map lacks a dim of the regions' Space, or the regions were grown under several criteria and none is
        given.
    """
    space = recorded_space(regions, space)
    names = list(space.names)
    if criterion is None:
        criterion = _regions_criterion(regions)
    criterion = Criterion.resolve(criterion)
    missing = [name for name in names if name not in semantic_map.dims]
    if missing:
        raise ValueError(f"the map has no {missing} dims, but the regions' Space is {names}: check regions against a "
                         "map of the same Space")
    score = semantic_map["score"].transpose(*names)
    good = criterion.on_map(semantic_map).transpose(*names).values.astype(bool)
    grids = [np.asarray(score[name].values, dtype=float) for name in names]
    points = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1)  # [..., n]

    labels = _components(good, grids, space)

    S, A = regions.sizes["start"], regions.sizes["algorithm"]
    out = {k: np.zeros((S, A)) for k in ("points", "fraction_correct", "mean_score", "iou")}
    for s in range(S):
        u0 = regions.start_point.isel(start=s).transpose("param").values
        cell = tuple(int(np.argmin(_distance(g, u0[i], space.parameters[i]))) for i, g in enumerate(grids))
        component = labels == labels[cell] if labels[cell] > 0 else np.zeros_like(good)
        for j in range(A):
            box = regions.isel(start=s, algorithm=j)
            inside = space.in_box(points, box.lower.transpose("param").values, box.upper.transpose("param").values)
            k = int(inside.sum())
            out["points"][s, j] = k
            out["fraction_correct"][s, j] = good[inside].mean() if k else np.nan
            out["mean_score"][s, j] = score.values[inside].mean() if k else np.nan
            union = (inside | component).sum()
            out["iou"][s, j] = (inside & component).sum() / union if union else np.nan
    dims = ("start", "algorithm")
    return xr.Dataset(
        {
            "points": (dims, out["points"].astype(int), {"long_name": "map points inside the box"}),
            "fraction_correct": (dims, out["fraction_correct"], {"long_name": f"share of the box's map points that pass ({criterion.name})"}),
            "mean_score": (dims, out["mean_score"], {"long_name": "mean score inside the box"}),
            "iou": (dims, out["iou"], {"long_name": "IoU with the passing region around the start"}),
        },
        coords={"start": regions.start.values, "algorithm": regions.algorithm.values},
        attrs={**criterion.attrs(), "guarantee": "about the map's grid points only"},
    )


def _regions_criterion(regions: xr.Dataset) -> Criterion | None:
    """The criterion the regions were grown under (None when no algorithm records one); several different: an error."""
    found = {Criterion.from_attrs(m) for m in json.loads(regions.attrs.get("algorithms", "[]")) if "criterion" in m}
    found = {replace(c, label=None) for c in found if c is not None}
    if len(found) > 1:
        raise ValueError(f"these regions were grown under several criteria {sorted(c.name for c in found)}: pass "
                         "criterion= to check them by one")
    return found.pop() if found else None


def _components(good: np.ndarray, grids: list[np.ndarray], space: Space) -> np.ndarray:
    """Connected components of ``good`` (0 = not good), joined across periodic parameters' periods."""
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, count = ndimage.label(good)
    pairs = []
    for i, p in enumerate(space.parameters):
        g = grids[i]
        if space.closes_circle(p.name, g):
            first, last = labels.take(0, axis=i), labels.take(-1, axis=i)
            touch = (first > 0) & (last > 0)
            pairs.append(np.stack([first[touch], last[touch]]))
    if not pairs:
        return labels
    edges = np.concatenate(pairs, axis=1)
    graph = coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=(count + 1, count + 1))
    _, merged = connected_components(graph, directed=False)
    return np.where(labels > 0, merged[labels] + 1, 0)


def _distance(grid: np.ndarray, value: float, p) -> np.ndarray:
    d = np.abs(grid - value)
    return np.minimum(d, p.width - d) if p.periodic else d


