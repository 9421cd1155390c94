"""What the explorer's trust layer found, drawn on its map (two of the Space's parameters).

Each answer is about the whole Space; the map shows its projection on the
map's two parameters: a box as a rectangle (split where it wraps round a
periodic parameter), the smoothed network's certified ball as an ellipse
(the projection of the whitened ball ||(x' - x) / sigma|| < radius has the
semi-axes radius * sigma of the two parameters). Each mark carries a legend
entry that says what it is and under which guarantee.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from ..space import Space

RADIUS, FAILURE, VERIFIED, CERTIFIED, DISAGREE = "white", "red", "tab:blue", "tab:purple", "magenta"


def box(ax, space: Space, x: str, y: str, lower: np.ndarray, upper: np.ndarray, style: dict[str, Any], label: str) -> None:
    """A box of the Space (``lower``, ``upper`` by parameter) as rectangles on the (x, y) map."""
    from matplotlib.patches import Rectangle

    names = list(space.names)
    i, j = names.index(x), names.index(y)
    for xa, xb in space.pieces(x, float(lower[i]), float(upper[i])):
        for ya, yb in space.pieces(y, float(lower[j]), float(upper[j])):
            ax.add_patch(Rectangle((xa, ya), xb - xa, yb - ya, fill=False, label=label, **style))
            label = "_nolegend_"  # one entry per box


def radius(ax, result: xr.Dataset, space: Space, x: str, y: str) -> None:
    """A [`robustness_radius`][semkit.robustness_radius] answer: its certified box (solid) and lattice box (dotted)."""
    view = result.view.values[0]
    r = result.radius.values[0]
    lattice = result.lattice_radius.values[0]
    if int(result.steps.values[0]) < 0:
        ax.plot([view[list(space.names).index(x)]], [view[list(space.names).index(y)]], "x", color=RADIUS, ms=9, mew=2,
                label="radius: the view fails")
        return
    what = "guaranteed" if result.attrs.get("certificate") == "sampled" else "lattice, audited"
    box(ax, space, x, y, view - r, view + r, {"edgecolor": RADIUS, "lw": 2}, f"radius ({what})")
    if result.attrs.get("certificate") == "sampled" and (lattice > r).any():
        box(ax, space, x, y, view - lattice, view + lattice, {"edgecolor": RADIUS, "lw": 1, "ls": ":"},
            "radius on the lattice only")


def failures(ax, result: xr.Dataset, space: Space, x: str, y: str) -> None:
    """A [`find_failures`][semkit.find_failures] answer: the box searched (dashed) and the worst view found."""
    names = list(space.names)
    start, r = result.start_point.values[0], np.asarray(result.attrs["radius"], dtype=float)
    box(ax, space, x, y, start - r, start + r, {"edgecolor": FAILURE, "lw": 1, "ls": "--"}, "failure search (no guarantee)")
    worst = result.point.values[0]
    failed = bool(result.failed.values[0])
    ax.plot([worst[names.index(x)]], [worst[names.index(y)]], "X" if failed else "x", color=FAILURE if failed else "grey",
            ms=11, mew=1.5, mec="black" if failed else "grey",
            label=f"worst view found ({'fails' if failed else 'passes'}, score {float(result.score.values[0]):.2f})")


def verified(ax, result: xr.Dataset, space: Space, x: str, y: str) -> None:
    """A verified box ([`find_regions`][semkit.find_regions] with the verified algorithm)."""
    lower, upper = result.lower.values[0, 0], result.upper.values[0, 0]
    if not np.isfinite(lower).all():
        return
    confidence, max_failure = result.attrs.get("confidence"), result.attrs.get("max_failure")
    said = f" ({confidence:g}: <= {100 * max_failure:g}% fail)" if confidence is not None and max_failure is not None else ""
    box(ax, space, x, y, lower, upper, {"edgecolor": VERIFIED, "lw": 2.5}, f"verified box{said}")


def certified(ax, result: xr.Dataset, space: Space, x: str, y: str) -> None:
    """A smoothed network's certificate ([`Smoothed.certify`][semkit.Smoothed.certify]): g's certified ellipse."""
    from matplotlib.patches import Ellipse

    sigma = json.loads(result.attrs["sigma"])
    centre = [float(result[name].values[0]) for name in (x, y)] if x in result.coords else None
    if centre is None:
        return
    r = float(result.radius.values[0])
    correct = bool(result.correct.values[0])
    what = "g certified" if r > 0 else "g abstains"
    ax.add_patch(Ellipse(centre, 2 * r * sigma[x], 2 * r * sigma[y], fill=False, edgecolor=CERTIFIED, lw=2,
                         ls="-" if correct else "--",
                         label=f"smoothed network: {what}, radius {r:.2f} sigma ({'right' if correct else 'wrong'} answer)"))


def disagreement(ax, first: xr.Dataset, second: xr.Dataset, x: str, y: str, label: str, periodic_x: bool) -> None:
    """Outline the cells where two networks' top-1 classes differ."""
    from .. import plot

    differ = (first.top1 != second.top1).transpose(y, x).values
    if differ.any():
        plot.outline(ax, first[x].values, first[y].values, differ, periodic_x=periodic_x,
                     style={"colors": DISAGREE, "linewidths": 1.6, "linestyles": "-"})
        ax.plot([], [], color=DISAGREE, lw=1.6, label=label)


def draw_map(ax, explorer: Any, cursor: bool) -> None:
    """An explorer's map on ``ax``: the current network's scores (or its grown region), where the compared network
    disagrees, every trust answer, the cursor, and one legend below."""
    from .. import plot
    from ..criterion import Criterion

    ex = explorer
    x, y = ex.axes
    space = ex.space
    if space.n > 2 and not ex.has_map():  # a slice is mapped when asked
        ax.set(xlim=(space[x].low, space[x].high), ylim=(space[y].low, space[y].high),
               xlabel=f"{x} ({space[x].units})", ylabel=f"{y} ({space[y].units})")
        ax.text(0.5, 0.5, "this slice is not mapped yet", ha="center", va="center", transform=ax.transAxes)
    else:
        m = ex.map()
        if ex.regions is not None:
            plot.regions(ex.regions, m, x=x, y=y, ax=ax, show_correct=True)
        else:
            plot.heatmap(m, x=x, y=y, ax=ax, show_correct=True, criterion=Criterion.resolve(ex.criterion, f=ex.function()))
        if ex.compare is not None and ex.compare != ex.network:
            disagreement(ax, m, ex.map(ex.compare), x, y, f"top-1 differs from {ex.compare}", bool(space[x].periodic))
    draw = {"robustness_radius": radius, "find_failures": failures, "verified_box": verified, "certify": certified}
    for name, result in list(ex.results.items()):
        draw[name](ax, result, space, x, y)
    if cursor:
        ax.plot([ex.point[x]], [ex.point[y]], "o", ms=11, mfc="none", mec="yellow", mew=2.5)
    if ax.get_legend() is not None:
        ax.get_legend().remove()  # one legend, below the map
    if ax.get_legend_handles_labels()[0]:
        ax.figure.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="outside lower center", ncols=2, frameon=False)
