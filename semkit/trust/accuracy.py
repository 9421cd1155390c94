"""Robust accuracy and decision noise: shares of views, each with its criterion and its confidence.

* :func:`robust_accuracy`: the share of views whose whole +-r box passes:
  exact on a dense map's grid (erosion of its pass/fail grid), or from
  sampled views of f, each box certified by the continuous guarantee (or
  checked on the lattice, by name), with a Clopper-Pearson interval;
* :func:`decision_noise`: the share of views whose answer changes within
  +-delta: on a map between grid neighbours, or from sampled views of f and
  random neighbours within +-delta (the scale at which networks' answers
  flip, below any lattice).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..function import as_function
from ..space import Space, recorded_space
from .guarantee import Guarantee
from .lattice import LatticeOracle, largest_passing
from .radius import check_certificate, continuous_steps
from .records import json_steps, json_units
def robust_accuracy(
    data: Any,
    radii: float | Sequence[float],
    *,
    criterion: Criterion | str | None = None,
    threshold: float | Sequence[float] | None = None,
    space: Space | None = None,
    samples: int = 200,
    step: float | Sequence[float] | None = None,
    certificate: str = "sampled",
    confidence: float = 0.95,
    max_failure: float = 0.01,
    seed: int = 0,
    progress: bool = True,
) -> xr.DataArray:
    """The share of views whose whole +-r box passes, for each radius r (Space units, every parameter).

    From a dense map (an ``xarray.Dataset`` from ``semantic_map``): exact on
    the map's grid (a statement about grid views), by erosion of its
    pass/fail grid with a box of half-width floor(r / grid step) per
    parameter (clipped at bounded parameters, wrapped on periodic ones that
    the grid closes); over ``radius`` and the map's other dims (``network``,
    ``shape``). A list of thresholds adds a ``threshold`` dim, so a
    conclusion can be checked under every criterion.

    From a function f: ``samples`` uniform random views. A view counts at r
    when its +-r' box passes for every asked radius r' <= r: with
    ``certificate="sampled"`` (default) each box meets the continuous
    guarantee (with confidence ``confidence`` at most a share
    ``max_failure`` of its views fail; fresh uniform samples), after its
    lattice of step ``step`` passed; with ``"lattice"`` the lattice
    alone. The share has a Clopper-Pearson interval at ``confidence`` over
    the sampled views (coords ``ci_low`` and ``ci_high``).
    """
    radii_arr = np.atleast_1d(np.asarray(radii, dtype=float))
    if not (np.isfinite(radii_arr).all() and (radii_arr >= 0).all()):
        raise ValueError(f"radii must be non-negative numbers, got {radii}")
    if isinstance(data, xr.Dataset):
        if isinstance(threshold, (list, tuple, np.ndarray)):
            if criterion is not None:
                raise ValueError("pass criterion= or a list of thresholds, not both")
            surfaces = [map_robust_accuracy(data, radii_arr, Criterion.score(float(t)), space) for t in threshold]
            out = xr.concat(surfaces, dim=xr.DataArray(np.asarray(threshold, dtype=float), dims="threshold", name="threshold"))
            out.attrs.update(criterion="score >= threshold")
            out.attrs.pop("criterion_spec", None)
            return out
        return map_robust_accuracy(data, radii_arr, Criterion.resolve(criterion, threshold), space)
    return _sampled_robust_accuracy(data, radii_arr, criterion, threshold, space, samples, step, certificate,
                                    confidence, max_failure, seed, progress)


def grid_steps(data: xr.Dataset, space: Space, what: str) -> tuple[list[float], list[str]]:
    """The map's grid step per parameter, and the filter mode: "wrap" where a periodic grid closes its circle."""
    steps, modes = [], []
    for p in space.parameters:
        g = np.asarray(data[p.name].values, dtype=float)
        step = float(g[1] - g[0]) if len(g) > 1 else float("inf")
        if len(g) > 2 and not np.allclose(np.diff(g), step):
            raise ValueError(f"{what} needs an evenly spaced grid; {p.name} is not")
        steps.append(step)
        modes.append("wrap" if space.closes_circle(p.name, g) else "constant")
    return steps, modes


def map_robust_accuracy(data: xr.Dataset, radii: np.ndarray, criterion: Criterion, space: Space | None) -> xr.DataArray:
    from scipy import ndimage

    space = recorded_space(data, space)
    names = list(space.names)
    good = criterion.on_map(data)
    others = [d for d in good.dims if d not in names]
    good = good.transpose(*others, *names)
    steps, modes = grid_steps(data, space, "robust_accuracy")
    values = good.values.astype(np.uint8).reshape(-1, *good.shape[len(others):])
    out = np.empty((len(radii), len(values)))
    for i, r in enumerate(radii):
        half = [int(math.floor(r / s + 1e-9)) if math.isfinite(s) else 0 for s in steps]
        size = [2 * h + 1 for h in half]
        for j, grid in enumerate(values):
            eroded = ndimage.minimum_filter(grid, size=size, mode=modes, cval=1)
            out[i, j] = eroded.mean()
    coords = {"radius": radii, **{d: good[d].values for d in others if d in good.coords}}
    result = xr.DataArray(out.reshape(len(radii), *good.shape[: len(others)]), dims=("radius", *others), coords=coords,
                          name="robust_accuracy")
    result.attrs = {
        "long_name": f"share of grid views whose whole +-radius box passes ({criterion.name})",
        **criterion.attrs(),
        "grid_step": json_steps(names, steps),
        "method": "exact on the map's grid (erosion of the pass/fail grid)",
        "guarantee": "about the map's grid views only, not the views between them",
    }
    result["radius"].attrs = {"units": json_units(space)}
    return result


def _sampled_robust_accuracy(f, radii, criterion, threshold, space, samples, step, certificate, confidence,
                             max_failure, seed, progress) -> xr.DataArray:
    from scipy.stats import binomtest

    fn = as_function(f, space=space)
    space = fn.space
    criterion = Criterion.resolve(criterion, threshold, fn)
    check_certificate(certificate)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a whole number of at least 1, got {samples!r}")
    delta = space.steps(step)
    rng = np.random.default_rng(seed)
    views = space.lower + rng.random((samples, space.n)) * space.widths
    order = np.argsort(radii)
    halves = [np.floor(radii[i] / delta + 1e-9).astype(int) for i in order]
    oracle = LatticeOracle(fn, space, criterion, views, delta)
    last = largest_passing(oracle, halves, progress, "robust accuracy")  # rank of the largest passing radius
    queries = int(oracle.queries.sum())
    kept = last  # ranks (in ascending radius) each view passes up to; -1: the view alone, -2: it fails
    attrs: dict[str, Any] = {}
    if certificate == "sampled":
        guarantee = Guarantee(confidence, max_failure, tests=len(radii))
        # ascending radii the lattice passed; a view keeps the radii up to its first uncertified box
        candidates = [list(range(int(r) + 1)) for r in last]
        steps_of = np.array(halves)  # [R, n] lattice steps per radius rank
        ok, extra = _certify_ranks(fn, criterion, space, views, delta, steps_of, candidates, guarantee, seed)
        kept = np.where(last == -2, -2, np.minimum(last, ok))
        queries += int(extra.sum())
        attrs = {**guarantee.attrs(), "guarantee": f"per counted view and radius: {guarantee.describe(criterion)}"}
    else:
        attrs = {"guarantee": "per counted view: every lattice point of its box passes; nothing between lattice points"}
    share, low, high = np.empty(len(radii)), np.empty(len(radii)), np.empty(len(radii))
    for rank, i in enumerate(order):
        k = int((kept >= rank).sum())
        ci = binomtest(k, samples).proportion_ci(confidence_level=confidence, method="exact")
        share[i], low[i], high[i] = k / samples, ci.low, ci.high
    result = xr.DataArray(share, dims="radius", coords={"radius": radii, "ci_low": ("radius", low), "ci_high": ("radius", high)},
                          name="robust_accuracy")
    result.attrs = {
        "long_name": f"share of sampled views whose whole +-radius box passes ({criterion.name})",
        **criterion.attrs(), "certificate": certificate,
        "samples": int(samples), "confidence": confidence, "step": delta.tolist(), "seed": seed,
        "queries": queries, **attrs,
        "method": "uniform random views, each box checked on the lattice, then certified (sampled); Clopper-Pearson "
                  "interval over the views",
    }
    result["radius"].attrs = {"units": json_units(space)}
    return result


def _certify_ranks(fn, criterion, space, views, delta, steps_of, candidates, guarantee, seed):
    """Per view, the highest radius rank up to which every box (rank 0, 1, ...) is certified (-1: none), and queries.

    Ranks go up together for all views still certified; each box is one test of ``guarantee``.
    """
    P = len(views)
    best = np.full(P, -1, dtype=np.int64)
    queries = np.zeros(P, dtype=np.int64)
    for rank in range(len(steps_of)):
        todo = np.array([i for i in range(P) if best[i] == rank - 1 and rank in candidates[i]], dtype=int)
        if not len(todo):
            break
        half = steps_of[rank] * delta
        kept, q, _ = continuous_steps(fn, criterion, space, views[todo], half, [[1]] * len(todo), guarantee, seed + rank)
        queries[todo] += q
        best[todo[kept == 1]] = rank
    return best, queries


def decision_noise(
    data: Any,
    delta: float | Sequence[float] = 0.5,
    *,
    criterion: Criterion | str | None = None,
    space: Space | None = None,
    samples: int = 200,
    neighbours: int = 8,
    confidence: float = 0.95,
    seed: int = 0,
) -> xr.DataArray:
    """The share of views whose answer changes within +-``delta`` (Space units; one number or one per parameter).

    The answer is the top-1 class, or pass/fail under ``criterion`` when one
    is given (needed for f without classes). From a dense map: exact on its
    grid, the share of grid views with a grid neighbour within +-delta that
    answers otherwise (``delta`` must reach at least one grid step), over
    the map's other dims. From f: ``samples`` uniform views, each with
    ``neighbours`` uniform views within +-delta; a view counts when one of
    them answers otherwise (a lower bound of the share whose answer changes
    somewhere in the box), with a Clopper-Pearson interval at ``confidence``.
    This is the scale at which a lattice cannot see: a share well above 0 at
    delta below the lattice step is why lattice statements need an audit.
    """
    if isinstance(data, xr.Dataset):
        return _map_decision_noise(data, delta, criterion, space)
    return _sampled_decision_noise(data, delta, criterion, space, samples, neighbours, confidence, seed)


def _answer_name(criterion: Criterion | None) -> str:
    return "top-1 class" if criterion is None else f"pass/fail ({criterion.name})"


def _map_decision_noise(data: xr.Dataset, delta, criterion, space) -> xr.DataArray:
    from scipy import ndimage

    space = recorded_space(data, space)
    names = list(space.names)
    d = np.broadcast_to(np.asarray(delta, dtype=float), (space.n,))
    if not (np.isfinite(d).all() and (d > 0).all()):
        raise ValueError(f"delta must be positive (one number or one per parameter {names}), got {delta}")
    criterion = None if criterion is None else Criterion.resolve(criterion)
    if criterion is None:
        if "top1" not in data:
            raise ValueError("this map has no 'top1' variable (a map of a plain function): pass criterion= to count "
                             "changes of pass/fail")
        answer = data["top1"]
    else:
        answer = criterion.on_map(data).astype(np.int64)
    others = [dim for dim in answer.dims if dim not in names]
    answer = answer.transpose(*others, *names)
    steps, modes = grid_steps(data, space, "decision_noise")
    half = [int(math.floor(dd / s + 1e-9)) if math.isfinite(s) else 0 for dd, s in zip(d, steps)]
    if not any(half):
        raise ValueError(f"delta {d.tolist()} is below the map's grid step {steps}: a map cannot see changes at that "
                         "scale; pass f instead (decision_noise(f, delta))")
    size = [2 * h + 1 for h in half]
    values = answer.values.reshape(-1, *answer.shape[len(others):])
    out = np.empty(len(values))
    for j, grid in enumerate(values):
        high = ndimage.maximum_filter(grid, size=size, mode=modes, cval=np.iinfo(np.int64).min)
        low = ndimage.minimum_filter(grid, size=size, mode=modes, cval=np.iinfo(np.int64).max)
        out[j] = (high != low).mean()
    coords = {dim: answer[dim].values for dim in others if dim in answer.coords}
    result = xr.DataArray(out.reshape(answer.shape[: len(others)]), dims=others, coords=coords, name="decision_noise")
    result.attrs = {
        "long_name": f"share of grid views whose {_answer_name(criterion)} differs at a grid neighbour within +-delta",
        "answer": _answer_name(criterion), "delta": d.tolist(), "grid_step": json_steps(names, steps),
        "method": "exact on the map's grid", **(criterion.attrs() if criterion else {}),
    }
    return result


def _sampled_decision_noise(f, delta, criterion, space, samples, neighbours, confidence, seed) -> xr.DataArray:
    from scipy.stats import binomtest

    fn = as_function(f, space=space)
    space = fn.space
    d = np.broadcast_to(np.asarray(delta, dtype=float), (space.n,))
    if not (np.isfinite(d).all() and (d > 0).all()):
        raise ValueError(f"delta must be positive (one number or one per parameter {list(space.names)}), got {delta}")
    if not isinstance(samples, (int, np.integer)) or samples < 1 or not isinstance(neighbours, (int, np.integer)) or neighbours < 1:
        raise ValueError(f"samples and neighbours must be whole numbers >= 1, got {samples!r} and {neighbours!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    criterion = None if criterion is None else Criterion.resolve(criterion, None, fn)
    rng = np.random.default_rng([seed, 104729])
    views = space.lower + rng.random((samples, space.n)) * space.widths
    near = views[:, None, :] + (2 * rng.random((samples, neighbours, space.n)) - 1) * d
    points = space.clip(np.concatenate([views, near.reshape(-1, space.n)]))
    before = fn.queries
    if criterion is None:
        ev = fn.evaluate(points)
        if ev.top1 is None:
            raise ValueError("this f gives scores only, so it has no top-1 answer: pass criterion= (e.g. threshold "
                             "criterion 'score >= 0.5') to count changes of pass/fail")
        answer = np.asarray(ev.top1)
    else:
        answer, _, _ = criterion.evaluate(fn, points)
    base, around = answer[:samples], answer[samples:].reshape(samples, neighbours)
    changed = int((around != base[:, None]).any(axis=1).sum())
    ci = binomtest(changed, samples).proportion_ci(confidence_level=confidence, method="exact")
    result = xr.DataArray(changed / samples, coords={"ci_low": ci.low, "ci_high": ci.high}, name="decision_noise")
    result.attrs = {
        "long_name": f"share of views whose {_answer_name(criterion)} differs at one of {neighbours} uniform views "
                     "within +-delta (a lower bound)",
        "answer": _answer_name(criterion), "delta": d.tolist(), "samples": int(samples), "neighbours": int(neighbours),
        "confidence": confidence, "seed": int(seed), "queries": int(fn.queries - before),
        "units": json_units(space), "method": "uniform views and neighbours; Clopper-Pearson interval",
        **(criterion.attrs() if criterion else {}),
    }
    return result
