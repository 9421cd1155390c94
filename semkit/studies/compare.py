"""Networks compared with confidence: per-shape metrics under an explicit criterion, bootstrap intervals over
shapes, paired sign-flip tests, ranks with rank intervals and the rankings' agreement (`.ranks`), and the order's flips
across criteria; [`average`][semkit.studies.compare.average] over shapes."""


from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..regions import box_iou, srvr, style, volume_ratio
from ..trust import robust_accuracy
from ..validation import check_confidence, check_count
from .ranks import agreement, rank_table


def average(result: xr.Dataset | xr.DataArray, dim: str = "shape") -> xr.Dataset | xr.DataArray:
    """The mean over ``dim``, with attrs that say so (``mean_over_<dim>``, the class name).

    Plots title an averaged result by these attrs ("mean over 5 shapes"); a mean class index means nothing, so
    ``top1`` is dropped.

    Parameters
    ----------
    result : Dataset or DataArray
        A stacked result, e.g. maps from [`study`][semkit.study].
    dim : str
        The dim to average over.

    Returns
    -------
    Dataset or DataArray
        The mean, without ``dim``.
    """
    names = np.unique(np.atleast_1d(result["label_name"].values)) if "label_name" in result.coords else []
    if isinstance(result, xr.Dataset):
        result = result.drop_vars(["top1"], errors="ignore")  # a mean class index means nothing
    out = result.mean(dim, keep_attrs=True)
    out.attrs[f"mean_over_{dim}"] = int(result.sizes[dim])
    if dim == "shape" or "label_name" in result.coords:
        out.attrs["label_name"] = str(names[0]) if len(names) == 1 else "true class"
    return out


def _per_shape(maps: xr.Dataset, radii: Sequence[float], criterion: Criterion) -> dict[str, xr.DataArray]:
    """Metric name -> DataArray over (network, shape) under one criterion."""
    good = criterion.on_map(maps)
    params = [d for d in good.dims if d not in ("network", "shape")]
    out = {"accuracy over the space": good.mean(params).astype(float),
           "mean score": maps["score"].mean(params)}
    ra = robust_accuracy(maps, list(radii), criterion=criterion, progress=False)
    for r in radii:
        out[f"robust accuracy r={r:g}"] = ra.sel(radius=r).drop_vars("radius")
    return out


def _region_metrics(regions: xr.Dataset) -> dict[str, xr.DataArray]:
    ratios = volume_ratio(regions).mean("start")
    return {f"SRVR {style(str(a))[0]}": ratios.sel(algorithm=a).drop_vars("algorithm") for a in regions.algorithm.values}


def _bootstrap(values: np.ndarray, rng: np.random.Generator, n_resamples: int, confidence: float) -> tuple[float, float]:
    """Percentile interval of the mean over the last axis (shapes); NaN with one shape (no interval from one)."""
    k = values.shape[-1]
    if k < 2:
        return float("nan"), float("nan")
    idx = rng.integers(0, k, (n_resamples, k))
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
    metrics: Mapping[str, xr.DataArray] | None = None,
    radius: Sequence[float] = (0, 6, 12),
    criterion: Criterion | str | Sequence[Criterion | str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    n_permutations: int = 2000,
    random_state: int | np.random.Generator | None = 0,
    progress: bool = True,
) -> xr.Dataset:
    """Networks compared on the same shapes, with intervals and paired tests.

    Per shape, each network's accuracy over the space, mean score, robust accuracy at each radius (and SRVR per
    algorithm with ``regions``), under each criterion; then means over shapes with bootstrap percentile intervals
    (they need two shapes or more: NaN with one, and a warning), and each pair's difference with a paired sign-flip
    test (exact with 12 shapes or fewer). Each network is ranked per criterion and metric by its mean over shapes,
    with a rank interval from a bootstrap over shapes, and every two rankings are compared by Kendall's tau.

    Parameters
    ----------
    maps : Dataset
        Stacked maps with ``network`` and ``shape`` dims (a map [`study`][semkit.study]).
    regions : Dataset, optional
        Region searches with the same dims, for SRVR per algorithm (matched by name, not position).
    metrics : mapping of str to DataArray, optional
        More per-shape metrics by name, each over (network, shape) and the same under every criterion: say
        [`worst_view_accuracy`][semkit.studies.worst_view_accuracy], or [`decision_noise`][semkit.decision_noise] of
        the maps (a DataArray named ``decision_noise`` ranks its lowest value first; every other metric its highest).
    radius : sequence of float, default (0, 6, 12)
        The radii of robust accuracy, in the Space's units.
    criterion : Criterion or str, or a sequence of them, optional
        One criterion, or a list to compare under several (a map judges top-1, top-k on its top-1 only, and
        score >= t); None: top-1 correct.
    confidence : float, default 0.95
        The level of the bootstrap intervals.
    n_resamples : int, default 2000
        Bootstrap resamples per interval.
    n_permutations : int, default 2000
        Sign flips per p-value with more than 12 shapes.
    random_state : int, Generator or None, default 0
        Draws the resamples and flips (the same value, the same intervals); None: fresh randomness.
    progress : bool, default True
        Show a progress bar (with several criteria).

    Returns
    -------
    Dataset
        Over (criterion, metric, network): ``mean``, ``ci_low``, ``ci_high`` (bootstrap percentile interval over
        shapes), ``rank`` (1 = the highest mean, ties averaged), ``rank_low`` and ``rank_high``: a bootstrap
        percentile interval of the rank over shapes (resample the shapes, rank all networks jointly per resample,
        take the percentiles at ``confidence``; it says how the rank moves with the shapes drawn, NOT a guarantee
        of the rank; NaN with one shape); over (criterion, metric, network, other): ``difference`` (network minus
        other, mean over shapes), ``difference_low``, ``difference_high`` and ``p_value`` (paired sign-flip test,
        two-sided); over (ranking, other_ranking): ``agreement``, Kendall's tau between every two rankings, a
        ranking being one (criterion, metric) pair named "metric | criterion" (1: the same order, -1: reversed, NaN
        when a ranking is all ties). SRVR does not depend on the criterion and is repeated. Attrs: ``shapes``,
        ``confidence``, ``radius``, the procedures.

    Raises
    ------
    ValueError
        Maps without ``network`` and ``shape`` dims, a confidence outside (0, 1), counts below 1, a metric without
        them.
    """
    from tqdm.auto import tqdm

    if not {"network", "shape"} <= set(maps.dims):
        raise ValueError("compare_networks needs maps with 'network' and 'shape' dims (a map study: semkit.study)")
    check_confidence(confidence)
    for name, value in (("n_resamples", n_resamples), ("n_permutations", n_permutations)):
        check_count(value, name)
    radii = [radius] if np.ndim(radius) == 0 else list(radius)
    criteria = [Criterion.top1()] if criterion is None else Criterion.resolve_all(criterion)
    if maps.sizes["shape"] < 2:
        import warnings

        warnings.warn("compare_networks on one shape: an interval over shapes needs two shapes or more, so ci_low, "
                      "ci_high and the differences' intervals are NaN", stacklevel=2)
    rng = np.random.default_rng(random_state)
    tests, rank_rng = _Tests(rng, confidence, n_resamples, n_permutations), rng.spawn(1)[0]  # the ranks: own draws
    tables = []
    for crit in tqdm(criteria, desc="compare networks", unit="criterion", disable=not progress or len(criteria) < 2):
        values = _metrics(maps, regions, metrics, radii, crit)
        tables.append(xr.merge([_compared(tests, values), rank_table(values, rank_rng, n_resamples, confidence)]))
    out = xr.concat(tables, dim=xr.DataArray([c.name for c in criteria], dims="criterion", name="criterion"))
    out["agreement"] = agreement(out["rank"])
    out.attrs = {
        "title": "Networks compared with confidence",
        "shapes": int(maps.sizes["shape"]),
        "confidence": confidence,
        "n_resamples": int(n_resamples),
        "n_permutations": int(n_permutations),
        "radius": [float(r) for r in radii],
        "interval": f"{confidence:.0%} bootstrap percentile interval over shapes",
        "test": "paired sign-flip permutation test over shapes, two-sided",
        "rank_interval": f"{confidence:.0%} bootstrap percentile interval of the rank over shapes (not a guarantee)",
    }
    return out


def _metrics(maps: xr.Dataset, regions: xr.Dataset | None, more: Mapping[str, xr.DataArray] | None,
             radii: Sequence[float], criterion: Criterion) -> xr.DataArray:
    """Every metric under one criterion (SRVR per algorithm too, given regions, and the ``more`` given) over (metric,
    network, shape), the regions matched to the maps by name, not position; attrs ``lower_is_better``: the metrics
    ranked lowest first."""
    metrics = _per_shape(maps, radii, criterion)
    if regions is not None:
        metrics.update(_region_metrics(regions))
    for name, metric in (more or {}).items():
        if not {"network", "shape"} <= set(getattr(metric, "dims", ())):
            raise ValueError(f"metric {name!r} must be a DataArray over (network, shape), like the maps; got "
                             f"{getattr(metric, 'dims', type(metric).__name__)}")
        if str(name) in metrics:
            raise ValueError(f"metric {name!r} is one compare_networks computes itself: give yours another name")
        metrics[str(name)] = metric
    order = {"network": maps.network.values, "shape": maps.shape.values}
    values = np.stack([metrics[m].sel(order).transpose("network", "shape").values for m in metrics])
    return xr.DataArray(values, dims=("metric", "network", "shape"),
                        coords={"metric": list(metrics), "network": [str(n) for n in maps.network.values]},
                        attrs={"lower_is_better": [m for m, v in metrics.items() if v.name == "decision_noise"]})


def _compared(tests: "_Tests", values: xr.DataArray) -> xr.Dataset:
    """One criterion's table: per metric and network the mean over shapes and its interval; per ordered pair of networks
    the difference, its interval and the paired test."""
    low, high, diff, d_low, d_high, p = (np.stack(a) for a in zip(*(tests.metric(v) for v in values.values)))
    networks = values.network.values.tolist()
    return xr.Dataset(
        {
            "mean": (("metric", "network"), values.values.mean(-1), {"long_name": "mean over shapes"}),
            "ci_low": (("metric", "network"), low),
            "ci_high": (("metric", "network"), high),
            "difference": (("metric", "network", "other"), diff, {"long_name": "network minus other, mean over shapes"}),
            "difference_low": (("metric", "network", "other"), d_low),
            "difference_high": (("metric", "network", "other"), d_high),
            "p_value": (("metric", "network", "other"), p, {"long_name": "paired sign-flip test, two-sided"}),
        },
        coords={"metric": values.metric.values.tolist(), "network": networks, "other": networks},
    )


@dataclass
class _Tests:
    """The bootstrap intervals and paired sign-flip tests of a comparison, all drawn from one generator in a fixed
    order (metric by metric: the networks, then the ordered pairs), so that a comparison repeats exactly."""

    rng: np.random.Generator
    confidence: float
    n_resamples: int
    n_permutations: int

    def metric(self, values: np.ndarray) -> tuple[np.ndarray, ...]:
        """One metric over [network, shape]: per network the interval (low, high); per ordered pair (network, other) the
        mean difference, its interval and the p-value (NaN on the diagonal)."""
        n = len(values)
        low, high = np.empty(n), np.empty(n)
        diff, d_low, d_high, p = (np.full((n, n), np.nan) for _ in range(4))
        for i in range(n):
            low[i], high[i] = _bootstrap(values[i], self.rng, self.n_resamples, self.confidence)
        for i, j in itertools.permutations(range(n), 2):
            d = values[i] - values[j]
            diff[i, j] = d.mean()
            d_low[i, j], d_high[i, j] = _bootstrap(d, self.rng, self.n_resamples, self.confidence)
            p[i, j] = _paired_p(d, self.rng, self.n_permutations)
        return low, high, diff, d_low, d_high, p


def findings(comparison: xr.Dataset, significance: float = 0.05) -> list[str]:
    """Sentences on each pair of networks per metric: the difference, significant or not, and whether the order
    flips across the criteria.

    Parameters
    ----------
    comparison : Dataset
        A comparison from [`compare_networks`][semkit.compare_networks].
    significance : float
        A difference whose p-value is below this is reported significant.

    Returns
    -------
    list of str
        One sentence per metric and pair of networks.
    """
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
                verdict = "significant" if pv < significance else "not significant"
                parts.append(f"{crit}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}], p = {pv:.3f} ({verdict})")
            flip = " The order flips across the criteria." if len(signs) > 1 else ""
            lines.append(f"{metric}, {a} minus {b}: " + "; ".join(parts) + "." + flip)
    return lines


def comparison_table(comparison: xr.Dataset, criterion: str | None = None):
    """A comparison as a table: per network, each metric's mean and interval over shapes, as text.

    Parameters
    ----------
    comparison : Dataset
        A comparison from [`compare_networks`][semkit.compare_networks].
    criterion : str, optional
        One of the comparison's criteria, by name; None: its first.

    Returns
    -------
    pandas DataFrame
        One row per network, one column per metric; the criterion and the interval in its attrs.
    """
    import pandas as pd

    c = comparison.sel(criterion=criterion) if criterion is not None else comparison.isel(criterion=0)
    cells = {
        str(m): [f"{c['mean'].sel(metric=m, network=n).item():.3f} [{c.ci_low.sel(metric=m, network=n).item():.3f}, "
                 f"{c.ci_high.sel(metric=m, network=n).item():.3f}]" for n in c.network.values]
        for m in c.metric.values
    }
    table = pd.DataFrame(cells, index=pd.Index([str(n) for n in c.network.values], name="network"))
    table.attrs.update(criterion=c.criterion.item(), interval=comparison.attrs["interval"])
    return table


def compare_searches(searches: dict[str, xr.Dataset]):
    """Region searches of the same starts and algorithms side by side (say, faithful against adaptive steps).

    Parameters
    ----------
    searches : dict of str to Dataset
        Region searches from [`find_regions`][semkit.find_regions], by a name for each.

    Returns
    -------
    pandas DataFrame
        Per region algorithm: each search's queries and SRVR, and the mean IoU of the first two searches' boxes.
    """
    import pandas as pd

    table = {f"queries, {name}": r.queries.sum("start").to_pandas() for name, r in searches.items()}
    results = list(searches.values())
    if len(results) > 1:
        table["mean IoU of the boxes"] = box_iou(results[0], results[1]).mean("start").to_pandas()
    table.update({f"SRVR, {name}": srvr(r).to_pandas() for name, r in searches.items()})
    return pd.DataFrame(table)
