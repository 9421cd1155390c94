"""Plots of the smoothed network's certificates and of Sobol sensitivity: each takes ``ax=`` and returns the axes.

* [`certified_accuracy`][semkit.certified_accuracy]: the smoothing literature's curve, the share of views where g is right with a
  certified radius of at least r (from [`semkit.trust.certified_accuracy`][semkit.trust.certified_accuracy]);
* [`sensitivity`][semkit.sensitivity]: first-order and total Sobol indices per parameter with their intervals (from
  [`semkit.trust.sensitivity`][semkit.trust.sensitivity]).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr


def _axes(ax, figsize):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def _sigma(text: str) -> str:
    return ", ".join(f"{name}={value:g}" for name, value in json.loads(text).items())


def certified_accuracy(result: xr.DataArray, hue: str = "network", *, ax=None):
    """Certified accuracy of the smoothed network against the whitened radius, one line per ``hue`` value.

    The smoothing literature's curve: the share of views where g is right with a certified radius of at least r.
    Lines are averaged over shapes, the band their range (one shape: the Clopper-Pearson band over the views).

    Parameters
    ----------
    result : DataArray
        Certified accuracy over ``radius``, from [`semkit.trust.certified_accuracy`][semkit.trust.certified_accuracy].
    hue : str
        A dim to draw one line per value of (ignored when the result lacks it).
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    ax = _axes(ax, (6.5, 3.8))
    groups = [(str(v), result.sel({hue: v})) for v in result[hue].values] if hue in result.dims else [(None, result)]
    for i, (name, d) in enumerate(groups):
        mean = d.mean("shape") if "shape" in d.dims else d
        ax.step(d.radius, mean, where="post", color=f"C{i}", label=name)
        if "shape" in d.dims:
            ax.fill_between(d.radius, d.min("shape"), d.max("shape"), step="post", color=f"C{i}", alpha=0.15)
        elif "ci_low" in d.coords:
            ax.fill_between(d.radius, d.ci_low, d.ci_high, step="post", color=f"C{i}", alpha=0.15)
    ax.set(xlabel="certified radius ||(x' - x) / sigma||_2 (units of sigma)", ylabel="certified accuracy", ylim=(0, 1),
           title=f"smoothed network g ({result.attrs.get('answer', '')}), sigma {_sigma(result.attrs.get('sigma', '{}'))}")
    ax.title.set_fontsize(9)
    if groups[0][0] is not None:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def sensitivity(result: xr.Dataset, *, ax=None):
    """Bars per parameter: first-order (S1) and total (ST) Sobol indices of the score and of failure, with intervals.

    Parameters
    ----------
    result : Dataset
        Sobol indices from [`semkit.trust.sensitivity`][semkit.trust.sensitivity] for one network and shape
        (``result.sel(network=..., shape=...)``).
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        If the result has dims besides ``output`` and ``parameter`` (select or average them first).
    """
    extra = [d for d in result["S1"].dims if d not in ("output", "parameter")]
    if extra:
        raise ValueError(f"this result has dims {extra} besides output and parameter: select one first, e.g. "
                         f"result.sel({', '.join(f'{d}=...' for d in extra)}), or average: result.mean({extra})")
    ax = _axes(ax, (6.5, 3.6))
    names = [str(p) for p in result["parameter"].values]
    bars = [(str(o), key) for o in result["output"].values for key in ("S1", "ST")]
    width = 0.8 / len(bars)
    x = np.arange(len(names))
    for j, (output, key) in enumerate(bars):
        one = result.sel(output=output)
        value = one[key].values
        err = np.abs(np.stack([value - one[f"{key}_low"].values, one[f"{key}_high"].values - value]))
        ax.bar(x + (j - (len(bars) - 1) / 2) * width, value, width, yerr=err if np.nansum(err) > 0 else None, capsize=3,
               color=f"C{j // 2}", alpha=0.55 if key == "S1" else 0.95, label=f"{output}: {key}")
    ax.set_xticks(x, names)
    ax.set(ylabel="share of the variance", ylim=(0, 1.05),
           title=f"Sobol indices (S1: alone, ST: with interactions); failure: {result.attrs.get('criterion', '')}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return ax
