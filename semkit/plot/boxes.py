"""Plots of regions on one set of axes: the boxes over their map, and how they grew.

* [`regions`][semkit.regions]: boxes found by [`find_regions`][semkit.find_regions], over their map when one is given;
* [`traces`][semkit.plot.boxes.traces], [`loss_traces`][semkit.plot.boxes.loss_traces]: one start's bounds and losses over the steps, one colour per algorithm.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..regions import style
from ..space import Parameter, recorded_space
from .axes import curve, heatmap, new_axes


def regions(
    regions: xr.Dataset,
    semantic_map: xr.Dataset | xr.DataArray | None = None,
    x: str = "azimuth",
    y: str | None = "elevation",
    *,
    ax=None,
    show_correct: bool = False,
    criterion: Criterion | str | None = None,
    colorbar: bool = True,
):
    """Boxes found by [`find_regions`][semkit.find_regions], over their map when one is given.

    2-D: rectangles on the heat map, one colour per algorithm, the starts marked; a box that crosses a periodic
    parameter's period is drawn in both pieces. 1-D (``y=None``, or regions over one parameter): the curve,
    with each box as a bar under it.

    Parameters
    ----------
    regions : Dataset
        Regions from [`find_regions`][semkit.find_regions].
    semantic_map : Dataset or DataArray, optional
        The map to draw under the boxes ([`heatmap`][semkit.plot.heatmap] in 2-D, [`curve`][semkit.plot.curve] in 1-D); None: the boxes alone.
    x : str
        The parameter on the horizontal axis.
    y : str or None
        The parameter on the vertical axis; None: draw in 1-D.
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.
    show_correct : bool
        Mark the views of the map that pass ``criterion`` ([`heatmap`][semkit.plot.heatmap], [`curve`][semkit.plot.curve]).
    criterion : Criterion or str, optional
        What passes; None: the map's ``correct`` variable (top-1 correct).
    colorbar : bool
        Draw a colour bar beside a 2-D map.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    params = list(regions.param.values)
    one_d = len(params) == 1 or y is None
    if semantic_map is not None:
        ax = (curve(semantic_map, ax=ax, show_correct=show_correct, criterion=criterion) if one_d else
              heatmap(semantic_map, x=x, y=y, ax=ax, show_correct=show_correct, criterion=criterion, colorbar=colorbar))
    ax = new_axes(ax, figsize=(6.5, 4))
    limits = (ax.get_xlim(), ax.get_ylim()) if semantic_map is not None else None
    periods = _periods(regions)
    space = recorded_space(regions) if periods else None
    algorithm_names = [str(a) for a in regions.algorithm.values]
    n_starts = regions.sizes["start"]
    for j, name in enumerate(algorithm_names):
        color = style(name, j)[1]
        for s in range(n_starts):
            box = regions.isel(start=s, algorithm=j)
            lo, hi = float(box.lower.sel(param=x)), float(box.upper.sel(param=x))
            xs = space.pieces(x, lo, hi) if x in periods else [(lo, hi)]
            if one_d:
                level = -0.04 - 0.035 * j
                for a, b in xs:
                    ax.plot([a, b], [level, level], color=color, lw=3, solid_capstyle="butt")
                continue
            ylo, yhi = float(box.lower.sel(param=y)), float(box.upper.sel(param=y))
            for a, b in xs:
                for c, d in (space.pieces(y, ylo, yhi) if y in periods else [(ylo, yhi)]):
                    ax.add_patch(Rectangle((a, c), b - a, d - c, fill=False, edgecolor=color, lw=1.8))
    starts = regions.start_point
    if one_d:
        ax.plot(starts.sel(param=x), np.full(n_starts, -0.02), "k^", ms=6)
        ax.set_ylim(-0.06 - 0.035 * len(algorithm_names), 1)
    else:
        ax.plot(starts.sel(param=x), starts.sel(param=y), "k*", ms=10, mec="w")
        if semantic_map is None:
            ax.set(xlabel=x, ylabel=y)
            ax.autoscale_view()
    if limits is not None:  # the map sets the view (a periodic axis: the whole period), boxes do not widen it
        xlim = limits[0] if x not in periods else (min(limits[0][0], periods[x].low), max(limits[0][1], periods[x].high))
        ax.set_xlim(*xlim)
        if not one_d:
            ax.set_ylim(*limits[1])
    handles = [Line2D([], [], color=style(a, j)[1], lw=2, label=style(a, j)[0]) for j, a in enumerate(algorithm_names)]
    handles.append(Line2D([], [], color="k", marker="*" if not one_d else "^", ls="", label="start"))
    ax.legend(handles=handles, fontsize=8, loc="upper right", framealpha=0.8)
    return ax


def _periods(regions: xr.Dataset) -> dict[str, Parameter]:
    """The periodic parameters of the regions' Space, by name."""
    if "space" not in regions.attrs:
        return {}
    return {p.name: p for p in recorded_space(regions).parameters if p.periodic}


def traces(regions: xr.Dataset, start: int = 0, param: str | None = None, *, ax=None):
    """The bounds of one start's boxes over the steps, one colour per algorithm.

    The band between the lower and the upper bound is shaded.

    Parameters
    ----------
    regions : Dataset
        Regions from [`find_regions`][semkit.find_regions], with their traces.
    start : int
        Which start's boxes (its index).
    param : str, optional
        Which parameter's bounds; None: the first.
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    param = param or str(regions.param.values[0])
    ax = new_axes(ax, figsize=(6.5, 3.5))
    r = regions.isel(start=start)
    for j, name in enumerate(str(a) for a in regions.algorithm.values):
        lo = r.lower_trace.sel(algorithm=name, param=param).values
        hi = r.upper_trace.sel(algorithm=name, param=param).values
        it = regions.iteration.values
        title, color = style(name, j)
        ax.fill_between(it, lo, hi, color=color, alpha=0.15)
        ax.plot(it, lo, color=color, label=title)
        ax.plot(it, hi, color=color)
    units = dict(zip(regions.param.values, regions.units.values)).get(param, "") if "units" in regions.coords else ""
    point = ", ".join(f"{v:g}" for v in r.start_point.values)
    ax.set(xlabel="step", ylabel=f"{param} ({units})" if units else param, title=f"bounds of the boxes grown from ({point})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def loss_traces(regions: xr.Dataset, start: int = 0, *, ax=None):
    """Each algorithm's loss over the steps for one start, each scaled by its largest value (the losses differ).

    Parameters
    ----------
    regions : Dataset
        Regions from [`find_regions`][semkit.find_regions], with their traces.
    start : int
        Which start's boxes (its index).
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    ax = new_axes(ax, figsize=(6.5, 3.5))
    r = regions.isel(start=start)
    for j, name in enumerate(str(a) for a in regions.algorithm.values):
        loss = r.loss.sel(algorithm=name).values
        scale = np.nanmax(np.abs(loss)) or 1.0
        title, color = style(name, j)
        ax.plot(regions.iteration.values, loss / scale, color=color, label=f"{title} (/ {scale:.3g})")
    point = ", ".join(f"{v:g}" for v in r.start_point.values)
    ax.set(xlabel="step", ylabel="loss / max |loss|", title=f"losses of the boxes grown from ({point})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax
