"""Networks ranked with confidence: each network's rank by its mean over shapes (1 = best, ties averaged), a bootstrap
rank interval over shapes, and how far two rankings agree (Kendall's tau); the pieces of
[`compare_networks`][semkit.compare_networks]."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import xarray as xr


def ranked(means: np.ndarray) -> np.ndarray:
    """Ranks over the last axis (networks), 1 for the highest mean, ties averaged; NaN where a mean is NaN."""
    from scipy.stats import rankdata

    means = np.asarray(means, dtype=float)
    out = rankdata(-means, axis=-1, method="average")
    return np.where(np.isnan(means).any(-1, keepdims=True), np.nan, out)


def rank_interval(values: np.ndarray, rng: np.random.Generator, n_resamples: int,
                  confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Per network, the bootstrap percentile interval of its rank: ``values`` over [network, shape]; each resample
    draws shapes with replacement and ranks all networks jointly on their resampled means. The low end is the
    (1 - confidence) / 2 quantile taken down to a rank seen, the high end the upper quantile taken up; NaN with one
    shape."""
    n, k = values.shape
    if k < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    idx = rng.integers(0, k, (n_resamples, k))
    ranks = ranked(values[:, idx].mean(-1).T)  # [resample, network]
    alpha = (1 - confidence) / 2
    return np.quantile(ranks, alpha, axis=0, method="lower"), np.quantile(ranks, 1 - alpha, axis=0, method="higher")


def rank_table(values: xr.DataArray, rng: np.random.Generator, n_resamples: int, confidence: float) -> xr.Dataset:
    """One criterion's ranks over (metric, network): ``rank`` (by the mean over shapes) and ``rank_low``,
    ``rank_high`` (the bootstrap interval), from ``values`` over (metric, network, shape); the metrics its attrs name
    ``lower_is_better`` rank their lowest value first."""
    lower = set(values.attrs.get("lower_is_better", []))
    signed = np.stack([-v if m in lower else v for m, v in zip(values.metric.values.tolist(), values.values)])
    rank = ranked(signed.mean(-1))
    low, high = (np.stack(a) for a in zip(*(rank_interval(v, rng, n_resamples, confidence) for v in signed)))
    dims = ("metric", "network")
    return xr.Dataset(
        {
            "rank": (dims, rank, {"long_name": "rank by the mean over shapes (1 = best, ties averaged)"}),
            "rank_low": (dims, low, {"long_name": "bootstrap percentile interval of the rank over shapes, low end"}),
            "rank_high": (dims, high, {"long_name": "bootstrap percentile interval of the rank over shapes, high end"}),
        },
        coords={"metric": values.metric.values.tolist(), "network": values.network.values.tolist()},
    )


def agreement(rank: xr.DataArray) -> xr.DataArray:
    """Kendall's tau between every two rankings, a ranking being one (criterion, metric) pair of ``rank`` over
    (criterion, metric, network): over (ranking, other_ranking), each named "metric | criterion"; NaN where a
    ranking is constant (all tied) or with fewer than two networks."""
    from scipy.stats import kendalltau

    rank = rank.transpose("criterion", "metric", "network")
    pairs = list(itertools.product(rank.criterion.values.tolist(), rank.metric.values.tolist()))
    rows = rank.values.reshape(len(pairs), rank.sizes["network"])
    tau = np.full((len(pairs), len(pairs)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant ranking: tau is NaN, said in the docstring
        for i, j in itertools.product(range(len(pairs)), repeat=2):
            if rows.shape[1] > 1 and not (np.isnan(rows[i]).any() or np.isnan(rows[j]).any()):
                tau[i, j] = kendalltau(rows[i], rows[j]).statistic
    names = [f"{metric} | {criterion}" for criterion, metric in pairs]
    return xr.DataArray(tau, dims=("ranking", "other_ranking"), coords={"ranking": names, "other_ranking": names},
                        name="agreement", attrs={"long_name": "Kendall's tau between two rankings"})
