"""The networks' ranks across rankings (metric x criterion), with their bootstrap rank intervals."""

from __future__ import annotations

import numpy as np
import xarray as xr


def ranks(comparison: xr.Dataset, ax=None):
    """Each network's rank per ranking (metric | criterion) of a comparison, with its rank interval as a bar.

    Lines that cross are rankings that disagree; long bars are ranks the shapes do not settle.

    Parameters
    ----------
    comparison : Dataset
        A comparison from [`compare_networks`][semkit.compare_networks] (with ``rank``, ``rank_low``, ``rank_high``).
    ax : matplotlib Axes, optional
        Where to draw; None: a new figure.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    rank = comparison["rank"].transpose("criterion", "metric", "network")
    names = [f"{m} | {c}" for c in rank.criterion.values for m in rank.metric.values]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 4.2))
    x = np.arange(len(names))
    n = rank.sizes["network"]
    for i, network in enumerate(rank.network.values):
        r, lo, hi = (comparison[k].sel(network=network).transpose("criterion", "metric").values.ravel()
                     for k in ("rank", "rank_low", "rank_high"))
        shift = (i - (n - 1) / 2) * 0.08
        ax.errorbar(x + shift, r, yerr=[np.nan_to_num(r - lo), np.nan_to_num(hi - r)], marker="o", capsize=3,
                    label=str(network))
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(n + 0.5, 0.5)
    ax.set_yticks(range(1, n + 1))
    ax.set_xlabel("ranking (metric | criterion)")
    ax.set_ylabel(f"rank (1 = best), bar: {comparison.attrs.get('confidence', 0.95):.0%} bootstrap interval")
    ax.set_title(f"Ranks over {comparison.attrs.get('shapes', '?')} shapes")
    ax.legend(title="network", fontsize=8)
    return ax
