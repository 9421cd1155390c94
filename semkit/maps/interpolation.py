"""A map read back as a semantic function: [`MapFunction`][semkit.maps.interpolation.MapFunction] interpolates its scores (no renders).

A periodic parameter whose grid closes the circle interpolates across its
period (357 -> 0 degrees); a grid over part of a period is held at its ends.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import xarray as xr

from ..space import Space, recorded_space


class MapFunction:
    """A map as a function: multilinear interpolation of its ``score`` between grid points.

    Lets regions, and anything else that takes an f, run on a saved map instead of the network (the paper's
    maps, a map made elsewhere), with no renders. A periodic parameter whose grid closes the circle interpolates
    across its period (357 -> 0 degrees); a bounded one, or a grid over part of a period, is held at its first or
    last grid value beyond the grid.

    Parameters
    ----------
    semantic_map : Dataset or DataArray
        A complete map (its ``score``, or the scores themselves) over the Space's parameters and no other dims
        (select or average those first).
    space : Space, optional
        The Space of the map; None: the one the map records.

    Raises
    ------
    ValueError
        If the map's dims are not the Space's parameters, or it holds NaN or infinite scores.
    """
    def __init__(self, semantic_map: xr.Dataset | xr.DataArray, *, space: Space | None = None) -> None:
        from scipy.interpolate import RegularGridInterpolator

        score = semantic_map["score"] if isinstance(semantic_map, xr.Dataset) else semantic_map
        space = recorded_space(semantic_map, space)
        extra = set(score.dims) - set(space.names)
        if extra:
            raise ValueError(f"the map has dims {sorted(extra)} beyond the Space's {list(space.names)}: select or average them first")
        missing = [name for name in space.names if name not in score.dims]
        if missing:
            raise ValueError(f"the map has no dims {missing} of the Space")
        score = score.transpose(*space.names)
        values = np.asarray(score.values, dtype=float)
        if not np.isfinite(values).all():
            raise ValueError("the map holds NaN or infinite scores (is it complete?)")
        axes = []
        closed = []
        for i, p in enumerate(space.parameters):
            x = np.asarray(score[p.name].values, dtype=float)
            # a periodic grid that covers its period closes the circle: the first slice again, one period on;
            # one that covers part of it (say azimuth 0..180) is held at its ends like a bounded one
            circle = space.closes_circle(p.name, x)
            if circle:
                x = np.r_[x, x[0] + p.width]
                values = np.concatenate([values, values.take([0], axis=i)], axis=i)
            closed.append(circle)
            axes.append(x)
        self.space = space
        self.attrs = dict(getattr(semantic_map, "attrs", {}))
        digest = hashlib.sha256(values.tobytes())
        for x in axes:
            digest.update(x.tobytes())
        self.digest = digest.hexdigest()[:16]  #: of the grid and its scores: what the interpolation depends on
        self._lo = np.array([x[0] for x in axes])
        self._hi = np.array([x[-1] for x in axes])
        self._closed = np.array(closed)
        self._interp = RegularGridInterpolator(axes, values, method="linear")

    def __call__(self, points: Any) -> np.ndarray:
        pts = self.space.points(points)
        # wrap periodic values onto the grid's own period (a partial periodic grid: onto the Space's), then hold
        # what lies beyond the grid at its edges
        widths = self.space.widths
        origin = np.where(self._closed, self._lo, self.space.lower)
        pts = np.where(self.space.periodic, origin + np.mod(pts - origin, widths), pts)
        partial = self.space.periodic & ~self._closed
        outside = partial & ((pts < self._lo) | (pts > self._hi))
        nearer_lo = np.mod(self._lo - pts, widths) < np.mod(pts - self._hi, widths)  # around the circle
        pts = np.where(outside, np.where(nearer_lo, self._lo, self._hi), pts)
        return self._interp(np.clip(pts, self._lo, self._hi))

    def describe(self) -> dict[str, Any]:
        """What this function is, as plain values (dataset attrs): the map's label, network and shape, a hash of its
        grid and scores, and its Space; stores are matched on it.
        """
        info = {k: self.attrs[k] for k in ("label", "label_name", "network", "shape") if k in self.attrs}
        return {**info, "interpolated_map": self.digest, "space": self.space.to_dict()}
def interpolate(semantic_map: xr.Dataset | xr.DataArray, *, space: Space | None = None) -> MapFunction:
    """The map ``semantic_map`` as a function of points [B, n] (see [`MapFunction`][semkit.maps.interpolation.MapFunction]).

    Parameters
    ----------
    semantic_map : Dataset or DataArray
        A complete map (its ``score``, or the scores themselves) over the Space's parameters and no other dims.
    space : Space, optional
        The Space of the map; None: the one the map records.

    Returns
    -------
    MapFunction
        Multilinear interpolation of the map's scores; no renders.

    Raises
    ------
    ValueError
        If the map's dims are not the Space's parameters, or it holds NaN or infinite scores.
    """
    return MapFunction(semantic_map, space=space)
