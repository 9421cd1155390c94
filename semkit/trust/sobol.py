"""Which parameter moves the score: first-order and total Sobol indices, of the score and of failure.

[`sensitivity`][semkit.sensitivity] splits the variance of f's score over the Space (and of
failure under a criterion: 1 where a view fails) into the parameters'
shares. The first-order index S1 of a parameter is the share it explains
alone (Var of the conditional mean over it / total variance); the total
index ST adds its interactions with the others (E over the others of the
Var over it / total variance). For a function: Saltelli's sampling (scrambled
Sobol' points, matrices A, B and A with one column from B), Saltelli et al.
(2010)'s S1 and Jansen's ST estimators, and bootstrap intervals. For a dense
map: exact for the map's grid taken as the uniform measure (no renders).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..function import SemanticFunctions, as_function
from ..space import Space, recorded_space
from ..validation import check_confidence, check_count
from .records import space_json, state_attr

INDICES = ("S1", "ST")


def sensitivity(f: Any, *, space: Space | None = None, criterion: Criterion | str | None = None,
                n_samples: int = 1024, n_resamples: int = 200, confidence: float = 0.95, random_state: Any = 0,
                progress: bool = True) -> xr.Dataset:
    """First-order (``S1``) and total (``ST``) Sobol indices per parameter, of the score and of failure.

    S1 is the share of the variance a parameter explains alone, ST adds its interactions with the others. From f:
    Saltelli's sampling at ``n_samples * (n + 2)`` points (n parameters) with bootstrap percentile intervals. From a
    dense map: its grid taken as the uniform measure, exact about the grid, no renders, intervals equal to the
    values, over the map's other dims (``network``, ``shape``); a map with views without a score (NaN) is refused.

    Parameters
    ----------
    f : callable or Dataset
        A score function (a [`SemanticFunction`][semkit.SemanticFunction], or any callable with ``space=``), or a dense map (a
        Dataset from [`semantic_map`][semkit.semantic_map]).
    space : Space, optional
        The Space; None: ``f.space``, or the one the map records.
    criterion : Criterion or str, optional
        What failure is judged under; None: top-1 for an f or map that knows its class (a plain score function
        without one gives the score's indices only).
    n_samples : int, default 1024
        From f: the base sample size, at least 2 (a power of 2 keeps the Sobol' points balanced).
    n_resamples : int, default 200
        From f: bootstrap resamples for the intervals.
    confidence : float, default 0.95
        The level of the intervals.
    random_state : int, Generator or None, default 0
        From f: scrambles the Sobol' points and draws the resamples (the same value, the same indices).
    progress : bool, default True
        From f: show a progress bar.

    Returns
    -------
    Dataset
        ``S1``, ``ST`` and their intervals (``S1_low``, ``S1_high``, ``ST_low``, ``ST_high``) over dims ``output``
        (``score``, ``failure``) and ``parameter``; ``variance`` is each output's total variance (indices are NaN where
        it is 0: nothing to explain; a variance below the rounding of the values, (1e-9 x their largest magnitude)^2,
        counts as 0).

    Raises
    ------
    ValueError
        A group of networks (pass ``f[network]``, or its map), counts below their minimum, a confidence outside (0, 1),
        a map without ``score``, without the Space's dims, or with NaN views.
    """
    check_confidence(confidence)
    if isinstance(f, xr.Dataset):
        return _map_sensitivity(f, space, criterion)
    if isinstance(f, SemanticFunctions):
        raise ValueError("sensitivity takes one network's f: pass f[network], or a map of the group (semantic_map(f))")
    for name, value, least in (("n_samples", n_samples, 2), ("n_resamples", n_resamples, 1)):
        check_count(value, name, minimum=least)
    return _sampled_sensitivity(f, space, criterion, int(n_samples), int(n_resamples), confidence,
                                random_state, progress)


def sensitivity_summary(result: xr.Dataset) -> str:
    """One sentence per output, and per network and shape, on what explains the variance.

    Names the parameter that explains most of the variance alone (largest S1), its share, and its total share
    with interactions (ST).

    Parameters
    ----------
    result : Dataset
        Sobol indices, from [`semkit.trust.sensitivity`][semkit.trust.sensitivity].

    Returns
    -------
    str
        The sentences, one per line.
    """
    lines = []
    others = [d for d in result["S1"].dims if d not in ("output", "parameter")]
    combos = [{}] if not others else [dict(zip(others, values)) for values in
                                      np.stack(np.meshgrid(*[result[d].values for d in others], indexing="ij"), -1).reshape(-1, len(others))]
    for combo in combos:
        part = result.sel(combo)
        where = " on ".join(str(v) for v in combo.values())
        clauses = []
        for output in part["output"].values:
            clauses.append(_clause(part.sel(output=output), str(output), result.attrs.get("criterion", "")))
        lines.append((f"{where}: " if where else "") + "; ".join(clauses) + ".")
    return "\n".join(lines)


def _clause(one: xr.Dataset, output: str, criterion: str) -> str:
    what = "the score" if output == "score" else f"failure ({criterion})"
    if not np.isfinite(one["S1"].values).any():
        return f"{what} does not vary over these views (variance 0): the indices are undefined (NaN)"
    best = int(np.nanargmax(one["S1"].values))
    name = str(one["parameter"].values[best])
    s1, st = float(one["S1"][best]), float(one["ST"][best])
    low, high = float(one["S1_low"][best]), float(one["S1_high"][best])
    interval = f" [{low:.0%}, {high:.0%}]" if high > low else ""
    return (f"{name} explains most of the variance of {what}: {max(s1, 0):.0%}{interval} alone (first-order), "
            f"{min(max(st, 0), 1):.0%} with its interactions (total)")


# ------------------------------------------------------------ on a map


def _map_sensitivity(data: xr.Dataset, space: Space | None, criterion: Criterion | str | None) -> xr.Dataset:
    space = recorded_space(data, space)
    names = list(space.names)
    if "score" not in data:
        raise ValueError("this Dataset has no 'score' variable: pass a map from semantic_map")
    missing = [n for n in names if n not in data["score"].dims]
    if missing:
        raise ValueError(f"the map has no dims {missing}: pass a dense map over every parameter of the Space")
    judged = _map_criterion(data, criterion)
    missing = data["score"].isnull() | (judged.missing_on_map(data) if judged is not None else False)
    if bool(missing.any()):
        raise ValueError(f"{int(missing.sum())} of {missing.size} views of this map have no value (NaN): Sobol "
                         "indices need every view of the grid, and would come from the others without a word; finish "
                         "the map (a study's unfinished tasks, a map stopped early), or select the networks and "
                         "shapes whose maps are complete")
    outputs = {"score": data["score"].astype(float)}
    if judged is not None:
        outputs["failure"] = (~judged.on_map(data).astype(bool)).astype(float)
    parts = []
    for y in outputs.values():
        total = y.var(names)
        total = total.where(total > _negligible(abs(y).max(names)), 0.0)  # a constant f: rounding, not variance
        s1, st = [], []
        for name in names:
            rest = [n for n in names if n != name]
            s1.append(_share(y.mean(rest).var(name), total) if rest else _share(total, total))
            st.append(_share(y.var(name).mean(rest), total) if rest else _share(total, total))
        index = xr.DataArray(names, dims="parameter")
        parts.append(xr.Dataset({"S1": xr.concat(s1, index), "ST": xr.concat(st, index), "variance": total}))
    ds = xr.concat(parts, xr.DataArray(list(outputs), dims="output", name="output"), coords="minimal",
                   compat="override")
    for key in INDICES:
        ds[f"{key}_low"], ds[f"{key}_high"] = ds[key].copy(), ds[key].copy()
    ds = ds.transpose("output", "parameter", ...)
    ds.attrs = {
        **(judged.attrs() if judged is not None else {"criterion": "none (score only)"}),
        "procedure": "exact for the map's grid as the uniform measure: S1 = Var over the parameter of the conditional "
                  "mean / Var; ST = mean over the others of the Var over the parameter / Var",
        "guarantee": "about the map's grid views only (no sampling: intervals equal the values)",
        "queries": 0, "space": space_json(space),
    }
    return _describe(ds)


def _map_criterion(data: xr.Dataset, criterion: Criterion | str | None) -> Criterion | None:
    if criterion is not None:
        return Criterion.resolve(criterion)
    return Criterion.top1() if "correct" in data else None


def _share(part: xr.DataArray, total: xr.DataArray) -> xr.DataArray:
    return part / total.where(total > 0)


#: A variance below (this share of the output's magnitude)^2 is rounding, not variation: a numerically constant f
#: (its values differing in the last bits) has variance 0 and undefined indices (NaN), not indices of its rounding.
RELATIVE_SPREAD = 1e-9


def _negligible(magnitude: Any) -> Any:
    """The largest variance that is rounding error for values of this magnitude (largest absolute value)."""
    return (RELATIVE_SPREAD * magnitude) ** 2


# ------------------------------------------------------------ on a function


def _sampled_sensitivity(f, space, criterion, n_samples, n_resamples, confidence, random_state, progress) -> xr.Dataset:
    from scipy.stats import qmc
    from tqdm.auto import tqdm

    fn = as_function(f, space=space)
    space = fn.space
    if criterion is not None:
        criterion = Criterion.resolve(criterion, f=fn)
    elif "label" in fn.describe():
        criterion = Criterion.resolve(None, f=fn)
    rng = np.random.default_rng(random_state)
    d = space.n
    unit = qmc.Sobol(2 * d, scramble=True, seed=rng).random(n_samples)
    a = space.lower + unit[:, :d] * space.widths
    b = space.lower + unit[:, d:] * space.widths
    blocks = [a, b]
    for i in range(d):
        mixed = a.copy()
        mixed[:, i] = b[:, i]
        blocks.append(mixed)
    score, failure = [], []
    for block in tqdm(blocks, desc="sensitivity", disable=not progress, leave=False):
        points = space.clip(block)
        if criterion is None:
            score.append(np.asarray(fn(points), dtype=float))
        else:
            passes, values, _ = criterion.evaluate(fn, points)
            score.append(values)
            failure.append((~passes).astype(float))
    outputs = {"score": np.array(score)} | ({"failure": np.array(failure)} if criterion is not None else {})
    tail = (1 - confidence) / 2
    resamples = rng.integers(0, n_samples, (n_resamples, n_samples))
    data: dict[str, list] = {key: [] for key in ("S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high", "variance")}
    for values in outputs.values():
        s1, st, variance = _estimates(values[:, None, :])
        boot_s1, boot_st, _ = _estimates(values[:, resamples])
        data["S1"].append(s1[:, 0])
        data["ST"].append(st[:, 0])
        data["variance"].append(variance[0])
        for key, boot in (("S1", boot_s1), ("ST", boot_st)):
            with np.errstate(invalid="ignore"):
                low, high = np.nanquantile(boot, [tail, 1 - tail], axis=1) if np.isfinite(boot).any() else (np.full(d, np.nan),) * 2
            data[f"{key}_low"].append(low)
            data[f"{key}_high"].append(high)
    dims = ("output", "parameter")
    ds = xr.Dataset({key: (("output",) if key == "variance" else dims, np.array(v)) for key, v in data.items()},
                    coords={"output": list(outputs), "parameter": list(space.names)})
    ds.attrs = {
        **(criterion.attrs() if criterion is not None else {"criterion": "none (score only)"}),
        "procedure": "Saltelli sampling (scrambled Sobol' points), Saltelli et al. (2010) first-order and Jansen total "
                  "estimators, bootstrap percentile intervals",
        "guarantee": f"estimates over the uniform measure of the Space; intervals: bootstrap at confidence {confidence:g} "
                     "(approximate)",
        "n_samples": n_samples, "n_resamples": n_resamples, "confidence": confidence,
        "random_state": state_attr(random_state), "queries": int(n_samples * (d + 2)), "space": space_json(space),
        **{k: v for k, v in fn.describe().items() if k in ("network", "shape", "label_name")},
    }
    return _describe(ds)


def _estimates(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S1 and ST [d, R] and the variance [R] from values [d + 2, R, N]: f(A), f(B), f(A with column i of B)."""
    both = np.concatenate([values[0], values[1]], axis=-1)
    values = values - both.mean(axis=-1)[..., None]  # centred: the S1 estimator's spread grows with the mean
    fa, fb, mixed = values[0], values[1], values[2:]
    variance = both.var(axis=-1)
    variance = np.where(variance > _negligible(np.abs(both).max(axis=-1)), variance, 0.0)  # rounding of a constant
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(variance > 0, variance, np.nan)
        s1 = (fb * (mixed - fa)).mean(axis=-1) / scale
        st = 0.5 * ((fa - mixed) ** 2).mean(axis=-1) / scale
    return s1, st, variance


def _describe(ds: xr.Dataset) -> xr.Dataset:
    ds["S1"].attrs = {"long_name": "first-order Sobol index: share of the variance the parameter explains alone"}
    ds["ST"].attrs = {"long_name": "total Sobol index: share of the variance with the parameter's interactions"}
    ds["variance"].attrs = {"long_name": "total variance of the output over the views"}
    return ds
