"""Verified regions: boxes with a guarantee, as a region algorithm of [`find_regions`][semkit.find_regions].

Each start that passes its criterion grows a box, then the box is judged
(a start that fails has no box):

* growth: on the lattice start + k * step (`LatticeBox`,
  default up to 2 parameters: exact, and its layers cheap; by default a
  lattice box that spends two thirds of its share grows on by sampling)
  or by sampling (`SampledGrowth`, beyond: faces advance while the failures of
  what they take in stay rare, and find walls by where their samples start
  failing; then uniform samples of the box pull in the faces grown past a
  boundary, not used again); growth stops where the certificate's share of
  ``max_queries`` begins, so a box that grew is certified, not dropped;
* ``certificate="sampled"`` (default): the continuous guarantee
  ([`Guarantee`][semkit.trust.guarantee.Guarantee]), by fresh uniform samples of the final
  box; a box that fails it shrinks away from the failures found and is
  tested again, up to ``attempts`` times (past that, or when no query is
  left for another test, the start alone);
* ``certificate="lattice"``: every lattice point inside passes (lattice
  growth only), and fresh continuous samples audit each box
  (``audit_failures``, ``audit_bound``): an honest measure, no guarantee.

All starts advance together: each round is one batched call of f. The
search's state is the set of points evaluated, so an interrupted search
resumes by replaying its growth from them.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from ..criterion import Criterion
from ..function import Evaluation
from ..regions import Proposal, RegionAlgorithm, Search
from ..space import Space
from ..validation import check_confidence, check_count, check_probability
from .guarantee import BoxCertifier, Guarantee, failure_bound, trim, uniform
from .lattice import FINE, LatticeBox, SampledGrowth
from .radius import check_certificate

GROWTHS = ("lattice", "sampled")
#: Samples of each slab a sampled face proposes (at least two per parameter).
SAMPLES_PER_FACE = 24
#: After sampled growth, uniform samples of the box (per parameter) find faces grown past a boundary ...
REFINE_PER_PARAMETER = 64
#: ... and a face is pulled in where the views it would give up fail at this rate or more.
REFINE_DENSITY = 0.1


class StartBox:
    """One start's verified box: growth, then its certificate (or audit), as a sequence of asks.

    Every point it asks for is counted (``spent``, the start included), so
    that it never asks for more than ``max_queries``: growth stops where the
    certificate's share of ``max_queries`` begins (`_growth_limit`), and
    each certificate is given what is left, less a retry's first look.
    """

    def __init__(self, search: "VerifiedSearch", k: int) -> None:
        self.search, self.k = search, k
        m, space, x0 = search.algorithm, search.space, search.starts[k]
        self.x0, self.delta = x0, search.delta
        self.growth_rng, self.rng = search.rngs[k].spawn(2)
        self.attempts_left = m.attempts
        self.certifier: BoxCertifier | None = None
        self.result: dict[str, float] = {}
        self.spent = 1  # the start
        self.starved = False  # a certificate could not be retried for want of queries
        self._seen: set[bytes] = set()  # lattice points asked for (each counted once)
        n = space.n
        self.refine_size = min(REFINE_PER_PARAMETER * n, m.max_queries // 8) if search.growth == "sampled" else 0
        self.limit = self._growth_limit()
        if search.growth == "lattice":
            span = np.where(space.periodic, np.floor((space.widths - 1e-9) / self.delta), np.inf)
            self.growers = [LatticeBox(n, lambda j: search.lattice_inside(k, j), span, prefer) for prefer in (None, *range(n))]
            self.stopped: set[int] = set()  # growers whose next layer would not fit the growth's share
            self.sampled = None
            if search.certificate == "sampled" and m.growth is None:  # a lattice box that reaches this grows on by sampling
                self.lattice_limit = 1 + (self.limit - 1) * 2 // 3
            else:
                self.lattice_limit = self.limit
        else:
            self.sampled = self._sampled(None)
            self.growers = []
        self.phase = "grow"
        self.a, self.b = x0.copy(), x0.copy()
        self._asks: list[tuple[Any, int]] = []

    def _sampled(self, box: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> SampledGrowth:
        """Sampled growth from the start, or on from a lattice box (its bounds and closed faces)."""
        n, m = self.search.space.n, self.search.algorithm
        return SampledGrowth(self.x0, self.search.space, self.delta, self.growth_rng,
                             max_queries=max(self.limit - self.spent, 0), samples_per_face=max(SAMPLES_PER_FACE, 2 * n),
                             max_failure=m.max_failure / 2, box=box)

    def _growth_limit(self) -> int:
        """Queries (the start included) the growth may spend: the rest is the certificate's (all its looks and a
        retry's first look, or at least two thirds of what is left) or the audit's, and the refinement's."""
        m, g = self.search.algorithm, self.search.guarantee
        if self.search.certificate == "lattice":
            return max(m.max_queries - m.n_samples, 1)
        wanted = g.look_sizes()[-1] + (g.first_look if m.attempts > 1 else 0)
        room = m.max_queries - 1 - self.refine_size
        return m.max_queries - self.refine_size - min(wanted, max(g.first_look, room * 2 // 3))

    @property
    def done(self) -> bool:
        return self.phase == "done"

    # --------------------------------------------------------------- asks
    def propose(self) -> np.ndarray:
        """The points wanted next (space coordinates, unwrapped); empty when the box is final."""
        n = self.search.space.n
        while not self.done:
            asks = self._propose_phase()
            if asks is not None:
                return asks
        return np.zeros((0, n))

    def _ask(self, points: np.ndarray) -> np.ndarray:
        self.spent += len(points)
        return points

    def _grow_lattice(self) -> np.ndarray | None:
        """The next layers of the growers that fit the growth's share of queries (None when growth is over)."""
        search, asks = self.search, []
        for i, g in enumerate(self.growers):
            if g.done or i in self.stopped:
                continue
            offsets = g.propose()
            if not len(offsets):
                continue
            points = search.lattice_points(self.k, offsets)
            keys = {search.key(p) for p in search.space.wrap(points)} - self._seen
            if self.spent + len(keys) > self.lattice_limit:  # its box is final
                self.stopped.add(i)
                continue
            self._seen |= keys
            self.spent += len(keys)
            asks.append((g, points))
        self._asks = [(g, len(points)) for g, points in asks]
        return np.concatenate([points for _, points in asks]) if asks else None

    def _propose_phase(self) -> np.ndarray | None:
        m = self.search.algorithm
        if self.phase == "grow":
            if self.sampled is not None:
                points = self.sampled.propose()
                if len(points):
                    return self._ask(points)
                self.a, self.b = self.sampled.a.copy(), self.sampled.b.copy()
                fits = self.spent + self.refine_size + self.search.guarantee.first_look <= m.max_queries
                self.phase = "refine" if self.refine_size and fits and (self.b > self.a).any() else "certify"
                return None
            points = self._grow_lattice()
            if points is not None:
                return points
            best = self.growers[self._largest()]
            self.a, self.b = self.x0 + best.lo * self.delta, self.x0 + best.hi * self.delta
            if self.lattice_limit < self.limit and self.stopped and not best.closed.all():
                self.sampled = self._sampled((self.a, self.b, best.closed))  # out of its share: on by sampling
                return None
            self.phase = "certify" if self.search.certificate == "sampled" else "audit"
            return None
        if self.phase == "refine":
            self._refine = uniform(self.rng, self.a, self.b, self.refine_size)
            return self._ask(self._refine)
        if self.phase == "certify":
            if self.certifier is None:
                g, left = self.search.guarantee, m.max_queries - self.spent
                retry = g.first_look if self.attempts_left > 1 and left - g.first_look >= g.first_look else 0
                if self.attempts_left < self.search.algorithm.attempts:  # a retry: all that is left
                    retry = 0
                self.certifier = BoxCertifier(g, self.a, self.b, self.rng, left - retry)
                if self.certifier.done:
                    self._judged()
                    return None
            return self._ask(self.certifier.propose())
        if self.phase == "audit":
            if (self.b <= self.a).all():
                self.result.update(audit_n_samples=0, audit_failures=0, audit_bound=0.0)
                self.phase = "done"
                return None
            self._audit = uniform(self.rng, self.a, self.b, min(m.n_samples, m.max_queries - self.spent))
            return self._ask(self._audit)
        return None

    def _largest(self) -> int:
        return max(range(len(self.growers)), key=lambda i: float(np.prod(self.growers[i].hi - self.growers[i].lo + 1)))

    def largest(self) -> tuple[np.ndarray, np.ndarray]:
        """The largest box of the lattice growers so far."""
        best = self.growers[self._largest()]
        return self.x0 + best.lo * self.delta, self.x0 + best.hi * self.delta

    def update(self, passes: np.ndarray) -> None:
        passes = np.asarray(passes, dtype=bool)
        m = self.search.algorithm
        if self.phase == "grow":
            if self.sampled is not None:
                self.sampled.update(passes)
            else:
                at = 0
                for grower, size in self._asks:
                    grower.update(passes[at : at + size])
                    at += size
            return
        if self.phase == "refine":
            self.a, self.b = trim(self.a, self.b, self.x0, self._refine, passes, m.max_failure / 2,
                                  self.delta / FINE, density=REFINE_DENSITY)
            self.phase = "certify"
            return
        if self.phase == "certify":
            self.certifier.update(passes)
            if self.certifier.done:
                self._judged()
            return
        failures = int((~passes).sum())
        bound = failure_bound(failures, len(passes), m.confidence)
        self.result.update(audit_n_samples=len(passes), audit_failures=failures, audit_bound=bound)
        self.phase = "done"

    def _judged(self) -> None:
        """After a certificate: keep a certified box, else shrink away from its failures and test again."""
        cert, g = self.certifier, self.search.guarantee
        self.certifier = None
        self.attempts_left -= 1
        if cert.status == "certified":
            self.result.update(check_n_samples=cert.samples, check_failures=cert.failures, failure_bound=cert.bound)
            self.phase = "done"
            return
        points, passed = cert.samples_seen()
        self.a, self.b = trim(self.a, self.b, self.x0, points, passed, self.search.algorithm.max_failure / 2,
                              self.delta / FINE)
        out_of_queries = self.search.algorithm.max_queries - self.spent < g.first_look
        if self.attempts_left <= 0 or out_of_queries or (self.b <= self.a).all():  # the start alone: it passed
            self.starved = out_of_queries and self.attempts_left > 0 and (self.b > self.a).any()
            self.a, self.b = self.x0.copy(), self.x0.copy()
            self.result.update(check_n_samples=0, check_failures=0, failure_bound=0.0)
            self.phase = "done"


# ------------------------------------------------- verified boxes as a region algorithm
class Verified(RegionAlgorithm):
    """Verified regions for [`find_regions`][semkit.find_regions] (``algorithms=("verified",)`` or ``Verified(...)``).

    Boxes in the same schema as the paper's algorithms, with a guarantee under an explicit criterion. A start that
    fails the criterion has no box (NaN bounds, ``start_passes`` 0).

    Parameters
    ----------
    certificate : str
        ``"sampled"``: with confidence ``confidence`` at most a share ``max_failure`` of the box's views fail, by
        fresh uniform samples (looks of n1, 2 n1, 4 n1 samples); ``"lattice"``: every lattice point inside
        passes, with a continuous audit of ``n_samples`` views.
    growth : str, optional
        How boxes grow: ``"lattice"`` (on the lattice of ``step``) or ``"sampled"``; None: the lattice up to 2
        parameters (with a sampled certificate, going on by sampling once the lattice has spent two thirds of its
        share of the queries), sampling beyond.
    criterion : Criterion or str, optional
        What a view must pass; None: top-1 correct (for an f that knows its true class).
    step : float or sequence of float or mapping, optional
        The lattice's step per parameter, in its units: one number, one per parameter in the Space's order, or
        a mapping by name (parameters it leaves out take the default); None: the Space's default step.
    confidence : float
        The confidence level of the sampled guarantee, in (0, 1).
    max_failure : float
        The share of a box's views allowed to fail under the sampled guarantee, in (0, 1).
    attempts : int
        How many times a box's sampled certificate is tested, the box shrinking away from the failures found
        after each failed test (the confidence is split over them); past that, the start alone.
    max_queries : int
        At most this many evaluations of f per start, in all.
    n_samples : int
        Fresh continuous views per box in a lattice certificate's audit.
    random_state : int or numpy Generator
        Draws every sample: the same value gives the same boxes.

    Raises
    ------
    ValueError
        If an option is out of range, ``growth`` or ``certificate`` is unknown, a lattice certificate is asked
        with sampled growth, or ``max_queries`` is too small for the certificate alone.
    TypeError
        A count or level that is no number (text, None, a bool).
    """

    name, title, color = "verified", "verified", "tab:blue"
    needs_classes = True

    def __init__(self, certificate: str = "sampled", growth: str | None = None, criterion: Criterion | str | None = None,
                 step: float | Sequence[float] | Mapping[str, float] | None = None, confidence: float = 0.95,
                 max_failure: float = 0.01, attempts: int = 3, max_queries: int = 5000, n_samples: int = 200,
                 random_state: int | np.random.Generator = 0) -> None:
        check_certificate(certificate)
        if growth is not None and growth not in GROWTHS:
            raise ValueError(f"unknown growth {growth!r}: choose one of {GROWTHS} (or None: lattice up to 2 parameters)")
        if certificate == "lattice" and growth == "sampled":
            raise ValueError("a lattice certificate needs lattice growth: pass growth='lattice' or certificate='sampled'")
        if step is not None and not isinstance(step, Mapping):  # a mapping by name is checked against the Space
            steps = np.atleast_1d(np.asarray(step, dtype=float))
            if not (np.isfinite(steps).all() and (steps > 0).all()):
                raise ValueError(f"step must be positive, got {step}")
        check_confidence(confidence)
        check_probability(max_failure, "max_failure", closed="neither")
        for name, value in (("attempts", attempts), ("max_queries", max_queries), ("n_samples", n_samples)):
            check_count(value, name)
        if random_state is not None and not isinstance(random_state, np.random.Generator):
            check_count(random_state, "random_state", minimum=0)
        self.guarantee = Guarantee(float(confidence), float(max_failure), tests=int(attempts))
        self.criterion = Criterion.resolve(criterion)
        self.certificate, self.growth, self.step = certificate, growth, step
        self.confidence, self.max_failure, self.attempts = float(confidence), float(max_failure), int(attempts)
        self.max_queries, self.n_samples = int(max_queries), int(n_samples)
        self.random_state = random_state if isinstance(random_state, np.random.Generator) else int(random_state)
        if self.certificate == "sampled" and self.guarantee.first_look + 1 > self.max_queries:
            raise ValueError(f"max_queries={max_queries} is too small: the certificate alone needs "
                             f"{self.guarantee.first_look} samples (at confidence {confidence:g}, max_failure "
                             f"{max_failure:g}); pass max_queries >= {self.guarantee.first_look + 1}")

    def get_params(self) -> dict[str, Any]:
        """The options, as plain values (``Verified(**v.get_params())`` makes the same algorithm)."""
        step = self.step if self.step is None or isinstance(self.step, Mapping) else \
            np.atleast_1d(np.asarray(self.step, float)).tolist()
        state = self.random_state if isinstance(self.random_state, int) else "a numpy Generator"
        return {"certificate": self.certificate, "growth": self.growth, "criterion": self.criterion.name,
                "step": dict(step) if isinstance(step, Mapping) else step, "confidence": self.confidence,
                "max_failure": self.max_failure, "attempts": self.attempts, "max_queries": self.max_queries,
                "n_samples": self.n_samples, "random_state": state}

    def __repr__(self) -> str:
        defaults = Verified().get_params()
        changed = {k: v for k, v in self.get_params().items() if v != defaults[k]}
        return f"Verified({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def for_function(self, f: Any) -> "Verified":
        """This algorithm with its criterion's true class taken from f (a top-1 criterion needs one).

        Parameters
        ----------
        f : ScoreFunction
            The score function the boxes grow on.

        Returns
        -------
        Verified
            Itself where the criterion needs nothing of f, else a copy bound to f's true class.
        """
        bound = Criterion.resolve(self.criterion, f=f)
        if bound == self.criterion:
            return self
        copy = object.__new__(Verified)
        copy.__dict__.update(self.__dict__, criterion=bound)
        return copy

    def queries_per_step(self, n: int) -> int:
        """At least one point per open face; a lattice face costs its whole next layer (it varies).

        Parameters
        ----------
        n : int
            The dimension of the Space.

        Returns
        -------
        int
            The fewest queries of f per box and step, 2n.
        """
        return 2 * n

    def statement(self) -> str:
        """What a box promises, in words."""
        if self.certificate == "sampled":
            return f"sampled: {self.guarantee.describe(self.criterion)}"
        return (f"lattice: every lattice point start + k x step in a box passes ({self.criterion.name}), and no "
                "face can move one step out without taking in a failing lattice point or leaving the Space; "
                f"audited by {self.n_samples} fresh continuous views per box (audit_failures, audit_bound), "
                "which is no guarantee between lattice points")

    def describe(self) -> dict[str, Any]:
        """Name and options (`get_params`), and the guarantee in words."""
        return {"name": self.name, **self.get_params(), "guarantee": self.statement()}

    def search(self, space: Space, starts: np.ndarray, iterations: int) -> "VerifiedSearch":
        return VerifiedSearch(self, space, starts, iterations)


class VerifiedSearch(Search):
    """The verified boxes of all starts, grown round by round; every point evaluated is remembered."""

    def __init__(self, algorithm: Verified, space: Space, starts: np.ndarray, iterations: int) -> None:
        self.algorithm, self.space, self.starts, self.iterations = algorithm, space, np.asarray(starts, float), iterations
        self.delta = space.steps(algorithm.step)
        self.growth = algorithm.growth or ("lattice" if space.n <= 2 or algorithm.certificate == "lattice" else "sampled")
        self.certificate, self.guarantee = algorithm.certificate, algorithm.guarantee
        K = len(self.starts)
        self.rngs = np.random.default_rng(algorithm.random_state).spawn(K)
        self.memo: dict[bytes, bool] = {}
        self.owner: dict[bytes, int] = {}  # the start a point's query is charged to
        self.start_passes: np.ndarray | None = None
        self.rounds = np.zeros(K, dtype=np.int64)
        self.lower_trace: list[np.ndarray] = []
        self.upper_trace: list[np.ndarray] = []
        self.boxes: list[StartBox] = []
        self._waiting: list[tuple[StartBox | None, int, np.ndarray]] = []

    # --------------------------------------------------------------- points
    def key(self, point: np.ndarray) -> bytes:
        """A wrapped point's key in the memory."""
        return np.round(np.asarray(point, float), 9).tobytes()

    def lattice_points(self, k: int, offsets: np.ndarray) -> np.ndarray:
        return self.space.clip(self.space.lattice(self.starts[k], self.delta, offsets))

    def lattice_inside(self, k: int, offsets: np.ndarray) -> np.ndarray:
        return self.space.contains(self.space.lattice(self.starts[k], self.delta, offsets))

    def _passes(self, points: np.ndarray) -> np.ndarray | None:
        """Pass/fail of points from memory (wrapped), or None if any is unknown."""
        keys = [self.key(p) for p in self.space.wrap(points)]
        if not all(key in self.memo for key in keys):
            return None
        return np.array([self.memo[key] for key in keys], dtype=bool)

    def _round(self) -> list[tuple[StartBox, int, np.ndarray]]:
        """Advance every box whose points are all known (replay), and return the asks still unanswered."""
        unanswered = []
        for box in self.boxes:
            while not box.done:
                points = box.propose()
                if not len(points):
                    break
                known = self._passes(points)
                if known is None:
                    unanswered.append((box, box.k, points))
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
        for box in self.boxes:
            busy[box.k] = not box.done
        return busy

    def _begin(self, passes: np.ndarray) -> None:
        self.start_passes = np.asarray(passes, dtype=bool)
        self.boxes = [StartBox(self, k) for k in range(len(self.starts)) if passes[k]]

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
                key = self.key(p)
                if key not in self.memo and key not in new:
                    new[key] = p
                    self.owner[key] = k
        self._asked = list(new)
        return Proposal(np.array(list(new.values())), np.empty((0, n)))

    def update(self, values: np.ndarray, gradients: np.ndarray, gradient_cost: float,
               evaluation: Evaluation | None = None) -> None:
        criterion = self.algorithm.criterion
        if not len(values):
            passes = np.zeros(0, bool)
        elif criterion.needs_classes and (evaluation is None or evaluation.topk is None):
            raise ValueError(f"the verified algorithm's criterion is {criterion.name}, but this f gives scores only: "
                             "pass criterion='score >= t' (a view passes when its score >= t)")
        elif evaluation is None:
            passes = criterion.passes(values)
        else:
            passes = criterion.passes(evaluation.score, evaluation.topk, evaluation.topk_prob)
        if self.start_passes is None:
            for k, (p, ok) in enumerate(zip(self.space.wrap(self.starts), passes)):
                key = self.key(p)
                self.owner.setdefault(key, k)
                self.memo[key] = bool(ok)
            self._begin(passes.copy())
        else:
            for key, ok in zip(self._asked, passes):
                self.memo[key] = bool(ok)
            for box, k, points in self._waiting:
                box.update(self._passes(points))
                self.rounds[k] += 1
        lower, upper = self._current()
        self.lower_trace.append(lower)
        self.upper_trace.append(upper)

    def _current(self) -> tuple[np.ndarray, np.ndarray]:
        """Each start's box now (its start alone until its growth is judged; none, NaN, for a failing start)."""
        lower, upper = self.starts.copy(), self.starts.copy()
        if self.start_passes is not None:
            lower[~self.start_passes], upper[~self.start_passes] = np.nan, np.nan
        for box in self.boxes:
            if box.phase == "grow" and box.sampled is not None:
                lower[box.k], upper[box.k] = box.sampled.a, box.sampled.b
            elif box.phase == "grow":
                lower[box.k], upper[box.k] = box.largest()
            else:
                lower[box.k], upper[box.k] = box.a, box.b
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
            key = self.key(p)
            self.memo[key] = bool(ok)
            if k >= 0:
                self.owner[key] = int(k)
        self.rounds = np.array(arrays["rounds"], dtype=np.int64)
        self.lower_trace, self.upper_trace = list(arrays["lower_trace"]), list(arrays["upper_trace"])

    def result(self) -> dict[str, np.ndarray]:
        K, n = self.starts.shape
        if self.start_passes is not None:
            self._round()  # finish what the memory answers
        lower, upper = self._current()
        T = self.iterations
        trace_lo = np.full((T, K, n), np.nan)
        trace_hi = np.full((T, K, n), np.nan)
        for t, (lo, hi) in enumerate(zip(self.lower_trace[:T], self.upper_trace[:T])):
            trace_lo[t], trace_hi[t] = lo, hi
        queries = np.zeros(K, dtype=np.int64)
        for k in self.owner.values():
            queries[k] += 1
        names = ("check_n_samples", "check_failures", "failure_bound") if self.certificate == "sampled" else \
            ("audit_n_samples", "audit_failures", "audit_bound")
        extra = {name: np.full(K, np.nan) for name in names}
        certified = np.zeros(K, dtype=bool)
        unfinished = []
        for box in self.boxes:
            for name in names:
                extra[name][box.k] = box.result.get(name, np.nan)
            certified[box.k] = box.done
            if not box.done and self.certificate == "sampled":  # never hand out a box its certificate has not passed
                lower[box.k], upper[box.k] = self.starts[box.k], self.starts[box.k]
                unfinished.append(box.k)
        if unfinished:
            warnings.warn(f"{len(unfinished)} verified box(es) (starts {unfinished}) did not finish within "
                          f"iterations={self.iterations}: each is reported as its start alone (certified 0); pass a "
                          "larger iterations=", stacklevel=2)
        starved = [box.k for box in self.boxes if box.starved]
        if starved:
            warnings.warn(f"{len(starved)} verified box(es) (starts {starved}) failed a certificate with too few of "
                          f"max_queries={self.algorithm.max_queries} left to test a smaller box: each is reported as its "
                          "start alone; pass a larger max_queries=", stacklevel=2)
        failing = [] if self.start_passes is None else np.flatnonzero(~self.start_passes).tolist()
        if failing:
            warnings.warn(f"{len(failing)} start(s) ({failing}) fail the criterion {self.algorithm.criterion.name}: they "
                          "have no verified box (NaN bounds, start_passes 0, certified 0)", stacklevel=2)
        return {"lower": lower, "upper": upper, "lower_trace": trace_lo, "upper_trace": trace_hi,
                "loss": np.full((T, K), np.nan), "queries": queries, "converged": ~self.active,
                "iterations": np.minimum(self.rounds + 1, T),
                "start_passes": np.full(K, np.nan) if self.start_passes is None else self.start_passes.astype(float),
                "extra": {**extra, "certified": certified.astype(float)}}
