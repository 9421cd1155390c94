"""Robustness with a guarantee and a stated criterion.

The paper's boxes are heuristics: they can hold many misclassified views.
This module answers the same questions with guarantees, always under an
explicit criterion (:class:`Criterion`: top-1 correct, or score >= t):

* :func:`robustness_radius`: the largest lattice box around a view in which
  every lattice point passes (exact at the lattice's resolution);
* :func:`robust_accuracy`: the share of views whose whole +-r box passes,
  exactly from a dense map (erosion of its pass/fail grid), or from sampled
  views of f with a confidence interval;
* :func:`find_failures`: worst-case views near a start (random search,
  CMA-ES) within a hard query budget;
* :class:`Verified`: verified regions for
  ``find_regions(f, starts, algorithms=("verified",))``, grown from a start
  until no face can move out without taking in a failure (:class:`LatticeBox`,
  :class:`SampledBox`); the lattice certificate checks every lattice point
  inside, the sampled one bounds the failure rate at a stated confidence
  with fresh uniform samples.

All starts and points advance together: each round is one batched call of f.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import xarray as xr

from .regions import Proposal, RegionMethod, Search, register
from .semantic import ScoreFunction, as_function
from .space import Space, recorded_space

#: Default lattice step for parameters measured in degrees; others use 1/32 of their range.
DEFAULT_ANGLE_RESOLUTION = 3.0
CERTIFICATES = ("lattice", "sampled")
#: A sampled box locates its faces to half the resolution (growth steps and pull-backs).
FINE = 2




# ------------------------------------------------------------------ criterion
@dataclass(frozen=True)
class Criterion:
    """What it means for a view to pass: top-1 correct (``threshold=None``) or score >= ``threshold``."""

    threshold: float | None = None
    label: int | None = None  #: the true class, for top-1

    def __post_init__(self) -> None:
        if self.threshold is not None and not (isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold)):
            raise ValueError(f"threshold must be a finite number (a score in [0, 1]), got {self.threshold!r}")

    @classmethod
    def of(cls, fn: ScoreFunction, threshold: float | None) -> "Criterion":
        """The criterion for ``fn``: top-1 needs an f that knows its true class (a SemanticFunction)."""
        if threshold is not None:
            return cls(float(threshold))
        label = fn.describe().get("label")
        if label is None:
            raise ValueError(_SCORES_ONLY)
        return cls(None, int(label))

    @property
    def name(self) -> str:
        return "top-1 correct" if self.threshold is None else f"score >= {self.threshold:g}"

    def attrs(self) -> dict[str, Any]:
        return {"criterion": self.name, "threshold": float("nan") if self.threshold is None else self.threshold}

    def evaluate(self, fn: ScoreFunction, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(passes, score, top1) of fn at points [B, n]; top1 is -1 where fn predicts no classes."""
        if len(points) == 0:
            return np.zeros(0, bool), np.zeros(0), np.zeros(0, np.int64)
        ev = fn.evaluate(points)
        score = np.asarray(ev.score, dtype=float).reshape(-1)
        if ev.top1 is None:
            if self.threshold is None:
                raise ValueError(_SCORES_ONLY)
            top1 = np.full(len(points), -1, np.int64)
        else:
            top1 = np.asarray(ev.top1, dtype=np.int64)
        if score.shape != (len(points),):
            raise ValueError(f"f returned {score.size} scores for {len(points)} points")
        if not np.isfinite(score).all():
            bad = int(np.argmax(~np.isfinite(score)))
            raise ValueError(f"f returned a NaN or infinite score at {points[bad]}: the criterion cannot be checked there")
        return self.passes(score, top1), score, top1

    def passes(self, score: np.ndarray, top1: np.ndarray) -> np.ndarray:
        return top1 == self.label if self.threshold is None else score >= self.threshold

    def on_map(self, data: xr.Dataset) -> xr.DataArray:
        """The pass/fail grid of a dense map (refused for a study with unfinished tasks)."""
        if "done" in data and not bool((data["done"] == 1).all()):
            raise ValueError(f"{int((data['done'] != 1).sum())} task(s) of this study are unfinished (done = 0): rerun "
                             "the study to finish them, or select the finished ones")
        if self.threshold is not None:
            return data["score"] >= self.threshold
        if "correct" not in data:
            raise ValueError("this map has no 'correct' variable (a map of a plain function): pass threshold=t")
        return data["correct"].astype(bool)


def resolution_of(space: Space, resolution: float | Sequence[float] | None) -> np.ndarray:
    """The lattice step per parameter: given, or 3 for angles (deg) and 1/32 of the range otherwise."""
    if resolution is None:
        return np.array([DEFAULT_ANGLE_RESOLUTION if p.units == "deg" else p.width / 32 for p in space.parameters])
    steps = np.broadcast_to(np.asarray(resolution, dtype=float), (space.n,)).copy()
    if not (np.isfinite(steps).all() and (steps > 0).all()):
        raise ValueError(f"resolution must be positive (one number or one per parameter {list(space.names)}), got {resolution}")
    return steps


_SCORES_ONLY = ("this f gives scores only, so 'top-1 correct' cannot be checked: pass threshold=t (a view passes "
                "when its score >= t)")


# ------------------------------------------------------------ lattice oracle
class LatticeOracle:
    """f under a criterion on the lattices u0 + k * delta of several starts.

    Each distinct point is evaluated once (points are keyed after wrapping),
    the requests of all starts go to f in one batched call, and queries are
    counted for the start that first asked for a point.
    """

    def __init__(self, f: Any, space: Space, criterion: Criterion, starts: np.ndarray, delta: np.ndarray) -> None:
        self.f, self.space, self.criterion = f, space, criterion
        self.starts, self.delta = starts, delta
        self.queries = np.zeros(len(starts), dtype=np.int64)
        self._memo: dict[bytes, bool] = {}
        self._tol = 1e-9 * np.maximum(1.0, np.abs(space.upper) + np.abs(space.lower))

    def inside(self, start: int, offsets: np.ndarray) -> np.ndarray:
        """Which lattice offsets [m, n] of a start lie in the Space (bounded parameters)."""
        x = self.starts[start] + offsets * self.delta
        bounded = ~self.space.periodic
        ok = (x >= self.space.lower - self._tol) & (x <= self.space.upper + self._tol)
        return (ok | ~bounded).all(axis=1)

    def points(self, start: int, offsets: np.ndarray) -> np.ndarray:
        x = self.starts[start] + np.asarray(offsets, dtype=float) * self.delta
        x = np.clip(x, np.where(self.space.periodic, -np.inf, self.space.lower), np.where(self.space.periodic, np.inf, self.space.upper))
        return self.space.wrap(x)

    def _key(self, point: np.ndarray) -> bytes:
        return np.round(point, 9).tobytes()

    def __call__(self, requests: Sequence[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        """Pass/fail of each request's lattice offsets, in one call of f for the points not seen before."""
        points = [self.points(s, offsets) for s, offsets in requests]
        new: dict[bytes, tuple[int, np.ndarray]] = {}
        for (s, _), pts in zip(requests, points):
            for p in pts:
                key = self._key(p)
                if key not in self._memo and key not in new:
                    new[key] = (s, p)
        if new:
            batch = np.array([p for _, p in new.values()])
            passes, _, _ = self.criterion.evaluate(self.f, batch)
            for (key, (s, _)), ok in zip(new.items(), passes):
                self._memo[key] = bool(ok)
                self.queries[s] += 1
        return [np.array([self._memo[self._key(p)] for p in pts], dtype=bool) for pts in points]


def _box_offsets(half: np.ndarray, inner: np.ndarray | None = None) -> np.ndarray:
    """Integer offsets j with |j_d| <= half_d for all d, less those with |j_d| <= inner_d for all d."""
    axes = [np.arange(-h, h + 1) for h in half]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(half))
    if inner is None:
        return grid
    return grid[~(np.abs(grid) <= inner).all(axis=1)]


def _largest_passing(oracle: LatticeOracle, halves: Sequence[np.ndarray], progress: bool, desc: str) -> np.ndarray:
    """For each start, the index of the last box in ``halves`` (nested, growing half-widths in lattice steps)
    whose lattice points all pass: -1 when even the first fails, -2 when the start itself fails.

    Boxes are checked shell by shell, all starts together in one call of f
    per shell, and a start stops at its first failing shell.
    """
    from tqdm.auto import tqdm

    S, n = oracle.starts.shape
    centre = oracle([(s, np.zeros((1, n), int)) for s in range(S)])
    result = np.where([ok[0] for ok in centre], -1, -2)
    active = [s for s in range(S) if result[s] == -1]
    previous = np.zeros(n, dtype=int)
    for i, half in enumerate(tqdm(halves, desc=desc, disable=not progress, leave=False)):
        if not active:
            break
        half = np.asarray(half, dtype=int)
        shell = _box_offsets(half, previous)
        requests = [(s, shell[oracle.inside(s, shell)]) for s in active]
        passed = [ok.all() for ok in oracle(requests)]
        for (s, _), ok in zip(requests, passed):
            if ok:
                result[s] = i
        active = [s for (s, _), ok in zip(requests, passed) if ok]
        previous = half
    return result


# -------------------------------------------------------- robustness radius
def robustness_radius(
    f: Callable[[np.ndarray], Any],
    points: Any,
    space: Space | None = None,
    *,
    threshold: float | None = None,
    resolution: float | Sequence[float] | None = None,
    max_steps: int = 10,
    progress: bool = True,
) -> xr.Dataset:
    """The robustness radius of each view: how far every view around it keeps passing.

    ``steps`` is the largest k <= ``max_steps`` such that every point of the
    lattice x + j * delta with |j| <= k (per parameter, delta =
    ``resolution``) passes the criterion; boxes are clipped to bounded
    parameters and wrap on periodic ones. 0 means only x passes, -1 that x
    fails. ``radius`` = steps * delta per parameter. Exact at the lattice's
    resolution; it says nothing about views between lattice points.
    """
    fn = as_function(f, space)
    space = fn.space
    criterion = Criterion.of(fn, threshold)
    delta = resolution_of(space, resolution)
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 0:
        raise ValueError(f"max_steps must be a non-negative integer, got {max_steps!r}")
    x = space.points(points)
    oracle = LatticeOracle(fn, space, criterion, x, delta)
    last = _largest_passing(oracle, [np.full(space.n, k) for k in range(1, max_steps + 1)], progress, "robustness radius")
    k = np.where(last == -2, -1, last + 1)  # box i has half-width i + 1
    names = list(space.names)
    radius = np.where(k[:, None] >= 0, k[:, None] * delta[None, :], np.nan)
    return xr.Dataset(
        {
            "steps": ("point", k, {"long_name": "largest k: every lattice point within k steps passes (-1: the view fails)"}),
            "radius": (("point", "param"), radius, {"long_name": "steps x resolution", "units": json_units(space)}),
            "view": (("point", "param"), x, {"long_name": "the view"}),
            "queries": ("point", oracle.queries, {"long_name": "evaluations of f charged to the view"}),
        },
        coords={"point": np.arange(len(x)), "param": names},
        attrs={**criterion.attrs(), "resolution": delta.tolist(), "max_steps": int(max_steps),
               "space": space_json(space), "guarantee": "every lattice point within the radius passes"},
    )


def json_units(space: Space) -> str:
    return ", ".join(f"{p.name}: {p.units}" for p in space.parameters)


def space_json(space: Space) -> str:
    import json

    return json.dumps(space.to_dict())


# ---------------------------------------------------------- robust accuracy
def robust_accuracy(
    data: Any,
    radii: float | Sequence[float],
    *,
    threshold: float | Sequence[float] | None = None,
    space: Space | None = None,
    samples: int = 200,
    resolution: float | Sequence[float] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = True,
) -> xr.DataArray:
    """The share of views whose whole +-r box passes, for each radius r (Space units, every parameter).

    From a dense map (an ``xarray.Dataset`` from ``semantic_map``): exact on
    the map's grid, by erosion of its pass/fail grid with a box of half-width
    floor(r / grid step) per parameter (clipped at bounded parameters,
    wrapped on periodic ones that the grid closes); over ``radius`` and the
    map's other dims (``network``, ``shape``). A list of thresholds adds a
    ``threshold`` dim, so a conclusion can be checked under every criterion.

    From a function f: ``samples`` uniform random views, each checked on the
    lattice of step ``resolution`` out to the largest radius; the share with
    a Clopper-Pearson interval at ``confidence`` (coords ``ci_low`` and
    ``ci_high``).
    """
    radii_arr = np.atleast_1d(np.asarray(radii, dtype=float))
    if not (np.isfinite(radii_arr).all() and (radii_arr >= 0).all()):
        raise ValueError(f"radii must be non-negative numbers, got {radii}")
    if isinstance(data, xr.Dataset):
        thresholds = threshold if isinstance(threshold, (list, tuple, np.ndarray)) else None
        if thresholds is not None:
            surfaces = [_map_robust_accuracy(data, radii_arr, Criterion(float(t)), space) for t in thresholds]
            out = xr.concat(surfaces, dim=xr.DataArray(np.asarray(thresholds, dtype=float), dims="threshold", name="threshold"))
            out.attrs.update(criterion="score >= threshold")
            return out
        return _map_robust_accuracy(data, radii_arr, Criterion(threshold), space)
    if isinstance(threshold, (list, tuple, np.ndarray)):
        raise ValueError("a list of thresholds is for maps; from a function, pass one threshold (or None for top-1)")
    return _sampled_robust_accuracy(data, radii_arr, threshold, space, samples, resolution, confidence, seed, progress)



def _map_robust_accuracy(data: xr.Dataset, radii: np.ndarray, criterion: Criterion, space: Space | None) -> xr.DataArray:
    from scipy import ndimage

    space = recorded_space(data, space)
    names = list(space.names)
    good = criterion.on_map(data)
    others = [d for d in good.dims if d not in names]
    good = good.transpose(*others, *names)
    steps, modes = [], []
    for p in space.parameters:
        g = np.asarray(data[p.name].values, dtype=float)
        step = float(g[1] - g[0]) if len(g) > 1 else float("inf")
        if len(g) > 2 and not np.allclose(np.diff(g), step):
            raise ValueError(f"robust_accuracy needs an evenly spaced grid; {p.name} is not")
        steps.append(step)
        closes = p.periodic and len(g) > 1 and math.isclose(g[-1] + step - g[0], p.width, rel_tol=1e-9)
        modes.append("wrap" if closes else "constant")
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
    }
    result["radius"].attrs = {"units": json_units(space)}
    return result


def json_steps(names: list[str], steps: list[float]) -> str:
    import json

    return json.dumps(dict(zip(names, steps)))


def _sampled_robust_accuracy(f, radii, threshold, space, samples, resolution, confidence, seed, progress) -> xr.DataArray:
    from scipy.stats import binomtest

    fn = as_function(f, space)
    space = fn.space
    criterion = Criterion.of(fn, threshold)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    delta = resolution_of(space, resolution)
    rng = np.random.default_rng(seed)
    views = space.lower + rng.random((samples, space.n)) * space.widths
    order = np.argsort(radii)
    halves = [np.floor(radii[i] / delta + 1e-9).astype(int) for i in order]
    oracle = LatticeOracle(fn, space, criterion, views, delta)
    last = _largest_passing(oracle, halves, progress, "robust accuracy")
    share, low, high = np.empty(len(radii)), np.empty(len(radii)), np.empty(len(radii))
    for rank, i in enumerate(order):
        k = int((last >= rank).sum())
        ci = binomtest(k, samples).proportion_ci(confidence_level=confidence, method="exact")
        share[i], low[i], high[i] = k / samples, ci.low, ci.high
    result = xr.DataArray(share, dims="radius", coords={"radius": radii, "ci_low": ("radius", low), "ci_high": ("radius", high)},
                          name="robust_accuracy")
    result.attrs = {
        "long_name": f"share of sampled views whose whole +-radius lattice box passes ({criterion.name})",
        **criterion.attrs(),
        "samples": int(samples), "confidence": confidence, "resolution": delta.tolist(), "seed": seed,
        "queries": int(oracle.queries.sum()),
        "method": "uniform random views, each checked on the lattice; Clopper-Pearson interval",
    }
    return result


# ----------------------------------------------------------- worst-case views
class FailureSearch:
    """A worst-case search in the unit box [0, 1]^n around one start: propose points, learn their scores.

    Subclasses implement :meth:`ask` (up to ``n`` points) and :meth:`tell`.
    ``find_failures`` maps the unit box onto the start's box and batches the
    proposals of all starts into one call of f per round.
    """

    name = "base"

    def __init__(self, dim: int, rng: np.random.Generator) -> None:
        self.dim, self.rng = dim, rng

    def ask(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def tell(self, points: np.ndarray, scores: np.ndarray) -> None:
        """Scores of the points last asked (lower is worse for the network)."""


class RandomSearch(FailureSearch):
    """Uniform random views in the box."""

    name = "random"

    def ask(self, n: int) -> np.ndarray:
        return self.rng.random((n, self.dim))


class CMAESSearch(FailureSearch):
    """CMA-ES (pycma) started from the best of a space-filling first batch, restarted with a doubled population
    (and a fresh random mean) whenever it converges, until the budget is spent."""

    name = "cmaes"

    def __init__(self, dim: int, rng: np.random.Generator) -> None:
        super().__init__(dim, rng)
        self.popsize = 4 + int(3 * math.log(max(dim, 2)))
        self.best: tuple[float, np.ndarray] | None = None
        self.es = None
        self._asked: list | None = None

    def _strategy(self, mean: np.ndarray, sigma: float):
        import cma

        width = max(self.dim, 2)  # pycma needs two dimensions; a 1-D search carries one it ignores
        x0 = np.full(width, 0.5)
        x0[: self.dim] = mean
        options = {"bounds": [0.0, 1.0], "popsize": self.popsize, "seed": int(self.rng.integers(1, 2**31 - 1)),
                   "verbose": -9, "tolx": 1e-5, "tolfun": 1e-7}
        return cma.CMAEvolutionStrategy(list(x0), sigma, options)

    def ask(self, n: int) -> np.ndarray:
        if self.best is None:  # a space-filling first batch
            return self.rng.random((min(n, 2 * self.popsize), self.dim))
        if self.es is None:
            self.es = self._strategy(self.best[1], 0.25)
        elif self.es.stop():
            self.popsize *= 2
            self.es = self._strategy(self.rng.random(self.dim), 0.3)
        self._asked = self.es.ask()
        return np.clip(np.asarray(self._asked, dtype=float)[:n, : self.dim], 0.0, 1.0)

    def tell(self, points: np.ndarray, scores: np.ndarray) -> None:
        if len(scores):
            i = int(np.argmin(scores))
            if self.best is None or scores[i] < self.best[0]:
                self.best = (float(scores[i]), np.asarray(points[i], dtype=float).copy())
        if self._asked is not None and len(scores) == len(self._asked):
            self.es.tell(self._asked, [float(v) for v in scores])
        self._asked = None


#: Worst-case searches by name; ``find_failures(method=...)`` also takes a FailureSearch subclass.
FAILURE_SEARCHES: dict[str, type[FailureSearch]] = {"random": RandomSearch, "cmaes": CMAESSearch}


def _search_class(method: str | type[FailureSearch]) -> type[FailureSearch]:
    if isinstance(method, type) and issubclass(method, FailureSearch):
        return method
    if method not in FAILURE_SEARCHES:
        raise ValueError(f"unknown method {method!r}: choose one of {sorted(FAILURE_SEARCHES)} or pass a FailureSearch subclass")
    return FAILURE_SEARCHES[method]


def find_failures(
    f: Callable[[np.ndarray], Any],
    starts: Any,
    radius: float | Sequence[float],
    space: Space | None = None,
    *,
    threshold: float | None = None,
    budget: int = 200,
    method: str | type[FailureSearch] = "cmaes",
    seed: int = 0,
    progress: bool = True,
) -> xr.Dataset:
    """The worst view (lowest true-class score) within +-``radius`` of each start, in at most ``budget`` queries.

    ``radius`` is in the Space's units, one number or one per parameter; the
    box is clipped at bounded parameters and wraps on periodic ones. The
    start is evaluated first; then ``method`` ("random" or "cmaes", or a
    :class:`FailureSearch` subclass) proposes views, all starts together in
    one call of f per round. The budget is a hard limit per start.

    Per start: ``point``, ``score`` and ``top1`` of the worst view found,
    ``failed`` (a view that fails the criterion was found), ``queries`` and
    ``queries_to_failure`` (queries up to and including the first failing
    view; -1 if none). A failure found is a real failing view; none found
    is no proof that none exists.
    """
    from tqdm.auto import tqdm

    fn = as_function(f, space)
    space = fn.space
    criterion = Criterion.of(fn, threshold)
    if not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be an integer of at least 1 query per start, got {budget!r}")
    r = np.broadcast_to(np.asarray(radius, dtype=float), (space.n,)).copy()
    if not (np.isfinite(r).all() and (r > 0).all()):
        raise ValueError(f"radius must be positive (one number or one per parameter {list(space.names)}), got {radius}")
    search_class = _search_class(method)
    x0 = _starts(space, starts)
    S, n = x0.shape
    a, b = x0 - r, x0 + r
    bounded = ~space.periodic
    a = np.where(bounded, np.maximum(a, space.lower), a)
    b = np.where(bounded, np.minimum(b, space.upper), b)

    queries = np.zeros(S, dtype=np.int64)
    to_failure = np.full(S, -1, dtype=np.int64)
    best_point = x0.copy()
    passes, best_score, best_top1 = criterion.evaluate(fn, x0) if S else (np.zeros(0, bool), np.zeros(0), np.zeros(0, int))
    start_score = best_score.copy()
    queries += 1
    to_failure[~passes] = 1
    searches = [search_class(n, np.random.default_rng([seed, s])) for s in range(S)]
    with tqdm(total=int(S * (budget - 1)), desc=f"find_failures ({search_class.name})", disable=not progress, leave=False) as bar:
        while True:
            proposals = []
            for s in range(S):
                left = budget - int(queries[s])
                z = searches[s].ask(left) if left > 0 else np.zeros((0, n))
                proposals.append(np.asarray(z, dtype=float).reshape(-1, n)[:left])
            if not any(len(z) for z in proposals):
                break
            points = np.concatenate([a[s] + z * (b[s] - a[s]) for s, z in enumerate(proposals)])
            ok, score, top1 = criterion.evaluate(fn, space.wrap(points))
            at = 0
            for s, z in enumerate(proposals):
                k = len(z)
                if not k:
                    continue
                sl = slice(at, at + k)
                at += k
                searches[s].tell(z, score[sl])
                i = int(np.argmin(score[sl]))
                if score[sl][i] < best_score[s]:
                    best_score[s], best_top1[s], best_point[s] = score[sl][i], top1[sl][i], points[sl][i]
                if to_failure[s] < 0 and not ok[sl].all():
                    to_failure[s] = queries[s] + int(np.argmax(~ok[sl])) + 1
                queries[s] += k
                bar.update(k)
    worst_passes = criterion.passes(best_score, best_top1)
    names = list(space.names)
    return xr.Dataset(
        {
            "start_point": (("start", "param"), x0),
            "start_score": ("start", start_score, {"long_name": "score at the start"}),
            "point": (("start", "param"), space.wrap(best_point), {"long_name": "the worst view found"}),
            "score": ("start", best_score, {"long_name": "its score (the lowest found)"}),
            "top1": ("start", best_top1, {"long_name": "its predicted class (-1: f gives scores only)"}),
            "failed": ("start", to_failure >= 0, {"long_name": f"a view failing '{criterion.name}' was found"}),
            "worst_passes": ("start", worst_passes, {"long_name": "the worst view found still passes"}),
            "queries": ("start", queries, {"long_name": "evaluations of f"}),
            "queries_to_failure": ("start", to_failure, {"long_name": "queries up to the first failing view (-1: none)"}),
        },
        coords={"start": np.arange(S), "param": names},
        attrs={**criterion.attrs(), "method": search_class.name, "budget": int(budget), "radius": r.tolist(),
               "seed": int(seed), "space": space_json(space),
               "guarantee": "none: a search; a failing view found is real, none found proves nothing"},
    )


def _starts(space: Space, starts: Any) -> np.ndarray:
    arr = np.asarray(starts, dtype=float) if not hasattr(starts, "keys") else None
    if arr is not None and arr.size == 0:
        return np.zeros((0, space.n))
    return space.points(starts)


# ----------------------------------------------------------- verified boxes
class LatticeBox:
    """Grow a box of lattice offsets [lo, hi] around 0 whose lattice points all pass.

    Each round proposes the shell of the box expanded by one step on every
    open face (corners included), then moves out the set of faces that
    keeps every point of the grown box passing and adds the most volume. A
    face whose own next layer holds a failing point, or that would leave the
    Space, or that would make a periodic parameter's box wrap onto itself,
    closes for good (its layer only grows as the other faces move).
    """

    def __init__(self, n: int, inside: Callable[[np.ndarray], np.ndarray], max_width: np.ndarray,
                 prefer: int | None = None) -> None:
        self.prefer = prefer  # grow this parameter first (then the volume); None: the volume alone
        self.lo = np.zeros(n, dtype=int)
        self.hi = np.zeros(n, dtype=int)
        self.closed = np.zeros((n, 2), dtype=bool)  # [d, 0]: the low face, [d, 1]: the high face
        self.inside = inside
        self.max_width = max_width  # lattice steps a parameter's box may span (periodic ones: less than a period)
        self._pending: tuple[list[tuple[int, int]], np.ndarray] | None = None

    @property
    def done(self) -> bool:
        return bool(self.closed.all())

    def propose(self) -> np.ndarray:
        """Lattice offsets [m, n] to evaluate next (empty when the box is final)."""
        n = len(self.lo)
        for d in range(n):
            if self.hi[d] - self.lo[d] + 1 > self.max_width[d]:
                self.closed[d] = True
            for side, step in ((0, self.lo[d] - 1), (1, self.hi[d] + 1)):
                probe = np.zeros((1, n), dtype=int)
                probe[0, d] = step
                if not self.closed[d, side] and not self.inside(probe)[0]:
                    self.closed[d, side] = True
        faces = [(d, side) for d in range(n) for side in (0, 1) if not self.closed[d, side]]
        if not faces:
            return np.zeros((0, n), dtype=int)
        lo, hi = self.lo.copy(), self.hi.copy()
        for d, side in faces:
            if side:
                hi[d] += 1
            else:
                lo[d] -= 1
        axes = [np.arange(l, h + 1) for l, h in zip(lo, hi)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, n)
        shell = grid[~((grid >= self.lo) & (grid <= self.hi)).all(axis=1)]
        self._pending = (faces, shell)
        return shell

    def update(self, passes: np.ndarray) -> None:
        """Move out the best consistent set of faces, given the pass/fail of the proposed offsets."""
        faces, shell = self._pending
        bit = {face: 1 << i for i, face in enumerate(faces)}
        needs = np.zeros(len(shell), dtype=np.int64)  # the faces a point needs moved out to lie in the box
        for (d, side), b in bit.items():
            needs |= np.where(shell[:, d] > self.hi[d] if side else shell[:, d] < self.lo[d], b, 0)
        failing = set(int(m) for m in needs[~np.asarray(passes, dtype=bool)])
        for face, b in bit.items():
            if b in failing:
                self.closed[face] = True
        open_faces = [face for face in faces if not self.closed[face]]
        best, best_key = 0, (-1.0, -1.0)
        for k in range(1, len(open_faces) + 1):
            for subset in itertools.combinations(open_faces, k):
                mask = sum(bit[face] for face in subset)
                if any(m & mask == m for m in failing):
                    continue
                widths = (self.hi - self.lo + 1).astype(float)
                for d, _ in subset:
                    widths[d] += 1
                key = (widths[self.prefer] if self.prefer is not None else 0.0, float(np.prod(widths)))
                if key > best_key:
                    best, best_key = mask, key
        for (d, side), b in bit.items():
            if best & b:
                if side:
                    self.hi[d] += 1
                else:
                    self.lo[d] -= 1
        self._pending = None


class SampledBox:
    """Grow a continuous box from a start by sampling, then certify it with fresh uniform samples.

    Growth: each open face proposes a slab of thickness ``step`` beyond it
    and samples it; if every sample passes, the face moves out and its step
    doubles, else the step halves, and the face closes below the resolution
    (or at a bound, or when a periodic parameter's box would wrap onto
    itself). Refinement: uniform samples of the whole box; a failing one
    pulls back the face whose last move took it in (else the face that
    loses the least volume), until a round finds no failure. Certificate:
    ``check_size`` fresh uniform samples of the box, none reused from growth
    or refinement; all passing bound the failure rate by ``max_failure`` at
    the stated confidence. A failing check shrinks the box the same way and
    checks again with new samples, at most ``attempts`` times (the
    confidence is split over the attempts); past that the box is the start
    alone.
    """

    def __init__(self, x0: np.ndarray, space: Space, delta: np.ndarray, rng: np.random.Generator, *,
                 check_size: int, attempts: int, budget: int, samples_per_face: int, refine_size: int) -> None:
        self.space, self.delta, self.rng = space, delta, rng
        self.x0 = x0
        self.a, self.b = x0.copy(), x0.copy()
        self.before = np.stack([x0, x0], axis=1)  # [d, side]: where each face stood before its last move
        self.step = np.repeat(delta[:, None], 2, axis=1) * 2.0
        self.closed = np.zeros((space.n, 2), dtype=bool)
        self.check_size, self.attempts_left = check_size, attempts
        self.budget, self.samples_per_face, self.refine_size = budget, samples_per_face, refine_size
        self.used = 0  # samples proposed so far
        self.phase = "grow"
        self.certified = False
        self._pending: Any = None

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def _slab(self, d: int, side: int) -> tuple[np.ndarray, np.ndarray] | None:
        p = self.space.parameters[d]
        a, b = self.a.copy(), self.b.copy()
        if side:
            a[d], b[d] = self.b[d], self.b[d] + self.step[d, 1]
        else:
            a[d], b[d] = self.a[d] - self.step[d, 0], self.a[d]
        if p.periodic:
            room = p.width - self.delta[d] - (self.b[d] - self.a[d])
            if room <= 1e-12:
                return None
            a[d], b[d] = (a[d], min(b[d], self.b[d] + room)) if side else (max(a[d], self.a[d] - room), b[d])
        else:
            a[d], b[d] = max(a[d], p.low), min(b[d], p.high)
        return (a, b) if b[d] - a[d] > 1e-12 else None

    def _uniform(self, m: int) -> np.ndarray:
        return self.a + self.rng.random((m, self.space.n)) * (self.b - self.a)

    def propose(self) -> np.ndarray:
        n = self.space.n
        if self.phase == "grow":
            slabs = []
            if self.used + self.samples_per_face * 2 * n + self.refine_size + self.check_size <= self.budget:
                for d in range(n):
                    for side in (0, 1):
                        if not self.closed[d, side]:
                            slab = self._slab(d, side)
                            if slab is None:
                                self.closed[d, side] = True
                            else:
                                slabs.append(((d, side), slab))
            if slabs:
                m = self.samples_per_face
                self._pending = slabs
                self.used += m * len(slabs)
                return np.concatenate([a + self.rng.random((m, n)) * (b - a) for _, (a, b) in slabs])
            self.phase = "refine"
        if self.phase == "refine":
            if self.used + self.refine_size + self.check_size <= self.budget and (self.b > self.a).any():
                self.used += self.refine_size
                self._pending = self._uniform(self.refine_size)
                return self._pending
            self.phase = "check"
        if self.phase == "check":
            self.used += self.check_size
            self._pending = self._uniform(self.check_size)
            return self._pending
        return np.zeros((0, n))

    def update(self, passes: np.ndarray) -> None:
        passes = np.asarray(passes, dtype=bool)
        if self.phase == "grow":
            m = self.samples_per_face
            for i, ((d, side), (a, b)) in enumerate(self._pending):
                if passes[i * m : (i + 1) * m].all():
                    self.before[d, side] = self.b[d] if side else self.a[d]
                    if side:
                        self.b[d] = b[d]
                    else:
                        self.a[d] = a[d]
                    self.step[d, side] *= 2.0
                else:
                    self.step[d, side] /= 2.0
                    if self.step[d, side] < self.delta[d] / FINE - 1e-12:
                        self.closed[d, side] = True
            return
        for p in self._pending[~passes]:
            self._exclude(p)
        if self.phase == "refine":
            if passes.all():
                self.phase = "check"
            return
        if passes.all():
            self.certified, self.phase = True, "done"
            return
        self.attempts_left -= 1
        if self.attempts_left <= 0 or self.used + self.check_size > self.budget:  # the start alone: it passed
            self.a, self.b = self.x0.copy(), self.x0.copy()
            self.certified, self.phase = True, "done"

    def _exclude(self, p: np.ndarray) -> None:
        """Shrink the box so that it no longer holds p, with a margin of one resolution step: pull back a face
        whose last move took p in, else the face that loses the least volume; the start stays inside."""
        if not ((p >= self.a - 1e-12) & (p <= self.b + 1e-12)).all():
            return
        widths = np.maximum(self.b - self.a, 1e-300)
        options = []
        for d in range(len(p)):
            for side in (0, 1):
                lo, hi = (self.a[d], p[d] - self.delta[d] / FINE) if side else (p[d] + self.delta[d] / FINE, self.b[d])
                lo, hi = (lo, max(hi, self.x0[d])) if side else (min(lo, self.x0[d]), hi)
                if not lo <= self.x0[d] <= hi:
                    continue
                recent = p[d] > self.before[d, 1] if side else p[d] < self.before[d, 0]
                options.append((recent, (hi - lo) / widths[d], d, side, lo, hi))
        if not options:
            self.a, self.b = self.x0.copy(), self.x0.copy()
            return
        _, _, d, side, lo, hi = max(options, key=lambda o: (o[0], o[1]))
        self.a[d], self.b[d] = lo, hi
        self.before[d, side] = min(self.before[d, side], hi) if side else max(self.before[d, side], lo)


def check_size(confidence: float, max_failure: float, attempts: int = 1) -> int:
    """Fresh samples that must all pass to bound the failure rate by max_failure at ``confidence``
    (split over ``attempts`` checks): ceil(ln(attempts / (1 - confidence)) / max_failure)."""
    return int(math.ceil(math.log(attempts / (1.0 - confidence)) / max_failure))


# ------------------------------------------------- verified boxes as a region method
class Verified(RegionMethod):
    """Verified regions for :func:`~semkit.find_regions` (``algorithms=("verified",)``).

    Boxes in the same schema as the paper's methods, with a guarantee under
    an explicit criterion (top-1 correct by default, or score >=
    ``threshold``): ``certificate="lattice"`` (default up to 3 parameters,
    see :class:`LatticeBox`) or ``"sampled"`` (see :class:`SampledBox`).
    A start that fails the criterion keeps an empty box (lower = upper).
    The search's state is the set of points evaluated: an interrupted search
    resumes by replaying its growth from them, without querying them again.
    """

    name, label, color = "verified", "verified", "tab:blue"
    needs_classes = True

    def __init__(self, certificate: str | None = None, threshold: float | None = None,
                 resolution: float | Sequence[float] | None = None, confidence: float = 0.95, max_failure: float = 0.01,
                 attempts: int = 3, max_queries: int = 2000, seed: int = 0) -> None:
        if certificate is not None and certificate not in CERTIFICATES:
            raise ValueError(f"unknown certificate {certificate!r}: choose one of {CERTIFICATES}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        if not 0 < max_failure < 1:
            raise ValueError(f"max_failure must be in (0, 1), got {max_failure}")
        if resolution is not None:
            steps = np.atleast_1d(np.asarray(resolution, dtype=float))
            if not (np.isfinite(steps).all() and (steps > 0).all()):
                raise ValueError(f"resolution must be positive, got {resolution}")
        self.criterion = Criterion(threshold)
        self.certificate, self.resolution = certificate, resolution
        self.confidence, self.max_failure, self.attempts = confidence, max_failure, int(attempts)
        self.max_queries, self.seed = int(max_queries), int(seed)

    def queries_per_step(self, n: int) -> int:
        """At least one point per open face; a lattice face costs its whole next layer (it varies)."""
        return 2 * n

    def describe(self) -> dict[str, Any]:
        resolution = None if self.resolution is None else np.atleast_1d(np.asarray(self.resolution, float)).tolist()
        size = check_size(self.confidence, self.max_failure, self.attempts)
        sampled = (f"sampled: with confidence {self.confidence:g} at most a share {self.max_failure:g} of a box's views "
                   f"fail ({self.criterion.name}): {size} fresh uniform samples of the final box all passed")
        lattice = (f"lattice: every lattice point start + k x resolution in a box passes ({self.criterion.name}), and no "
                   "face can move one step out without taking in a failing lattice point or leaving the Space")
        guarantee = {"lattice": lattice, "sampled": sampled}.get(
            self.certificate, f"up to 3 parameters {lattice}; beyond, {sampled}")
        return {"name": self.name, "certificate": self.certificate, **self.criterion.attrs(), "resolution": resolution,
                "confidence": self.confidence, "max_failure": self.max_failure, "attempts": self.attempts,
                "max_queries": self.max_queries, "seed": self.seed, "guarantee": guarantee}

    def search(self, space: Space, starts: np.ndarray, iterations: int) -> "VerifiedSearch":
        return VerifiedSearch(self, space, starts, iterations)


class VerifiedSearch(Search):
    """The verified boxes of all starts, grown round by round; every point evaluated is remembered."""

    def __init__(self, method: Verified, space: Space, starts: np.ndarray, iterations: int) -> None:
        self.method, self.space, self.starts, self.iterations = method, space, np.asarray(starts, float), iterations
        self.delta = resolution_of(space, method.resolution)
        self.certificate = method.certificate or ("lattice" if space.n <= 3 else "sampled")
        K, n = self.starts.shape
        self.memo: dict[bytes, bool] = {}
        self.owner: dict[bytes, int] = {}  # the start a point's query is charged to
        self.start_passes: np.ndarray | None = None
        self.rounds = np.zeros(K, dtype=np.int64)
        self.lower_trace: list[np.ndarray] = []
        self.upper_trace: list[np.ndarray] = []
        self._waiting: list[tuple[Any, int, np.ndarray]] = []  # (grower, start, points) asked this round
        if self.certificate == "sampled":
            self.check_size = check_size(method.confidence, method.max_failure, method.attempts)
            if self.check_size + 1 > method.max_queries:
                raise ValueError(f"max_queries={method.max_queries} is too small: the certificate alone needs "
                                 f"{self.check_size} samples")

    # --------------------------------------------------------------- points
    def _key(self, point: np.ndarray) -> bytes:
        return np.round(np.asarray(point, float), 9).tobytes()

    def _lattice_points(self, k: int, offsets: np.ndarray) -> np.ndarray:
        x = self.starts[k] + offsets * self.delta
        lo = np.where(self.space.periodic, -np.inf, self.space.lower)
        hi = np.where(self.space.periodic, np.inf, self.space.upper)
        return np.clip(x, lo, hi)

    def _inside(self, k: int, offsets: np.ndarray) -> np.ndarray:
        x = self.starts[k] + offsets * self.delta
        tol = 1e-9 * np.maximum(1.0, np.abs(self.space.upper) + np.abs(self.space.lower))
        ok = (x >= self.space.lower - tol) & (x <= self.space.upper + tol)
        return (ok | self.space.periodic).all(axis=1)

    def _passes(self, points: np.ndarray) -> np.ndarray | None:
        """Pass/fail of points from memory (wrapped), or None if any is unknown."""
        keys = [self._key(p) for p in self.space.wrap(points)]
        if not all(key in self.memo for key in keys):
            return None
        return np.array([self.memo[key] for key in keys], dtype=bool)

    # -------------------------------------------------------------- growth
    def _begin(self, passes: np.ndarray) -> None:
        K, n = self.starts.shape
        self.start_passes = passes
        m = self.method
        if self.certificate == "lattice":
            span = np.where(self.space.periodic, np.floor((self.space.widths - 1e-9) / self.delta), np.inf)
            self.growers = [(k, LatticeBox(n, lambda j, k=k: self._inside(k, j), span, prefer))
                            for k in range(K) if passes[k] for prefer in (None, *range(n))]
        else:
            self.growers = [(k, SampledBox(self.starts[k], self.space, self.delta, np.random.default_rng([m.seed, k]),
                                           check_size=self.check_size, attempts=m.attempts, budget=m.max_queries - 1,
                                           samples_per_face=max(4, 2 * n), refine_size=max(32, self.check_size // 2)))
                            for k in range(K) if passes[k]]

    def _ask(self, grower) -> np.ndarray:
        """The points a grower wants next (space coordinates, unwrapped)."""
        k, box = grower
        if self.certificate == "lattice":
            return self._lattice_points(k, box.propose())
        return box.propose()

    def _round(self) -> list[tuple[Any, int, np.ndarray]]:
        """Advance every grower whose points are all known (replay), and return the asks still unanswered."""
        unanswered = []
        for grower in self.growers:
            k, box = grower
            while not box.done:
                points = self._ask(grower)
                if not len(points):
                    break
                known = self._passes(points)
                if known is None:
                    unanswered.append((grower, k, points))
                    break
                box.update(known)
        return unanswered

    # ----------------------------------------------------------- interface
    @property
    def active(self) -> np.ndarray:
        K = len(self.starts)
        if self.start_passes is None:
            return np.ones(K, dtype=bool)
        busy = np.zeros(K, dtype=bool)
        for k, box in self.growers:
            busy[k] |= not box.done
        return busy

    def propose(self) -> Proposal:
        n = self.space.n
        self._asked: list[bytes] = []
        if self.start_passes is None:
            known = self._passes(self.starts)
            if known is None:
                self._waiting = [(None, k, self.starts[k : k + 1]) for k in range(len(self.starts))]
                return Proposal(self.starts.copy(), np.empty((0, n)))
            self._begin(known)
        self._waiting = self._round()
        if not self._waiting:
            return Proposal(np.empty((0, n)), np.empty((0, n)))
        new: dict[bytes, np.ndarray] = {}
        for _, k, points in self._waiting:
            for p in self.space.wrap(points):
                key = self._key(p)
                if key not in self.memo and key not in new:
                    new[key] = p
                    self.owner[key] = k
        self._asked = list(new)
        return Proposal(np.array(list(new.values())), np.empty((0, n)))

    def update(self, values: np.ndarray, gradients: np.ndarray, gradient_cost: float,
               correct: np.ndarray | None = None) -> None:
        criterion = self.method.criterion
        if criterion.threshold is None:
            if correct is None and len(values):
                raise ValueError("the verified method's criterion is top-1 correct, but this f gives scores only: "
                                 "pass threshold=t (a view passes when its score >= t)")
            passes = np.asarray(correct, dtype=bool) if len(values) else np.zeros(0, bool)
        else:
            passes = np.asarray(values) >= criterion.threshold
        if self.start_passes is None:
            for k, (p, ok) in enumerate(zip(self.space.wrap(self.starts), passes)):
                key = self._key(p)
                self.owner.setdefault(key, k)
                self.memo[key] = bool(ok)
            self._begin(passes.copy())
        else:
            for key, ok in zip(self._asked, passes):
                self.memo[key] = bool(ok)
            for grower, k, points in self._waiting:
                grower[1].update(self._passes(points))
                self.rounds[k] += 1
        lower, upper = self._boxes()
        self.lower_trace.append(lower)
        self.upper_trace.append(upper)

    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each start's box now: for the lattice, the largest of its growers' boxes."""
        lower, upper = self.starts.copy(), self.starts.copy()
        if self.start_passes is None:
            return lower, upper
        size = np.zeros(len(self.starts))
        for k, box in self.growers:
            if self.certificate == "lattice":
                points = float(np.prod(box.hi - box.lo + 1))
                if points > size[k]:
                    size[k] = points
                    lower[k], upper[k] = self.starts[k] + box.lo * self.delta, self.starts[k] + box.hi * self.delta
            else:
                lower[k], upper[k] = box.a, box.b
        return lower, upper

    def state(self) -> dict[str, np.ndarray]:
        keys = list(self.memo)
        n = self.space.n
        points = np.array([np.frombuffer(key) for key in keys]).reshape(-1, n)
        K = len(self.starts)
        traces = (np.array(self.lower_trace).reshape(-1, K, n), np.array(self.upper_trace).reshape(-1, K, n))
        return {"points": points, "passes": np.array([self.memo[key] for key in keys], dtype=bool),
                "owner": np.array([self.owner.get(key, -1) for key in keys], dtype=np.int64),
                "rounds": self.rounds.copy(), "lower_trace": traces[0], "upper_trace": traces[1]}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Remember the points evaluated before; the growth replays from them at the next step."""
        for p, ok, k in zip(arrays["points"], arrays["passes"], arrays["owner"]):
            key = self._key(p)
            self.memo[key] = bool(ok)
            if k >= 0:
                self.owner[key] = int(k)
        self.rounds = np.array(arrays["rounds"], dtype=np.int64)
        # the growth replays from memory at the next step; its rounds and traces are the ones saved
        self.lower_trace, self.upper_trace = list(arrays["lower_trace"]), list(arrays["upper_trace"])

    def result(self) -> dict[str, np.ndarray]:
        K, n = self.starts.shape
        if self.start_passes is not None:
            self._round()  # finish what the memory answers
        lower, upper = self._boxes()
        T = self.iterations
        trace_lo = np.full((T, K, n), np.nan)
        trace_hi = np.full((T, K, n), np.nan)
        for t, (lo, hi) in enumerate(zip(self.lower_trace[:T], self.upper_trace[:T])):
            trace_lo[t], trace_hi[t] = lo, hi
        queries = np.zeros(K, dtype=np.int64)
        for k in self.owner.values():
            queries[k] += 1
        return {"lower": lower, "upper": upper, "lower_trace": trace_lo, "upper_trace": trace_hi,
                "loss": np.full((T, K), np.nan), "queries": queries, "converged": ~self.active,
                "iterations": np.minimum(self.rounds + 1, T),
                "start_passes": np.full(K, np.nan) if self.start_passes is None else self.start_passes.astype(float)}


register(Verified)
