"""Plots that make a whole figure of several panels (their names end in ``_figure``); each returns the figure."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import xarray as xr

from ..criterion import Criterion
from .axes import curve, heatmap, render_strip, score_of
from .boxes import loss_traces, traces


def search_figure(regions: xr.Dataset, start: int = 0):
    """How one start's boxes grew: the bounds of each parameter and the losses over the steps, side by side.

    Parameters
    ----------
    regions : Dataset
        Regions from [`find_regions`][semkit.find_regions], with their traces.
    start : int
        Which start's boxes (its index).

    Returns
    -------
    matplotlib Figure
        One panel per parameter ([`traces`][semkit.plot.traces]) and one of the losses ([`loss_traces`][semkit.plot.loss_traces]).
    """
    import matplotlib.pyplot as plt

    params = [str(p) for p in regions.param.values]
    fig, axes = plt.subplots(1, len(params) + 1, figsize=(5.3 * (len(params) + 1), 3.4), layout="constrained")
    for ax, param in zip(axes, params):
        traces(regions, start=start, param=param, ax=ax)
    loss_traces(regions, start=start, ax=axes[-1])
    return fig


def facets_figure(result: Any, draw, rows: str | None = None, cols: str | None = None, *,
                  size: tuple[float, float] = (4.6, 3.0), subplot_kw: dict | None = None,
                  options: Mapping[str, Any] | None = None):
    """A figure of panels, one per value of the dims ``rows`` x ``cols`` of ``result``, each drawn by ``draw``.

    E.g. ``facets_figure(maps, heatmap, rows="shape", cols="network")``. Option values that are xarray objects
    with those dims are selected panel by panel too
    (``facets_figure(regions, plot.regions, cols="network", options={"semantic_map": maps})``).

    Parameters
    ----------
    result : Dataset or DataArray or dict
        The results to split into panels; a dict of results: one panel per entry, in one row, titled by its key.
    draw : callable
        Draws one panel: ``draw(panel, ax=ax, **options)``, e.g. [`heatmap`][semkit.plot.heatmap].
    rows : str, optional
        A dim of ``result`` with one row of panels per value; None: one row.
    cols : str, optional
        A dim of ``result`` with one column of panels per value; None: one column.
    size : tuple of float
        Width and height of each panel, in inches.
    subplot_kw : dict, optional
        Matplotlib's keywords for each panel's axes, e.g. ``{"projection": "polar"}``.
    options : mapping, optional
        Further keywords for ``draw``.

    Returns
    -------
    matplotlib Figure
        The figure of panels.
    """
    import matplotlib.pyplot as plt

    if isinstance(result, dict):
        cells = [[(title, value, {})] for title, value in result.items()]
        cells = [list(row) for row in zip(*cells)]  # one row
    else:
        row_values = list(result[rows].values) if rows else [None]
        col_values = list(result[cols].values) if cols else [None]
        cells = [[(None, result.sel(_where(rows, r, cols, c)), _where(rows, r, cols, c)) for c in col_values] for r in row_values]
    fig, axes = plt.subplots(len(cells), len(cells[0]), figsize=(size[0] * len(cells[0]), size[1] * len(cells)),
                             squeeze=False, layout="constrained", subplot_kw=subplot_kw)
    for i, row in enumerate(cells):
        for j, (title, panel, where) in enumerate(row):
            extra = {k: v.sel({d: x for d, x in where.items() if d in v.dims}) if isinstance(v, (xr.Dataset, xr.DataArray)) else v
                     for k, v in (options or {}).items()}
            draw(panel, ax=axes[i, j], **extra)
            if title is not None:
                axes[i, j].set_title(title)
    return fig


def _colour(metric: str, index: int) -> str:
    """The colour of the region algorithm an "SRVR <title>" metric names (C<index> for one semkit does not know)."""
    from ..regions import ALGORITHMS, style

    title = metric[len("SRVR "):]
    return next((colour for name, colour in (style(n) for n in ALGORITHMS.names()) if name == title), f"C{index}")


def _where(rows: str | None, r: Any, cols: str | None, c: Any) -> dict[str, Any]:
    return {k: v for k, v in ((rows, r), (cols, c)) if k is not None}


def renders_figure(semantic_map: xr.Dataset | xr.DataArray, f, strip: xr.Dataset | xr.DataArray, *, hue: str | None = None,
                   show_correct: bool = True, criterion: Any = None):
    """A map above the renders ``f`` makes along a 1-D slice of it, so one sees what the network saw.

    Parameters
    ----------
    semantic_map : Dataset or DataArray
        The map: drawn as a curve when 1-D (besides ``hue``), else as a heat map.
    f : SemanticFunction
        What renders and classifies the views of ``strip`` ([`render_strip`][semkit.plot.render_strip]).
    strip : Dataset or DataArray
        A 1-D slice of the map, e.g. ``ds.sel(elevation=20, method="nearest")``.
    hue : str, optional
        For a 1-D map: a dim to draw one line per value of.
    show_correct : bool, default True
        Mark the views that pass ``criterion``.
    criterion : Criterion or str, optional
        What passes; None: the map's ``correct`` variable (top-1 correct).

    Returns
    -------
    matplotlib Figure
        The map's panel above the strip of renders.
    """
    import matplotlib.pyplot as plt

    fig, (ax, below) = plt.subplots(2, 1, figsize=(8, 6), height_ratios=[3, 1.2], layout="constrained")
    if len([d for d in score_of(semantic_map).dims if d != hue]) == 1:
        curve(semantic_map, hue, ax=ax, show_correct=show_correct, criterion=criterion)
    else:
        heatmap(semantic_map, ax=ax, show_correct=show_correct, criterion=criterion)
    render_strip(f, strip, ax=below)
    return fig


def looks_figure(semantic_map: xr.Dataset, functions: dict, *, azimuths: Any = (0, 45, 90, 135, 180, 225, 270, 315)):
    """A 1-D map under several looks, and the renders of each look at some azimuths.

    Parameters
    ----------
    semantic_map : Dataset
        The looks' 1-D maps concatenated along a ``look`` dim.
    functions : dict of str to SemanticFunction
        Each look's SemanticFunction by the look's name, from [`semkit.studies.looks`][semkit.studies.looks].
    azimuths : sequence of float
        Where to render each look, in degrees.

    Returns
    -------
    matplotlib Figure
        The curves, one per look, above one strip of renders per look.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1 + len(functions), 1, figsize=(8, 3 + 1.3 * len(functions)),
                             height_ratios=[3] + [1.2] * len(functions), layout="constrained")
    curve(semantic_map, hue="look", ax=axes[0])
    first = next(iter(functions.values()))
    axes[0].set_title(f"{first.classifier.name} on {first.mesh.name}, {len(functions)} looks")
    for ax, (name, f) in zip(axes[1:], functions.items()):
        render_strip(f, np.asarray(azimuths, dtype=float)[:, None] if f.space.n == 1 else azimuths, ax=ax)
        ax.set_ylabel(name, fontsize=8)
    return fig


def comparison_figure(comparison: xr.Dataset, maps: xr.Dataset | None = None,
                      criterion: Criterion | str | None = None):
    """Accuracy over the space against SRVR per region algorithm, one point per network with its intervals over shapes.

    Beside it, with ``maps``, each shape's accuracy under the same criterion.

    Parameters
    ----------
    comparison : Dataset
        A comparison from [`compare_networks`][semkit.compare_networks].
    maps : Dataset, optional
        The networks' maps, for a panel of each shape's accuracy; None: no such panel.
    criterion : Criterion or str, optional
        One of the comparison's criteria; None: its first.

    Returns
    -------
    matplotlib Figure
        The comparison's panel and, with ``maps``, the per-shape panel.
    """
    import matplotlib.pyplot as plt

    c = comparison.sel(criterion=Criterion.resolve(criterion).name) if criterion is not None else comparison.isel(criterion=0)
    fig, axes = plt.subplots(1, 2 if maps is not None else 1, figsize=(12 if maps is not None else 6, 4.2),
                             squeeze=False, layout="constrained")
    a = axes[0, 0]
    x = c.sel(metric="accuracy over the space")
    srvr_metrics = [str(m) for m in c.metric.values if str(m).startswith("SRVR ")]
    markers = "osD^vPX*"  # one marker per network, one colour per region algorithm: no labels to overlap
    for j, metric in enumerate(srvr_metrics):
        y = c.sel(metric=metric)
        for k, network in enumerate(c.network.values):
            xn, yn = x.sel(network=network), y.sel(network=network)
            a.errorbar(float(xn["mean"]), float(yn["mean"]), fmt=markers[k % len(markers)], color=_colour(metric, j),
                       xerr=[[float(xn["mean"] - xn.ci_low)], [float(xn.ci_high - xn["mean"])]],
                       yerr=[[float(yn["mean"] - yn.ci_low)], [float(yn.ci_high - yn["mean"])]], capsize=3, ms=6)
    if srvr_metrics:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=_colour(m, j), marker="o", ls="", label=m[len("SRVR "):])
                   for j, m in enumerate(srvr_metrics)]
        handles += [Line2D([], [], color="0.3", marker=markers[k % len(markers)], ls="",
                           label=str(n).replace("efficientnet_", "")) for k, n in enumerate(c.network.values)]
        a.legend(handles=handles, fontsize=8, title="regions (colour), networks (marker)", title_fontsize=8)
    a.set(xlabel=f"accuracy over the semantic space (share of grid points, {c.criterion.item()})",
          ylabel="SRVR (mean region volume / space)",
          title=f"accuracy against semantic robustness ({comparison.attrs['shapes']} shapes, "
                f"{comparison.attrs['confidence']:.0%} intervals)")
    a.grid(alpha=0.3)
    if maps is not None:
        good = Criterion.parse(c.criterion.item()).on_map(maps)
        over = [d for d in good.dims if d not in ("network", "shape")]
        good.mean(over).to_pandas().T.plot.bar(ax=axes[0, 1], ylabel=f"accuracy over the space ({c.criterion.item()})",
                                               title="per shape")
        axes[0, 1].legend(fontsize=8)
    return fig
