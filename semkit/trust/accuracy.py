"""Robust accuracy and decision noise: shares of views, each with its criterion and its confidence.

* [`robust_accuracy`][semkit.robust_accuracy]: the share of views whose whole +-r box passes:
  exact on a dense map's grid (erosion of its pass/fail grid), or from
  sampled views of f, each box certified by the continuous guarantee (or
  checked on the lattice, by name), with a Clopper-Pearson interval;
* [`decision_noise`][semkit.decision_noise]: the share of views whose answer changes within
  +-radius: on a map between grid neighbours, or from sampled views of f and
  random neighbours within +-radius (the scale at which networks' answers
  flip, below any lattice).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..function import as_function
from ..space import Space, recorded_space
from ..validation import check_confidence, check_count
from .guarantee import Guarantee
from .lattice import LatticeOracle, largest_passing
from .radius import check_certificate, continuous_steps
from .records import json_steps, json_units, state_attr

__all__ = ["decision_noise", "robust_accuracy"]

MISSING = "views without a value (NaN) in the map count as failing"


def robust_accuracy(
    f: Any,
    radius: float | Sequence[float],
    *,
    criterion: Criterion | str | Sequence[Criterion | str] | None = None,
    space: Space | None = None,
    n_samples: int = 200,
    step: float | Sequence[float] | None = None,
    certificate: str | Guarantee = "sampled",
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    progress: bool = True,
) -> xr.DataArray:
    """The share of views whose whole +-r box passes, for each radius r (Space units, every parameter).

    From a dense map: exact on the map's grid (a statement about grid views), by erosion of its pass/fail grid with
    a box of half-width floor(r / grid step) per parameter (clipped at bounded parameters, wrapped on periodic ones
    that the grid closes; coordinates in any order), over the map's other dims (``network``, ``shape``). Views
    without a value (NaN) count as failing.

    From a function f: ``n_samples`` uniform random views. A view counts at r when its +-r' box passes for every
    asked radius r' <= r: its lattice of step ``step`` passes, then (``certificate="sampled"``) the box meets the
    continuous guarantee by fresh uniform samples. The share has a Clopper-Pearson interval at ``confidence`` over
    the sampled views.

    Parameters
    ----------
    f : callable or Dataset
        A dense map (a Dataset from [`semantic_map`][semkit.semantic_map]), or a function of points [B, n] to sample.
    radius : float or sequence of float
        One radius or several (a ``radius`` dim), each applied to every parameter; non-negative.
    criterion : Criterion or str, or a sequence of them, optional
        What a view must pass; None: top-1 correct. A map takes a list: a ``criterion`` dim (with a ``min_score``
        coord, NaN for criteria on classes), so a conclusion can be checked under every criterion.
    space : Space, optional
        The Space; None: ``f.space``, or the one the map records.
    n_samples : int, default 200
        From f: how many uniform random views.
    step : float or sequence of float, optional
        From f: the lattice step each box is checked on, per parameter or for all; None: the Space's default step.
    certificate : "sampled", "lattice" or Guarantee, default "sampled"
        From f: "sampled", with confidence ``confidence`` at most a share 0.01 of each box's views fail; a
        [`Guarantee`][semkit.trust.Guarantee] sets another confidence and ``max_failure``; "lattice", the lattice alone.
    confidence : float, default 0.95
        From f: the level of the Clopper-Pearson interval (and of the default guarantee).
    random_state : int, Generator or None, default 0
        From f: an int or a numpy Generator (the same value, the same views); None: fresh randomness.
    progress : bool, default True
        From f: show a progress bar.

    Returns
    -------
    DataArray
        ``robust_accuracy`` over ``radius`` (and the map's other dims, or ``criterion``), the share in [0, 1]. From a
        map, attrs ``missing_views``, ``grid_step`` and the criterion; from f, coords ``ci_low`` and ``ci_high``, attrs
        ``n_samples``, ``confidence``, ``step``, ``certificate``, ``queries``, ``guarantee``.

    Raises
    ------
    ValueError
        A negative or non-numeric radius, a list of criteria (or one twice) with f, a map without the Space's dims or
        with an uneven grid.
    """
    radii = _radii(radius)
    if isinstance(f, xr.Dataset):
        if isinstance(criterion, (list, tuple)):
            criteria = Criterion.resolve_all(criterion)
            surfaces = [map_robust_accuracy(f, radii, c, space) for c in criteria]
            names = [c.name for c in criteria]
            if len(set(names)) < len(names):
                raise ValueError(f"criterion= lists a criterion twice: {names}")
            out = xr.concat(surfaces, dim=xr.DataArray(names, dims="criterion", name="criterion"),
                            combine_attrs="drop_conflicts")
            out = out.assign_coords(min_score=("criterion", [np.nan if c.min_score is None else c.min_score
                                                             for c in criteria]))
            for key in ("criterion_spec", "min_score"):
                out.attrs.pop(key, None)
            out.attrs["criterion"] = "per criterion (the criterion dim)"
            out.attrs["long_name"] = "share of grid views whose whole +-radius box passes (per criterion)"
            return out
        return map_robust_accuracy(f, radii, Criterion.resolve(criterion), space)
    if isinstance(criterion, (list, tuple)):
        raise ValueError("a list of criteria is for maps; robust_accuracy of f takes one criterion")
    return _sampled_robust_accuracy(f, radii, criterion, space, n_samples, step, certificate, confidence,
                                    random_state, progress)


def _radii(radius: Any) -> np.ndarray:
    try:
        radii = np.atleast_1d(np.asarray(radius, dtype=float))
    except (TypeError, ValueError):
        radii = np.array([np.nan])
    if radii.ndim != 1 or not len(radii) or not (np.isfinite(radii).all() and (radii >= 0).all()):
        raise ValueError(f"radius must be a non-negative number or a sequence of them (each applies to every "
                         f"parameter), got {radius!r}")
    return radii


def _sorted_map(data: xr.Dataset, space: Space) -> xr.Dataset:
    """The map with each parameter's coordinate ascending (a map built high to low, or reversed, reads the same)."""
    for name in space.names:
        if name not in data.dims:
            raise ValueError(f"this map has no {name!r} dim, which its Space has: select nothing away from a map's "
                             f"grid, or pass the right space=")
    return data.sortby(list(space.names))


def grid_steps(data: xr.Dataset, space: Space, what: str) -> tuple[list[float], list[str]]:
    """The map's grid step per parameter (its coordinates ascending), and the filter mode: "wrap" where a
    periodic grid closes its circle."""
    steps, modes = [], []
    for p in space.parameters:
        g = np.asarray(data[p.name].values, dtype=float)
        step = float(g[1] - g[0]) if len(g) > 1 else float("inf")
        if len(g) > 1 and not (step > 0 and np.allclose(np.diff(g), step)):
            raise ValueError(f"{what} needs an evenly spaced grid of distinct values; {p.name} is not")
        steps.append(step)
        modes.append("wrap" if space.closes_circle(p.name, g) else "constant")
    return steps, modes


def _halves(radius: np.ndarray, steps: list[float], sizes: list[int]) -> list[int]:
    """Half-widths in grid steps, at most the grid's length (a wider box sees no more of the grid)."""
    return [min(int(math.floor(r / s + 1e-9)), n) if math.isfinite(s) else 0
            for r, s, n in zip(radius, steps, sizes)]


def map_robust_accuracy(data: xr.Dataset, radii: np.ndarray, criterion: Criterion, space: Space | None) -> xr.DataArray:
    from scipy import ndimage

    space = recorded_space(data, space)
    data = _sorted_map(data, space)
    names = list(space.names)
    good = criterion.on_map(data)
    missing = int(criterion.missing_on_map(data).sum())
    others = [d for d in good.dims if d not in names]
    good = good.transpose(*others, *names)
    steps, modes = grid_steps(data, space, "robust_accuracy")
    sizes = [data.sizes[n] for n in names]
    values = good.values.astype(np.uint8).reshape(-1, *good.shape[len(others):])
    out = np.empty((len(radii), len(values)))
    for i, r in enumerate(radii):
        size = [2 * h + 1 for h in _halves(np.full(len(names), r), steps, sizes)]
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
        "missing_views": missing,
        "missing": MISSING,
        "procedure": "exact on the map's grid (erosion of the pass/fail grid)",
        "guarantee": "about the map's grid views only, not the views between them",
    }
    result["radius"].attrs = {"units": json_units(space)}
    return result


def _guarantee(certificate: str | Guarantee, confidence: float, tests: int) -> Guarantee | None:
    """The continuous guarantee each box must meet (None: the lattice alone)."""
    if isinstance(certificate, Guarantee):
        return replace(certificate, tests=tests)
    if check_certificate(certificate) == "lattice":
        return None
    return Guarantee(confidence, 0.01, tests=tests)


def _sampled_robust_accuracy(f, radii, criterion, space, n_samples, step, certificate, confidence, random_state,
                             progress) -> xr.DataArray:
    from scipy.stats import binomtest

    fn = as_function(f, space=space)
    space = fn.space
    criterion = Criterion.resolve(criterion, f=fn)
    confidence = check_confidence(confidence)
    n_samples = check_count(n_samples, "n_samples")
    guarantee = _guarantee(certificate, confidence, len(radii))
    delta = space.steps(step)
    rng = np.random.default_rng(random_state)
    views = space.lower + rng.random((n_samples, space.n)) * space.widths
    order = np.argsort(radii)
    halves = [np.floor(radii[i] / delta + 1e-9).astype(int) for i in order]
    oracle = LatticeOracle(fn, space, criterion, views, delta)
    last = largest_passing(oracle, halves, progress, "robust accuracy")  # rank of the largest passing radius
    queries = int(oracle.queries.sum())
    kept = last  # ranks (in ascending radius) each view passes up to; -1: the view alone, -2: it fails
    attrs: dict[str, Any] = {}
    if guarantee is not None:
        # ascending radii the lattice passed; a view keeps the radii up to its first uncertified box
        candidates = [list(range(int(r) + 1)) for r in last]
        steps_of = np.array(halves)  # [R, n] lattice steps per radius rank
        ok, extra = _certify_ranks(fn, criterion, space, views, delta, steps_of, candidates, guarantee, rng)
        kept = np.where(last == -2, -2, np.minimum(last, ok))
        queries += int(extra.sum())
        attrs = {**guarantee.attrs(), "guarantee": f"per counted view and radius: {guarantee.describe(criterion)}"}
    else:
        attrs = {"guarantee": "per counted view: every lattice point of its box passes; nothing between lattice points"}
    share, low, high = np.empty(len(radii)), np.empty(len(radii)), np.empty(len(radii))
    for rank, i in enumerate(order):
        k = int((kept >= rank).sum())
        ci = binomtest(k, n_samples).proportion_ci(confidence_level=confidence, method="exact")
        share[i], low[i], high[i] = k / n_samples, ci.low, ci.high
    result = xr.DataArray(share, dims="radius", coords={"radius": radii, "ci_low": ("radius", low), "ci_high": ("radius", high)},
                          name="robust_accuracy")
    result.attrs = {
        "long_name": f"share of sampled views whose whole +-radius box passes ({criterion.name})",
        **criterion.attrs(), "certificate": "lattice" if guarantee is None else "sampled",
        "n_samples": n_samples, "confidence": confidence, "step": delta.tolist(),
        "random_state": state_attr(random_state), "queries": queries, **attrs,
        "procedure": "uniform random views, each box checked on the lattice, then certified (sampled); Clopper-Pearson "
                  "interval over the views",
    }
    result["radius"].attrs = {"units": json_units(space)}
    return result


def _certify_ranks(fn, criterion, space, views, delta, steps_of, candidates, guarantee, rng):
    """Per view, the highest radius rank up to which every box (rank 0, 1, ...) is certified (-1: none), and queries.

    Ranks go up together for all views still certified; each box is one test of ``guarantee``; each rank's
    fresh samples come from ``rng``.
    """
    P = len(views)
    best = np.full(P, -1, dtype=np.int64)
    queries = np.zeros(P, dtype=np.int64)
    for rank in range(len(steps_of)):
        todo = np.array([i for i in range(P) if best[i] == rank - 1 and rank in candidates[i]], dtype=int)
        if not len(todo):
            break
        half = steps_of[rank] * delta
        seed = int(rng.integers(2**31))
        kept, q, _ = continuous_steps(fn, criterion, space, views[todo], half, [[1]] * len(todo), guarantee, seed)
        queries[todo] += q
        best[todo[kept == 1]] = rank
    return best, queries


def decision_noise(
    f: Any,
    radius: float | Sequence[float] = 0.5,
    *,
    criterion: Criterion | str | None = None,
    space: Space | None = None,
    n_samples: int = 200,
    neighbours: int = 8,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    progress: bool = True,
) -> xr.DataArray:
    """The share of views whose answer changes within +-``radius`` (Space units; one number or one per parameter).

    The answer is the top-1 class, or pass/fail under ``criterion`` when one is given. From a dense map: exact on
    its grid (coordinates in any order), the share of grid views with a grid neighbour within +-radius that answers
    otherwise, over the map's other dims. From f: uniform views, each with uniform neighbours within +-radius; a view
    counts when one of them answers otherwise (a lower bound of the share whose answer changes somewhere in the box),
    with a Clopper-Pearson interval. This is the scale at which a lattice cannot see: a share well above 0 at a radius
    below the lattice step is why lattice statements need an audit.

    Parameters
    ----------
    f : callable or Dataset
        A dense map (a Dataset from [`semantic_map`][semkit.semantic_map]), or a function of points [B, n] to sample.
    radius : float or sequence of float, default 0.5
        The half-width of the neighbourhood, one positive number or one per parameter. On a map it must reach at
        least one grid step.
    criterion : Criterion or str, optional
        Count changes of pass/fail under it; None: changes of the top-1 class (then f, or the map, must have one).
    space : Space, optional
        The Space; None: ``f.space``, or the one the map records.
    n_samples : int, default 200
        From f: how many uniform views.
    neighbours : int, default 8
        From f: uniform neighbours per view.
    confidence : float, default 0.95
        From f: the level of the Clopper-Pearson interval.
    random_state : int, Generator or None, default 0
        From f: an int or a numpy Generator (the same value, the same views); None: fresh randomness.
    progress : bool, default True
        From f: show a progress bar.

    Returns
    -------
    DataArray
        ``decision_noise``, the share in [0, 1]: over the map's other dims, or a scalar from f with coords ``ci_low``
        and ``ci_high``; attrs ``answer``, ``radius``, ``units`` and (from f) ``n_samples``, ``neighbours``,
        ``queries``.

    Raises
    ------
    ValueError
        A radius not positive or of the wrong length; no top-1 answer and no criterion; a map with views without a
        value (NaN), or a radius below its grid step (pass f instead).
    """
    if isinstance(f, xr.Dataset):
        return _map_decision_noise(f, radius, criterion, space)
    return _sampled_decision_noise(f, radius, criterion, space, n_samples, neighbours, confidence, random_state,
                                   progress)


def _answer_name(criterion: Criterion | None) -> str:
    return "top-1 class" if criterion is None else f"pass/fail ({criterion.name})"


def _per_parameter(radius: Any, space: Space) -> np.ndarray:
    """``radius`` as one positive number per parameter of ``space``, or a clear error."""
    names = list(space.names)
    try:
        r = np.asarray(radius, dtype=float)
    except (TypeError, ValueError):
        r = np.array(np.nan)
    if r.ndim > 1 or (r.ndim == 1 and len(r) not in (1, space.n)):
        raise ValueError(f"radius must be one number or one per parameter {names} ({space.n}), got {radius!r}")
    r = np.broadcast_to(r, (space.n,)).copy()
    if not (np.isfinite(r).all() and (r > 0).all()):
        raise ValueError(f"radius must be positive (one number or one per parameter {names}), got {radius!r}")
    return r


def _map_decision_noise(data: xr.Dataset, radius, criterion, space) -> xr.DataArray:
    from scipy import ndimage

    space = recorded_space(data, space)
    data = _sorted_map(data, space)
    names = list(space.names)
    d = _per_parameter(radius, space)
    criterion = None if criterion is None else Criterion.resolve(criterion)
    if criterion is None:
        if "top1" not in data:
            raise ValueError("this map has no 'top1' variable (a map of a plain function): pass criterion= to count "
                             "changes of pass/fail")
        answer = data["top1"]
        missing = int((answer.isnull() | (answer < 0)).sum())  # no class: a view never computed
    else:
        missing = int(criterion.missing_on_map(data).sum())
        answer = criterion.on_map(data).astype(np.int64)
    if missing:
        raise ValueError(f"this map has {missing} view(s) without a value (NaN): decision noise cannot say whether "
                         "their answer changes; select the complete part of the map, or compute the missing views")
    answer = answer.astype(np.int64)
    others = [dim for dim in answer.dims if dim not in names]
    answer = answer.transpose(*others, *names)
    steps, modes = grid_steps(data, space, "decision_noise")
    half = _halves(d, steps, [data.sizes[n] for n in names])
    if not any(half):
        raise ValueError(f"radius {d.tolist()} is below the map's grid step {steps}: a map cannot see changes at that "
                         "scale; pass f instead (decision_noise(f, radius))")
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
        "long_name": f"share of grid views whose {_answer_name(criterion)} differs at a grid neighbour within +-radius",
        "answer": _answer_name(criterion), "radius": d.tolist(), "grid_step": json_steps(names, steps),
        "units": json_units(space), "procedure": "exact on the map's grid", **(criterion.attrs() if criterion else {}),
    }
    return result


def _sampled_decision_noise(f, radius, criterion, space, n_samples, neighbours, confidence, random_state,
                            progress) -> xr.DataArray:
    from scipy.stats import binomtest
    from tqdm.auto import tqdm

    fn = as_function(f, space=space)
    space = fn.space
    d = _per_parameter(radius, space)
    n_samples, neighbours = check_count(n_samples, "n_samples"), check_count(neighbours, "neighbours")
    confidence = check_confidence(confidence)
    criterion = None if criterion is None else Criterion.resolve(criterion, f=fn)
    rng = np.random.default_rng(random_state)
    views = space.lower + rng.random((n_samples, space.n)) * space.widths
    near = views[:, None, :] + (2 * rng.random((n_samples, neighbours, space.n)) - 1) * d
    points = space.clip(np.concatenate([views, near.reshape(-1, space.n)]))
    before = fn.queries
    chunks = np.array_split(np.arange(len(points)), max(1, len(points) // 256))
    answers = []
    for chunk in tqdm(chunks, desc="decision noise", disable=not progress, leave=False):
        if criterion is None:
            ev = fn.evaluate(points[chunk])
            if ev.top1 is None:
                raise ValueError("this f gives scores only, so it has no top-1 answer: pass criterion= (e.g. "
                                 "criterion='score >= 0.5') to count changes of pass/fail")
            answers.append(np.asarray(ev.top1))
        else:
            answers.append(criterion.evaluate(fn, points[chunk])[0])
    answer = np.concatenate(answers)
    base, around = answer[:n_samples], answer[n_samples:].reshape(n_samples, neighbours)
    changed = int((around != base[:, None]).any(axis=1).sum())
    ci = binomtest(changed, n_samples).proportion_ci(confidence_level=confidence, method="exact")
    result = xr.DataArray(changed / n_samples, coords={"ci_low": ci.low, "ci_high": ci.high}, name="decision_noise")
    result.attrs = {
        "long_name": f"share of views whose {_answer_name(criterion)} differs at one of {neighbours} uniform views "
                     "within +-radius (a lower bound)",
        "answer": _answer_name(criterion), "radius": d.tolist(), "n_samples": n_samples, "neighbours": neighbours,
        "confidence": confidence, "random_state": state_attr(random_state), "queries": int(fn.queries - before),
        "units": json_units(space), "procedure": "uniform views and neighbours; Clopper-Pearson interval",
        **(criterion.attrs() if criterion else {}),
    }
    return result
