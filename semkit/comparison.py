"""Comparing networks with confidence: per-shape metrics, bootstrap intervals over shapes, paired tests.

A ranking of networks built on a handful of shapes, or on one criterion,
may not hold: :func:`compare_networks` computes each metric per network and
shape (accuracy over the space, robust accuracy at a few radii, SRVR per
region algorithm), gives each network's mean a bootstrap interval over
shapes, tests every pair of networks on the same shapes (a paired
sign-flip permutation test of the mean difference), and, given several
thresholds, says where a pair's order flips with the criterion.
:func:`findings` turns that into sentences.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import xarray as xr

from .trust import Criterion, robust_accuracy


def _per_shape(maps: xr.Dataset, radii: Sequence[float], criterion: Criterion) -> dict[str, xr.DataArray]:
    """Metric name -> DataArray over (network, shape) under one criterion."""
    good = criterion.on_map(maps)
    params = [d for d in good.dims if d not in ("network", "shape")]
    out = {"accuracy": good.mean(params).astype(float)}
    ra = robust_accuracy(maps, list(radii), threshold=criterion.threshold)
    for r in radii:
        out[f"robust accuracy r={r:g}"] = ra.sel(radius=r).drop_vars("radius")
    return out


def _region_metrics(regions: xr.Dataset) -> dict[str, xr.DataArray]:
    from .regions import volume_ratio

    ratios = volume_ratio(regions).mean("start")
    return {f"SRVR {str(a)}": ratios.sel(algorithm=a).drop_vars("algorithm") for a in regions.algorithm.values}


def _bootstrap(values: np.ndarray, rng: np.random.Generator, n_boot: int, confidence: float) -> tuple[float, float]:
    """Percentile interval of the mean over the last axis (shapes)."""
    k = values.shape[-1]
    idx = rng.integers(0, k, (n_boot, k))
    means = values[..., idx].mean(-1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def _paired_p(diff: np.ndarray, rng: np.random.Generator, n_perm: int) -> float:
    """Two-sided p-value of a zero mean difference, from sign flips of the per-shape differences."""
    observed = abs(diff.mean())
    if np.allclose(diff, 0):
        return 1.0
    if len(diff) <= 12:  # every sign pattern: exact (with k shapes the smallest p is 2 / 2^k)
        signs = np.array(list(itertools.product([-1.0, 1.0], repeat=len(diff))))
        return float((np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12).mean())
    signs = rng.choice([-1.0, 1.0], size=(n_perm, len(diff)))
    flipped = np.abs((signs * diff).mean(axis=1))
    return float((1 + (flipped >= observed - 1e-12).sum()) / (n_perm + 1))


def compare_networks(
    maps: xr.Dataset,
    regions: xr.Dataset | None = None,
    *,
    radii: Sequence[float] = (0, 6, 12),
    threshold: float | Sequence[float] | None = None,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> xr.Dataset:
    """Networks compared on the same shapes, with intervals and paired tests.

    ``maps``: stacked maps with ``network`` and ``shape`` dims (from
    ``semantic_maps`` or a sweep); ``regions``: region searches with the same
    dims (for SRVR per algorithm). ``threshold``: None for top-1 correct, a
    number for score >= t, or a list to compare under several criteria.

    Returns a Dataset over (criterion, metric, network) with ``mean``,
    ``ci_low``, ``ci_high`` (bootstrap percentile interval over shapes) and
    over (criterion, metric, network, other) with ``difference`` (network
    minus other, mean over shapes), its interval, and ``p_value`` (paired
    sign-flip test). SRVR does not depend on the criterion and is repeated.
    """
    if not {"network", "shape"} <= set(maps.dims):
        raise ValueError("compare_networks needs maps with 'network' and 'shape' dims (semkit.semantic_maps, a sweep)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    thresholds = list(threshold) if isinstance(threshold, (list, tuple, np.ndarray)) else [threshold]
    criteria = [Criterion(None if t is None else float(t)) for t in thresholds]
    networks = [str(n) for n in maps.network.values]
    rng = np.random.default_rng(seed)
    tables = []
    for criterion in criteria:
        metrics = _per_shape(maps, radii, criterion)
        if regions is not None:
            metrics.update(_region_metrics(regions))
        names = list(metrics)
        values = np.stack([metrics[m].transpose("network", "shape").values for m in names])  # [metric, network, shape]
        M, N, _ = values.shape
        mean, low, high = values.mean(-1), np.empty((M, N)), np.empty((M, N))
        diff, d_low, d_high, p = (np.full((M, N, N), np.nan) for _ in range(4))
        for m in range(M):
            for i in range(N):
                low[m, i], high[m, i] = _bootstrap(values[m, i], rng, n_boot, confidence)
            for i, j in itertools.permutations(range(N), 2):
                d = values[m, i] - values[m, j]
                diff[m, i, j] = d.mean()
                d_low[m, i, j], d_high[m, i, j] = _bootstrap(d, rng, n_boot, confidence)
                p[m, i, j] = _paired_p(d, rng, n_boot)
        tables.append(xr.Dataset(
            {
                "mean": (("metric", "network"), mean, {"long_name": "mean over shapes"}),
                "ci_low": (("metric", "network"), low),
                "ci_high": (("metric", "network"), high),
                "difference": (("metric", "network", "other"), diff, {"long_name": "network minus other, mean over shapes"}),
                "difference_low": (("metric", "network", "other"), d_low),
                "difference_high": (("metric", "network", "other"), d_high),
                "p_value": (("metric", "network", "other"), p, {"long_name": "paired sign-flip test, two-sided"}),
            },
            coords={"metric": names, "network": networks, "other": networks},
        ))
    out = xr.concat(tables, dim=xr.DataArray([c.name for c in criteria], dims="criterion", name="criterion"))
    out.attrs = {
        "title": "Networks compared with confidence",
        "shapes": int(maps.sizes["shape"]),
        "confidence": confidence,
        "bootstrap": int(n_boot),
        "radii": [float(r) for r in radii],
        "interval": f"{confidence:.0%} bootstrap percentile interval over shapes",
        "test": "paired sign-flip permutation test over shapes, two-sided",
    }
    return out


def findings(comparison: xr.Dataset, alpha: float = 0.05) -> list[str]:
    """Sentences on each pair of networks: significant or not, and whether the order flips across criteria."""
    lines = []
    networks = [str(n) for n in comparison.network.values]
    for metric in comparison.metric.values:
        for a, b in itertools.combinations(networks, 2):
            pair = comparison.sel(metric=metric, network=a, other=b)
            signs = set(np.sign(np.round(pair.difference.values, 12)).tolist()) - {0.0}
            parts = []
            for crit in comparison.criterion.values:
                row = pair.sel(criterion=crit)
                d, lo, hi, pv = (float(row[k]) for k in ("difference", "difference_low", "difference_high", "p_value"))
                verdict = "significant" if pv < alpha else "not significant"
                parts.append(f"{crit}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}], p = {pv:.3f} ({verdict})")
            flip = " The order flips across the criteria." if len(signs) > 1 else ""
            lines.append(f"{metric}, {a} minus {b}: " + "; ".join(parts) + "." + flip)
    return lines
