"""Plots on one set of axes: each takes ``ax=`` (None: a new figure) and returns the axes.

* [`curve`][semkit.plot.axes.curve]: 1-D maps, one line per network or shape; [`polar`][semkit.plot.axes.polar]: 1-D azimuth maps around a circle;
* [`heatmap`][semkit.plot.axes.heatmap]: 2-D maps in the paper's style, labelled (names and units on the axes, a colour bar titled
  with the class, network and shape in the title); [`outline`][semkit.plot.axes.outline]: the edge of the correct cells;
* [`render_strip`][semkit.plot.axes.render_strip]: the renders along a row of a map, so one sees what the network saw;
* [`robust_accuracy`][semkit.robust_accuracy], [`decision_noise`][semkit.decision_noise]: trust results per network.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..space import DEGREES_PER_TURN, Parameter, Space, recorded_space

#: Red where the network fails, blue where it is confident (as the paper's figures).
CMAP = "RdBu"


def score_of(data: xr.Dataset | xr.DataArray) -> xr.DataArray:
    return data["score"] if isinstance(data, xr.Dataset) else data


def _axis_label(data: xr.DataArray, dim: str) -> str:
    units = data[dim].attrs.get("units", "") if dim in data.coords else ""
    return f"{dim} ({units})" if units else dim


def _label_name(data: xr.Dataset | xr.DataArray) -> str:
    names = data["label_name"].values if "label_name" in data.coords else data.attrs.get("label_name", "")
    names = np.unique(np.atleast_1d(names))
    return str(names[0]) if len(names) == 1 and str(names[0]) else "true class"


def _ylabel(data) -> str:
    name = _label_name(data)
    return f"P({name})" if name != "true class" else "P(true class)"


def _describe(data: xr.Dataset | xr.DataArray) -> str:
    """'network on shape', with 'mean over N ...' for averaged maps."""
    parts = []
    for key in ("network", "shape"):
        if key in data.dims:
            continue
        if key in data.coords and data[key].ndim == 0:
            parts.append(str(data[key].values))
        elif key in data.attrs:
            parts.append(str(data.attrs[key]))
        else:
            averaged = data.attrs.get(f"mean_over_{key}")
            parts.append(f"mean over {averaged} {key}s" if averaged else f"mean over {key}s")
    return " on ".join(parts)


def new_axes(ax, **kwargs):
    """``ax``, or the axes of a new figure (``plt.subplots(**kwargs)``) when it is None."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(**kwargs)
    return ax


def curve(semantic_map: xr.Dataset | xr.DataArray, hue: str | None = None, *, ax=None, show_correct: bool = True,
          criterion: Criterion | str | None = None, style: Mapping[str, Any] | None = None):
    """Line plot of a 1-D map, or of several, one per value of ``hue``.

    Dots mark the views that pass the criterion, so one sees where the network is right, not only its score.

    Parameters
    ----------
    semantic_map : Dataset or DataArray
        A 1-D map (its ``score`` variable is drawn), plus the ``hue`` dim when given.
    hue : str, optional
        A dim to draw one line per value of, e.g. ``"network"``; None: the map has one line.
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.
    show_correct : bool, default True
        Mark with dots the views that pass ``criterion``.
    criterion : Criterion or str, optional
        What passes; None: the map's ``correct`` variable (top-1 correct).
    style : mapping, optional
        Matplotlib line properties, e.g. ``{"lw": 2}``.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        If the map has more than one dim besides ``hue``.
    """
    score = score_of(semantic_map)
    dims = [d for d in score.dims if d != hue]
    if len(dims) != 1:
        raise ValueError(f"curve() needs a 1-D map (plus an optional hue dim); this one has dims {score.dims}")
    x = dims[0]
    ax = new_axes(ax, figsize=(7, 3.5))
    groups = [(None, semantic_map)] if hue is None else [(str(v), semantic_map.sel({hue: v})) for v in semantic_map[hue].values]
    for name, d in groups:
        s = score_of(d)
        line = ax.plot(s[x].values, s.values, label=name, **dict(style or {}))[0]
        ok = passing(d, criterion) if show_correct else None
        if ok is not None:
            ok = ok.values.astype(bool)
            ax.plot(s[x].values[ok], s.values[ok], "o", ms=3, color=line.get_color())
    ax.set(xlabel=_axis_label(score, x), ylabel=_ylabel(semantic_map), ylim=(0, 1))
    parameter = coordinate_parameter(semantic_map, x)
    if parameter is not None and parameter.periodic:
        ax.set_xlim(parameter.low, parameter.high)
    title = _describe(semantic_map)
    ax.set_title(title if hue is None else f"{title} (by {hue})".strip())
    ax.grid(alpha=0.3)
    if hue is not None:
        judged = Criterion.resolve(criterion).name if criterion is not None else "top-1 correct"
        ax.legend(title=hue + (f" (dots: {judged})" if show_correct else ""), fontsize=8, title_fontsize=8)
    return ax


def polar(semantic_map: xr.Dataset | xr.DataArray, hue: str | None = None, *, ax=None, style: Mapping[str, Any] | None = None):
    """A 1-D azimuth map around a circle (0 degrees at the top, clockwise).

    Parameters
    ----------
    semantic_map : Dataset or DataArray
        A map over ``azimuth`` (its ``score`` variable is drawn), plus the ``hue`` dim when given.
    hue : str, optional
        A dim to draw one line per value of; None: one line.
    ax : matplotlib Axes, optional
        Polar axes to draw on; None: a new figure.
    style : mapping, optional
        Matplotlib line properties.

    Returns
    -------
    matplotlib Axes
        The polar axes drawn on.

    Raises
    ------
    ValueError
        If the map is not over ``azimuth``, or ``ax`` is not polar.
    """
    score = score_of(semantic_map)
    if "azimuth" not in score.dims:
        raise ValueError("polar() plots maps over azimuth")
    ax = new_axes(ax, subplot_kw={"projection": "polar"}, figsize=(4.5, 4.5))
    if getattr(ax, "name", "") != "polar":
        raise ValueError("polar() needs polar axes: plt.subplots(subplot_kw={'projection': 'polar'})")
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)
    groups = [(None, score)] if hue is None else [(str(v), score.sel({hue: v})) for v in score[hue].values]
    for name, s in groups:
        theta = np.radians(np.r_[s.azimuth.values, s.azimuth.values[:1]])
        ax.plot(theta, np.r_[s.values, s.values[:1]], label=name, **dict(style or {}))
    ax.set_ylim(0, 1)
    ax.set_title(f"{_ylabel(semantic_map)} over azimuth\n{_describe(semantic_map)}", fontsize=10)
    if hue is not None:
        ax.legend(title=hue, fontsize=7, loc="lower left", bbox_to_anchor=(0.85, 0.85))
    return ax


def heatmap(
    semantic_map: xr.Dataset | xr.DataArray,
    x: str = "azimuth",
    y: str = "elevation",
    *,
    ax=None,
    cmap: str = CMAP,
    vmin: float = 0.0,
    vmax: float = 1.0,
    show_correct: bool = False,
    criterion: Criterion | str | None = None,
    colorbar: bool = True,
):
    """A 2-D map as a heat map, cells centred on the grid points.

    Axes carry names and units, the colour bar the class, the title the network and shape.

    Parameters
    ----------
    semantic_map : Dataset or DataArray
        A 2-D map over ``x`` and ``y`` (its ``score`` variable is drawn; select or average the other dims first).
    x : str, default "azimuth"
        The dim on the horizontal axis.
    y : str, default "elevation"
        The dim on the vertical axis.
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.
    cmap : str, default CMAP
        Matplotlib colour map (red where the network fails, blue where it is confident).
    vmin : float, default 0.0
        The score at the low end of the colour map.
    vmax : float, default 1.0
        The score at the high end of the colour map.
    show_correct : bool, default False
        Outline the cells whose views pass ``criterion`` (see [`outline`][semkit.plot.axes.outline]).
    criterion : Criterion or str, optional
        What passes; None: the map's ``correct`` variable (top-1 correct).
    colorbar : bool, default True
        Draw a colour bar beside the map.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        If the map's dims are not exactly ``x`` and ``y``.
    """
    score = score_of(semantic_map)
    if set(score.dims) != {x, y}:
        raise ValueError(f"heatmap() needs a 2-D map over ({x}, {y}); this one has dims {score.dims} (select or average the others)")
    ax = new_axes(ax, figsize=(6.5, 4))
    s = score.transpose(y, x)
    mesh = ax.pcolormesh(_edges(s[x].values), _edges(s[y].values), s.values, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    good = passing(semantic_map, criterion) if show_correct else None
    if good is not None:
        ok = good.transpose(y, x).values.astype(bool)
        if ok.any() and not ok.all():
            xv = s[x].values
            parameter = coordinate_parameter(semantic_map, x)
            closes = parameter is not None and Space([parameter]).closes_circle(x, xv)  # a grid over the whole period
            outline(ax, xv, s[y].values, ok, periodic_x=closes)
    ax.set(xlabel=_axis_label(score, x), ylabel=_axis_label(score, y), title=_describe(semantic_map))
    if colorbar:
        bar = ax.figure.colorbar(mesh, ax=ax)
        bar.set_label(_ylabel(semantic_map))
    return ax


def passing(data: xr.Dataset | xr.DataArray, criterion: Criterion | str | None = None) -> xr.DataArray | None:
    """Which views of a map pass ``criterion`` (None: its ``correct`` variable, top-1; a view without a value
    fails), or None where the map cannot say (a DataArray of scores, a map without top-1 answers)."""
    if not isinstance(data, xr.Dataset):
        return None
    if criterion is None:
        return Criterion.top1().on_map(data) if "correct" in data else None
    return Criterion.resolve(criterion).on_map(data)


def outline(ax, xs: np.ndarray, ys: np.ndarray, inside: np.ndarray, *, periodic_x: bool = False,
            style: Mapping[str, Any] | None = None):
    """Draw the boundary of the union of the cells where ``inside`` holds.

    Each cell is centred on its grid point with edges half-way between grid points (as [`heatmap`][semkit.plot.axes.heatmap] draws
    them), so the line follows cell edges: no diamonds or zigzags from contouring the cell centres.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    xs, ys : ndarray
        The grid points along x and along y.
    inside : ndarray of bool
        Which cells are inside, ``[len(ys), len(xs)]``.
    periodic_x : bool
        The x axis is periodic: its first and last columns are neighbours, with no edge between them.
    style : mapping, optional
        Matplotlib line-collection properties; black and 0.9 wide unless given.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    from matplotlib.collections import LineCollection

    ex, ey = _edges(np.asarray(xs, float)), _edges(np.asarray(ys, float))
    ok = np.asarray(inside, bool)
    padded = np.pad(ok, 1, constant_values=False)
    if periodic_x:
        padded[1:-1, 0], padded[1:-1, -1] = ok[:, -1], ok[:, 0]
    segments = []
    # vertical edges: between horizontally adjacent cells that differ (column j of edges ex[j])
    jj, ii = np.nonzero((padded[1:-1, 1:] != padded[1:-1, :-1]).T)
    segments += [((ex[j], ey[i]), (ex[j], ey[i + 1])) for j, i in zip(jj, ii)]
    # horizontal edges: between vertically adjacent cells that differ (row i of edges ey[i])
    ii, jj = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])
    segments += [((ex[j], ey[i]), (ex[j + 1], ey[i])) for i, j in zip(ii, jj)]
    ax.add_collection(LineCollection(segments, **{"colors": "k", "linewidths": 0.9, **dict(style or {})}))
    return ax


def _value(value: float, units: str) -> str:
    """A parameter's value as a reader wants it: whole degrees for angles, three digits and the units otherwise."""
    if units == "deg":
        return f"{value:.0f}°"
    return f"{value:.3g}" + (f" {units}" if units else "")


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around grid points (half-way between neighbours)."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.r_[centres[0] - (mid[0] - centres[0]), mid, centres[-1] + (centres[-1] - mid[-1])]


def render_strip(f, points: Any, *, ax=None, size: int = 96, max_images: int = 8):
    """The renders a SemanticFunction sees at some points, with the network's answer under each.

    Parameters
    ----------
    f : SemanticFunction
        What renders and classifies the points.
    points : array or dict or Dataset or DataArray
        Anything its Space accepts, or a 1-D slice of a map (e.g. ``ds.sel(elevation=20, method="nearest")``),
        of which evenly spaced points are shown.
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.
    size : int
        Side of each render, in pixels.
    max_images : int
        At most this many renders.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        If a slice of a map given as ``points`` is not 1-D.
    """
    if isinstance(points, (xr.Dataset, xr.DataArray)):
        sliced = score_of(points)
        if sliced.ndim != 1:
            raise ValueError(f"render_strip() takes a 1-D slice of a map; this one has dims {sliced.dims}")
        dim = sliced.dims[0]
        keep = np.unique(np.linspace(0, sliced.sizes[dim] - 1, min(max_images, sliced.sizes[dim])).round().astype(int))
        sliced = sliced.isel({dim: keep})
        named = {name: np.broadcast_to(sliced[name].values, keep.shape) for name in f.space.names if name in sliced.coords}
        pts = f.space.points(named)
    else:
        pts = f.space.points(points)[:max_images]
    ev = f.evaluate(pts)
    with f.renderer.resized(size) as renderer:  # its threads end with the strip
        images = renderer.render(f.mesh, pts, space=f.space).permute(0, 2, 3, 1).numpy()
    ax = new_axes(ax, figsize=(1.3 * len(pts), 1.9))
    ax.imshow(np.concatenate(list(images), axis=1))
    labels = f.classifier.labels
    ax.set_xticks(
        (np.arange(len(pts)) + 0.5) * size,
        [", ".join(_value(v, f.space.units[n]) for v, n in zip(p, f.space.names)) + f"\n{labels[t][:14]}\nP={s:.2f}"
         for p, t, s in zip(pts, ev.top1, ev.score)],
        fontsize=7,
    )
    ax.set_yticks([])
    ax.set_xlabel(f"({', '.join(f.space.names)}); top-1; P({f.label_name})", fontsize=8)
    ax.set_title(f"what {f.classifier.name} sees of {f.mesh.name}", fontsize=9)
    return ax


def coordinate_parameter(data: xr.Dataset | xr.DataArray, name: str) -> Parameter | None:
    """The parameter behind coordinate ``name``: from the Space the data records (`recorded_space`),
    else a periodic angle in degrees turns once, [0, 360); None where nothing says."""
    try:
        space = recorded_space(data)
    except ValueError:
        space = None
    if space is not None and name in space.names:
        return space[name]
    attrs = data[name].attrs if name in data.coords else {}
    if attrs.get("periodic") and attrs.get("units") == "deg":
        return Parameter(name, 0.0, DEGREES_PER_TURN, "deg", True)
    return None


# ------------------------------------------------------------------ layouts


def robust_accuracy(result: xr.DataArray, hue: str = "network", *, ax=None):
    """Robust accuracy against radius (from [`semkit.robust_accuracy`][semkit.robust_accuracy]), one line per ``hue`` value.

    Lines are averaged over shapes, the band their range (one shape: the interval over the views); the
    criterion is in the title.

    Parameters
    ----------
    result : DataArray
        Robust accuracy over ``radius``, from [`semkit.robust_accuracy`][semkit.robust_accuracy].
    hue : str
        A dim to draw one line per value of (ignored when the result lacks it).
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    ax = new_axes(ax, figsize=(6.5, 3.8))
    groups = [(str(v), result.sel({hue: v})) for v in result[hue].values] if hue in result.dims else [(None, result)]
    for i, (name, d) in enumerate(groups):
        mean = d.mean("shape") if "shape" in d.dims else d
        ax.plot(d.radius, mean, marker="o", color=f"C{i}", label=name)
        if "shape" in d.dims:
            ax.fill_between(d.radius, d.min("shape"), d.max("shape"), color=f"C{i}", alpha=0.15)
        elif "ci_low" in d.coords:
            ax.fill_between(d.radius, d.ci_low, d.ci_high, color=f"C{i}", alpha=0.15)
    units = result["radius"].attrs.get("units", "")
    ax.set(xlabel=f"radius (every parameter, {units})" if units else "radius",
           ylabel="robust accuracy", ylim=(0, 1),
           title=f"share of views whose whole +-radius box passes: {result.attrs.get('criterion', '')}")
    if groups[0][0] is not None:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def decision_noise(noise: dict[str, xr.DataArray], *, ax=None):
    """Decision noise per network, a bar each with its interval.

    Parameters
    ----------
    noise : dict of str to DataArray
        Each network's decision noise, from [`semkit.decision_noise`][semkit.decision_noise] of its f, by network name.
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    ax = new_axes(ax, figsize=(6.0, 3.4))
    names = list(noise)
    values = np.array([float(noise[n]) for n in names])
    low = np.array([float(noise[n].ci_low) for n in names])
    high = np.array([float(noise[n].ci_high) for n in names])
    ax.bar(names, values, yerr=[values - low, high - values], capsize=4, color=[f"C{i}" for i in range(len(names))])
    first = noise[names[0]].attrs
    radius = ", ".join(f"{d:g}" for d in first.get("radius", []))
    ax.set(ylabel=f"share of views ({first.get('n_samples', '?')} sampled)", ylim=(0, max(0.05, float(high.max()) * 1.15)),
           title=f"{first.get('answer', 'answer')} changes within +-({radius}) ({first.get('units', '')})")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3, axis="y")
    return ax


