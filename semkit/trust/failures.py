"""Worst-case views near a start: a search within a hard limit of max_queries (no guarantee).

Searches are objects behind one interface ([`FailureSearch`][semkit.trust.failures.FailureSearch]: ask
points of the unit box, tell their scores), configured like the region
algorithms (``CMAESSearch(sigma=0.1)``) and known by name in
`FAILURE_SEARCHES`; [`find_failures`][semkit.find_failures] batches the proposals of all
starts into one call of f per round. A failing view found is real; none
found proves nothing.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..function import ScoreFunction, as_function
from ..registry import Configurable, Registry, positive
from ..space import Space
from ..validation import check_count
from .records import space_json, state_attr


class FailureSearch(Configurable, ABC):
    """A worst-case search in the unit box [0, 1]^n around one start: propose points, learn their scores.

    The object holds the search's options; `started` gives the search
    of one start (its own copy, dimension and generator). Subclasses
    implement `ask` (up to ``n`` points) and `tell`.
    ``find_failures`` maps the unit box onto the start's box and batches the
    proposals of all starts into one call of f per round.
    """

    name: ClassVar[str]

    def started(self, dim: int, generator: np.random.Generator) -> "FailureSearch":
        """A fresh search of one start, with this object's options.

        Parameters
        ----------
        dim : int
            The number of parameters of the search.
        generator : numpy Generator
            Where the search draws its random numbers from.

        Returns
        -------
        FailureSearch
            Its own copy, reset for a new start.
        """
        search = copy.copy(self)
        search.dim, search.rng = dim, generator
        search.reset()
        return search

    def reset(self) -> None:
        """Forget what was learnt (a new start)."""

    @abstractmethod
    def ask(self, n: int) -> np.ndarray:
        """Up to ``n`` points of the unit box to score next.

        Parameters
        ----------
        n : int
            At most this many points (what is left of max_queries this round).

        Returns
        -------
        ndarray
            The points, ``[m, dim]`` with m <= n, in [0, 1].
        """

    def tell(self, points: np.ndarray, scores: np.ndarray) -> None:
        """Learn the scores of the points last asked.

        Parameters
        ----------
        points : ndarray
            The points last asked, ``[m, dim]``.
        scores : ndarray
            Their scores, ``[m]``: lower is worse for the network.
        """


class RandomSearch(FailureSearch):
    """Uniform random views in the box."""

    name = "random"

    def ask(self, n: int) -> np.ndarray:
        return self.rng.random((n, self.dim))


class CMAESSearch(FailureSearch):
    """CMA-ES (pycma) started from the best of a space-filling first batch, restarted whenever it converges.

    Each restart doubles the population and starts from a fresh random mean, until max_queries is spent.

    Parameters
    ----------
    sigma : float
        The first step, as a share of the box.
    restart_sigma : float
        The step of each restart, as a share of the box.

    Raises
    ------
    ValueError
        If ``sigma`` or ``restart_sigma`` is not positive.
    """

    name = "cmaes"

    def __init__(self, sigma: float = 0.25, restart_sigma: float = 0.3) -> None:
        self.sigma, self.restart_sigma = positive("sigma", sigma), positive("restart_sigma", restart_sigma)

    def reset(self) -> None:
        self.popsize = 4 + int(3 * math.log(max(self.dim, 2)))
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
            self.es = self._strategy(self.best[1], self.sigma)
        elif self.es.stop():
            self.popsize *= 2
            self.es = self._strategy(self.rng.random(self.dim), self.restart_sigma)
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


#: Worst-case searches by name: ``find_failures(algorithm=...)`` takes these names or a FailureSearch object.
FAILURE_SEARCHES: Registry[FailureSearch] = Registry("failure search", "semkit.trust.failures:FailureSearch", {
    "random": "semkit.trust.failures:RandomSearch", "cmaes": "semkit.trust.failures:CMAESSearch"})


def find_failures(
    f: Callable[[np.ndarray], Any],
    starts: Any,
    radius: float | Sequence[float],
    *,
    space: Space | None = None,
    criterion: Criterion | str | None = None,
    max_queries: int = 200,
    algorithm: "str | FailureSearch" = "cmaes",
    random_state: int | np.random.Generator | None = 0,
    progress: bool = True,
) -> xr.Dataset:
    """The worst view (lowest true-class score) within +-``radius`` of each start, in at most ``max_queries`` queries.

    The start is evaluated first; then ``algorithm`` proposes views in the start's box, all starts together in one
    call of f per round. The box is clipped at bounded parameters and wraps on periodic ones. A failure found is a
    real failing view; none found is no proof that none exists.

    Parameters
    ----------
    f : callable
        A function of points [B, n] (a [`SemanticFunction`][semkit.SemanticFunction], or scores only with a score criterion).
    starts : array or dict
        The views to search around, points of the Space.
    radius : float, sequence of float or mapping of str to float
        The half-width of each start's box in the Space's units: one number, one per parameter, or by name.
    space : Space, optional
        The Space; None: ``f.space``.
    criterion : Criterion or str, optional
        What a view must pass to not be a failure; None: top-1 correct.
    max_queries : int, default 200
        A hard limit on the evaluations of f per start, the start's included.
    algorithm : str or FailureSearch, default "cmaes"
        "random" or "cmaes" (`FAILURE_SEARCHES`), or a configured [`FailureSearch`][semkit.trust.failures.FailureSearch] object such as
        ``CMAESSearch(sigma=0.1)``.
    random_state : int, Generator or None, default 0
        Makes the search repeatable: an int or a numpy Generator; None: fresh randomness.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    Dataset
        Per ``start`` (and ``param``): ``start_point``, ``start_score``; ``point``, ``score`` and ``top1`` of the
        worst view found; ``failed`` (a view that fails the criterion was found), ``worst_passes``, ``queries`` and
        ``queries_to_failure`` (queries up to and including the first failing view; -1 if none). Attrs: the
        criterion, ``algorithm``, ``max_queries``, ``radius``, ``random_state``, the Space and ``guarantee``.

    Raises
    ------
    ValueError
        A radius not positive or of the wrong length, ``max_queries`` below 1, an unknown algorithm, a start outside
        the Space.
    TypeError
        ``max_queries`` is no number (text, None, a bool).
    """
    from tqdm.auto import tqdm

    fn = as_function(f, space=space)
    space = fn.space
    criterion = Criterion.resolve(criterion, f=fn)
    check_count(max_queries, "max_queries", what="queries per start")
    r = space.per_parameter(radius, "radius")
    template = FAILURE_SEARCHES.create(algorithm)
    x0 = _starts(space, starts)
    box = space.neighbourhood(x0, r)
    worst = _Worst(fn, criterion, x0)
    searches = [template.started(x0.shape[1], rng) for rng in np.random.default_rng(random_state).spawn(len(x0))]
    with tqdm(total=int(len(x0) * (max_queries - 1)), desc=f"find_failures ({template.name})", disable=not progress,
              leave=False) as bar:
        _search(fn, criterion, space, box, searches, worst, max_queries, bar)
    return worst.dataset(space, criterion, {"algorithm": repr(template), "max_queries": int(max_queries),
                                            "radius": r.tolist(), "random_state": state_attr(random_state)})


def _search(fn: ScoreFunction, criterion: Criterion, space: Space, box: tuple[np.ndarray, np.ndarray],
            searches: Sequence[FailureSearch], worst: "_Worst", max_queries: int, bar: Any) -> None:
    """Run the searches of all starts in rounds, their proposals in one call of f per round, until each has spent
    ``max_queries``; ``box`` holds each start's lower and upper corner, onto which the unit box is mapped."""
    a, b = box
    n = worst.start.shape[1]
    while True:
        proposals = _proposals(searches, worst.queries, max_queries, n)
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
            worst.record(s, points[sl], ok[sl], score[sl], top1[sl])
            bar.update(k)


def _proposals(searches: Sequence[FailureSearch], queries: np.ndarray, max_queries: int, n: int) -> list[np.ndarray]:
    """Each start's next points of the unit box [m, n], at most what is left of its ``max_queries`` (none when spent)."""
    proposals = []
    for s, search in enumerate(searches):
        left = max_queries - int(queries[s])
        z = search.ask(left) if left > 0 else np.zeros((0, n))
        proposals.append(np.asarray(z, dtype=float).reshape(-1, n)[:left])
    return proposals


class _Worst:
    """Per start: the worst view found so far (point, score, top-1, whether it passes), the queries spent, and the
    queries up to the first failing view; the starts themselves are evaluated first (one query each)."""

    def __init__(self, fn: ScoreFunction, criterion: Criterion, x0: np.ndarray) -> None:
        S = len(x0)
        self.start = x0
        self.queries = np.zeros(S, dtype=np.int64)
        self.to_failure = np.full(S, -1, dtype=np.int64)
        self.point = x0.copy()
        passes, self.score, self.top1 = criterion.evaluate(fn, x0) if S else (np.zeros(0, bool), np.zeros(0), np.zeros(0, int))
        self.passes = passes.copy()
        self.start_score = self.score.copy()
        self.queries += 1
        self.to_failure[~passes] = 1

    def record(self, s: int, points: np.ndarray, ok: np.ndarray, score: np.ndarray, top1: np.ndarray) -> None:
        """Learn start s's views of one round: keep the worst, note the first failing one, count the queries."""
        i = int(np.argmin(score))
        if score[i] < self.score[s]:
            self.score[s], self.top1[s], self.point[s] = score[i], top1[i], points[i]
            self.passes[s] = ok[i]
        if self.to_failure[s] < 0 and not ok.all():
            self.to_failure[s] = self.queries[s] + int(np.argmax(~ok)) + 1
        self.queries[s] += len(score)

    def dataset(self, space: Space, criterion: Criterion, attrs: dict[str, Any]) -> xr.Dataset:
        """The result over ``start`` and ``param``, with the search's ``attrs``."""
        return xr.Dataset(
            {
                "start_point": (("start", "param"), self.start),
                "start_score": ("start", self.start_score, {"long_name": "score at the start"}),
                "point": (("start", "param"), space.wrap(self.point), {"long_name": "the worst view found"}),
                "score": ("start", self.score, {"long_name": "its score (the lowest found)"}),
                "top1": ("start", self.top1, {"long_name": "its predicted class (-1: f gives scores only)"}),
                "failed": ("start", self.to_failure >= 0, {"long_name": f"a view failing '{criterion.name}' was found"}),
                "worst_passes": ("start", self.passes, {"long_name": "the worst view found still passes"}),
                "queries": ("start", self.queries, {"long_name": "evaluations of f"}),
                "queries_to_failure": ("start", self.to_failure, {"long_name": "queries up to the first failing view (-1: none)"}),
            },
            coords={"start": np.arange(len(self.start)), "param": list(space.names)},
            attrs={**criterion.attrs(), **attrs, "space": space_json(space),
                   "guarantee": "none: a search; a failing view found is real, none found proves nothing"},
        )


def _starts(space: Space, starts: Any) -> np.ndarray:
    arr = np.asarray(starts, dtype=float) if not hasattr(starts, "keys") else None
    if arr is not None and arr.size == 0:
        return np.zeros((0, space.n))
    return space.points(starts)
