"""Verified regions: boxes with a guarantee, as a region method of :func:`~semkit.find_regions`.

Each start that passes its criterion grows a box, then the box is judged:

* growth: on the lattice start + k * step (:class:`~.lattice.LatticeBox`,
  default up to 3 parameters: exact and cheap) or by sampling
  (:class:`SampledGrowth`, beyond: faces advance while the failures of
  what they take in stay rare; then uniform samples of the box pull in the
  faces grown past a boundary, not used again);
* ``certificate="sampled"`` (default): the continuous guarantee
  (:class:`~.guarantee.Guarantee`), by fresh uniform samples of the final
  box; a box that fails it shrinks away from the failures found and is
  tested again, up to ``attempts`` times (past that, the start alone);
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
from ..regions import Proposal, RegionMethod, Search
from ..space import Space
from .guarantee import BoxCertifier, Guarantee, failure_bound, trim, uniform
from .lattice import LatticeBox
from .radius import check_certificate

GROWTHS = ("lattice", "sampled")
#: A sampled box locates its faces to half the step (growth steps and pull-backs).
FINE = 2
#: How often a face closed on failures may open again as the box grows.
MAX_REOPEN = 2
#: After sampled growth, uniform samples of the box (per parameter) find faces grown past a boundary ...
REFINE_PER_PARAMETER = 128
#: ... and a face is pulled in where the views it would give up fail at this rate or more.
REFINE_DENSITY = 0.1


class SampledGrowth:
    """Grow a continuous box from a start by sampling slabs beyond its faces.

    Each open face proposes a slab of thickness ``step`` beyond it and
    samples it. The slab is taken in while the failures of everything taken
    in so far (each slab's failing share, weighted by its volume) stay
    under ``tolerance`` of the box's volume: a rare failing pocket does not
    stop a face, a failing region does. A face whose slab is taken in
    doubles its step (keeps it, when the slab held failures), else halves
    it, and closes below half the step, at a bound, or when a
    periodic parameter's box would wrap onto itself. A face closed on
    failures opens again (twice at most) once the box has doubled in volume:
    what stopped a small box may be a pocket that a larger box tolerates.
    """

    def __init__(self, x0: np.ndarray, space: Space, delta: np.ndarray, rng: np.random.Generator, *,
                 budget: int, samples_per_face: int, tolerance: float) -> None:
        self.space, self.delta, self.rng = space, delta, rng
        self.x0 = x0
        self.a, self.b = x0.copy(), x0.copy()
        self.step = np.repeat(delta[:, None], 2, axis=1) * 2.0
        self.closed = np.zeros((space.n, 2), dtype=bool)
        self.closed_at = np.full((space.n, 2), np.inf)  # the box's volume when a face closed on failures
        self.reopened = np.zeros((space.n, 2), dtype=int)
        self.budget, self.samples_per_face, self.tolerance = budget, samples_per_face, tolerance
        self.used = 0
        self.failed_volume = 0.0  # estimated volume of failing views taken in
        self.done = False
        self._pending: list = []

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

    def propose(self) -> np.ndarray:
        n = self.space.n
        slabs = []
        # a face closed on failures while the box was small opens again once the box has doubled (a pocket, not a wall)
        volume = self._volume(self.a, self.b)
        again = self.closed & (volume >= 2 * self.closed_at) & (self.reopened < MAX_REOPEN)
        self.closed[again], self.closed_at[again] = False, np.inf
        self.reopened[again] += 1
        self.step[again] = (np.repeat(self.delta[:, None], 2, axis=1) * 2.0)[again]
        if self.used + self.samples_per_face * 2 * n <= self.budget:
            for d in range(n):
                for side in (0, 1):
                    if not self.closed[d, side]:
                        slab = self._slab(d, side)
                        if slab is None:
                            self.closed[d, side] = True
                        else:
                            slabs.append(((d, side), slab))
        if not slabs:
            self.done = True
            return np.zeros((0, n))
        m = self.samples_per_face
        self._pending = slabs
        self.used += m * len(slabs)
        return np.concatenate([uniform(self.rng, a, b, m) for _, (a, b) in slabs])

    def _volume(self, a: np.ndarray, b: np.ndarray) -> float:
        # widths relative to the step, so that a box thin in one parameter still has a volume
        return float(np.prod(np.maximum(b - a, 0.0) / self.delta + 1.0))

    def update(self, passes: np.ndarray) -> None:
        passes = np.asarray(passes, dtype=bool)
        m = self.samples_per_face
        for i, ((d, side), (a, b)) in enumerate(self._pending):
            share = 1.0 - passes[i * m : (i + 1) * m].mean()
            new_a, new_b = self.a.copy(), self.b.copy()
            if side:
                new_b[d] = b[d]
            else:
                new_a[d] = a[d]
            grown = self._volume(new_a, new_b)
            slab_volume = grown - self._volume(self.a, self.b)
            failed = self.failed_volume + share * slab_volume
            if share == 0 or failed <= self.tolerance * grown:
                self.a, self.b, self.failed_volume = new_a, new_b, failed
                if share == 0:
                    self.step[d, side] *= 2.0
            else:
                self.step[d, side] /= 2.0
                if self.step[d, side] < self.delta[d] / FINE - 1e-12:
                    self.closed[d, side] = True
                    self.closed_at[d, side] = self._volume(self.a, self.b)


class StartBox:
    """One start's verified box: growth, then its certificate (or audit), as a sequence of asks."""

    def __init__(self, search: "VerifiedSearch", k: int) -> None:
        self.search, self.k = search, k
        m, space, x0 = search.method, search.space, search.starts[k]
        self.x0, self.delta = x0, search.delta
        self.rng = np.random.default_rng([m.seed, k])
        self.attempts_left = m.attempts
        self.certifier: BoxCertifier | None = None
        self.result: dict[str, float] = {}
        n = space.n
        if search.growth == "lattice":
            span = np.where(space.periodic, np.floor((space.widths - 1e-9) / self.delta), np.inf)
            self.growers = [LatticeBox(n, lambda j: search.lattice_inside(k, j), span, prefer) for prefer in (None, *range(n))]
            self.sampled = None
        else:
            self.refine_size = REFINE_PER_PARAMETER * n
            # room for the refinement and a whole certificate, or half the budget when that is less
            reserve = min(search.guarantee.look_sizes()[-1] + self.refine_size, m.max_queries // 2)
            self.sampled = SampledGrowth(x0, space, self.delta, np.random.default_rng([m.seed, k, 1]),
                                         budget=max(m.max_queries - 1 - reserve, 0), samples_per_face=max(16, 2 * n),
                                         tolerance=m.max_failure / 2)
            self.growers = []
        self.phase = "grow"
        self.a, self.b = x0.copy(), x0.copy()
        self._asks: list[tuple[Any, int]] = []

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

    def _propose_phase(self) -> np.ndarray | None:
        if self.phase == "grow":
            if self.sampled is not None:
                points = self.sampled.propose()
                if len(points):
                    return points
                self.a, self.b = self.sampled.a.copy(), self.sampled.b.copy()
                self.phase = "refine"
                return None
            else:
                asks = [(g, g.propose()) for g in self.growers if not g.done]
                self._asks = [(g, len(offsets)) for g, offsets in asks if len(offsets)]
                if self._asks:
                    return np.concatenate([self.search.lattice_points(self.k, o) for _, o in asks if len(o)])
                self._take_largest()
            self.phase = "certify" if self.search.certificate == "sampled" else "audit"
            return None
        if self.phase == "refine":
            self._refine = uniform(self.rng, self.a, self.b, self.refine_size)
            return self._refine
        if self.phase == "certify":
            if self.certifier is None:
                budget = self.search.method.max_queries - self.search.charged(self.k)
                self.certifier = BoxCertifier(self.search.guarantee, self.a, self.b, self.rng, budget)
                if self.certifier.done:
                    self._judged()
                    return None
            return self.certifier.propose()
        if self.phase == "audit":
            if (self.b <= self.a).all():
                self.result.update(audit_samples=0, audit_failures=0, audit_bound=0.0)
                self.phase = "done"
                return None
            self._audit = uniform(self.rng, self.a, self.b, self.search.method.audit_samples)
            return self._audit
        return None

    def _take_largest(self) -> None:
        best = max(self.growers, key=lambda g: float(np.prod(g.hi - g.lo + 1)))
        self.a, self.b = self.x0 + best.lo * self.delta, self.x0 + best.hi * self.delta

    def update(self, passes: np.ndarray) -> None:
        passes = np.asarray(passes, dtype=bool)
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
            self.a, self.b = trim(self.a, self.b, self.x0, self._refine, passes, self.search.method.max_failure / 2,
                                  self.delta / FINE, density=REFINE_DENSITY)
            self.phase = "certify"
            return
        if self.phase == "certify":
            self.certifier.update(passes)
            if self.certifier.done:
                self._judged()
            return
        failures = int((~passes).sum())
        bound = failure_bound(failures, len(passes), 1.0 - self.search.method.confidence)
        self.result.update(audit_samples=len(passes), audit_failures=failures, audit_bound=bound)
        self.phase = "done"

    def _judged(self) -> None:
        """After a certificate: keep a certified box, else shrink away from its failures and test again."""
        cert = self.certifier
        self.certifier = None
        self.attempts_left -= 1
        if cert.status == "certified":
            self.result.update(check_samples=cert.samples, check_failures=cert.failures, failure_bound=cert.bound)
            self.phase = "done"
            return
        points, passed = cert.samples_seen()
        self.a, self.b = trim(self.a, self.b, self.x0, points, passed, self.search.method.max_failure / 2,
                              self.delta / FINE)
        if self.attempts_left <= 0:  # the start alone: it passed
            self.a, self.b = self.x0.copy(), self.x0.copy()
            self.result.update(check_samples=0, check_failures=0, failure_bound=0.0)
            self.phase = "done"


# ------------------------------------------------- verified boxes as a region method
class Verified(RegionMethod):
    """Verified regions for :func:`~semkit.find_regions` (``algorithms=("verified",)``).

    Boxes in the same schema as the paper's methods, with a guarantee under
    an explicit criterion (``criterion=``, or ``threshold=t`` for score >=
    t; top-1 correct by default for a SemanticFunction). Growth on the
    lattice of step ``step`` (default up to 3 parameters) or by
    sampling (``growth=``); ``certificate="sampled"`` (default): with
    confidence ``confidence`` at most a share ``max_failure`` of the box's
    views fail, by fresh uniform samples (looks of n1, 2 n1, 4 n1 samples;
    up to ``attempts`` shrinks; ``max_queries`` per start in all);
    ``certificate="lattice"``: every lattice point inside passes, with a
    continuous audit of ``audit_samples`` views. A start that fails the
    criterion keeps an empty box (lower = upper).
    """

    name, label, color = "verified", "verified", "tab:blue"
    needs_classes = True
    def __init__(self, certificate: str = "sampled", growth: str | None = None, criterion: Criterion | str | None = None,
                 threshold: float | None = None, step: float | Sequence[float] | None = None,
                 confidence: float = 0.95, max_failure: float = 0.01, attempts: int = 3, max_queries: int = 5000,
                 audit_samples: int = 200, seed: int = 0) -> None:
        check_certificate(certificate)
        if growth is not None and growth not in GROWTHS:
            raise ValueError(f"unknown growth {growth!r}: choose one of {GROWTHS}")
        if certificate == "lattice" and growth == "sampled":
            raise ValueError("a lattice certificate needs lattice growth: pass growth='lattice' or certificate='sampled'")
        if step is not None and not isinstance(step, Mapping):  # a mapping by name is checked against the Space
            steps = np.atleast_1d(np.asarray(step, dtype=float))
            if not (np.isfinite(steps).all() and (steps > 0).all()):
                raise ValueError(f"step must be positive, got {step}")
        if not isinstance(attempts, (int, np.integer)) or attempts < 1:
            raise ValueError(f"attempts must be a whole number >= 1, got {attempts!r}")
        self.guarantee = Guarantee(confidence, max_failure, tests=int(attempts))
        self.criterion = Criterion.resolve(criterion, threshold)
        self.certificate, self.growth, self.step = certificate, growth, step
        self.confidence, self.max_failure, self.attempts = confidence, max_failure, int(attempts)
        self.max_queries, self.audit_samples, self.seed = int(max_queries), int(audit_samples), int(seed)
        if self.certificate == "sampled" and self.guarantee.first_look + 1 > self.max_queries:
            raise ValueError(f"max_queries={max_queries} is too small: the certificate alone needs "
                             f"{self.guarantee.first_look} samples")

    def for_function(self, fn: Any) -> "Verified":
        """This method with its criterion's true class taken from f (a top-1 criterion needs one)."""
        bound = Criterion.resolve(self.criterion, None, fn)
        if bound == self.criterion:
            return self
        copy = object.__new__(Verified)
        copy.__dict__.update(self.__dict__, criterion=bound)
        return copy

    def queries_per_step(self, n: int) -> int:
        """At least one point per open face; a lattice face costs its whole next layer (it varies)."""
        return 2 * n

    def describe(self) -> dict[str, Any]:
        step = self.step if self.step is None or isinstance(self.step, Mapping) else \
            np.atleast_1d(np.asarray(self.step, float)).tolist()
        sampled = f"sampled: {self.guarantee.describe(self.criterion)}"
        lattice = (f"lattice: every lattice point start + k x step in a box passes ({self.criterion.name}), and no "
                   "face can move one step out without taking in a failing lattice point or leaving the Space; "
                   f"audited by {self.audit_samples} fresh continuous views per box (audit_failures, audit_bound), "
                   "which is no guarantee between lattice points")
        growth = self.growth or "lattice up to 3 parameters, sampled beyond"
        return {"name": self.name, "certificate": self.certificate, "growth": growth, **self.criterion.attrs(),
                "step": step, **self.guarantee.attrs(), "attempts": self.attempts,
                "max_queries": self.max_queries, "audit_samples": self.audit_samples, "seed": self.seed,
                "guarantee": sampled if self.certificate == "sampled" else lattice}

    def search(self, space: Space, starts: np.ndarray, iterations: int) -> "VerifiedSearch":
        return VerifiedSearch(self, space, starts, iterations)


class VerifiedSearch(Search):
    """The verified boxes of all starts, grown round by round; every point evaluated is remembered."""

    def __init__(self, method: Verified, space: Space, starts: np.ndarray, iterations: int) -> None:
        self.method, self.space, self.starts, self.iterations = method, space, np.asarray(starts, float), iterations
        self.delta = space.steps(method.step)
        self.growth = method.growth or ("lattice" if space.n <= 3 or method.certificate == "lattice" else "sampled")
        self.certificate, self.guarantee = method.certificate, method.guarantee
        K = len(self.starts)
        self.memo: dict[bytes, bool] = {}
        self.owner: dict[bytes, int] = {}  # the start a point's query is charged to
        self.start_passes: np.ndarray | None = None
        self.rounds = np.zeros(K, dtype=np.int64)
        self.lower_trace: list[np.ndarray] = []
        self.upper_trace: list[np.ndarray] = []
        self.boxes: list[StartBox] = []
        self._waiting: list[tuple[StartBox | None, int, np.ndarray]] = []

    # --------------------------------------------------------------- points
    def _key(self, point: np.ndarray) -> bytes:
        return np.round(np.asarray(point, float), 9).tobytes()

    def lattice_points(self, k: int, offsets: np.ndarray) -> np.ndarray:
        return self.space.clip(self.space.lattice(self.starts[k], self.delta, offsets))

    def lattice_inside(self, k: int, offsets: np.ndarray) -> np.ndarray:
        return self.space.contains(self.space.lattice(self.starts[k], self.delta, offsets))

    def charged(self, k: int) -> int:
        """Queries charged to start k so far."""
        return sum(1 for owner in self.owner.values() if owner == k)

    def _passes(self, points: np.ndarray) -> np.ndarray | None:
        """Pass/fail of points from memory (wrapped), or None if any is unknown."""
        keys = [self._key(p) for p in self.space.wrap(points)]
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
        self.start_passes = passes
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
                key = self._key(p)
                if key not in self.memo and key not in new:
                    new[key] = p
                    self.owner[key] = k
        self._asked = list(new)
        return Proposal(np.array(list(new.values())), np.empty((0, n)))

    def update(self, values: np.ndarray, gradients: np.ndarray, gradient_cost: float,
               evaluation: Evaluation | None = None) -> None:
        criterion = self.method.criterion
        if not len(values):
            passes = np.zeros(0, bool)
        elif criterion.needs_classes and (evaluation is None or evaluation.topk is None):
            raise ValueError(f"the verified method's criterion is {criterion.name}, but this f gives scores only: "
                             "pass threshold=t (a view passes when its score >= t)")
        elif evaluation is None:
            passes = criterion.passes(values)
        else:
            passes = criterion.passes(evaluation.score, evaluation.topk, evaluation.topk_prob)
        if self.start_passes is None:
            for k, (p, ok) in enumerate(zip(self.space.wrap(self.starts), passes)):
                key = self._key(p)
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
        """Each start's box now (its start alone until its growth is judged)."""
        lower, upper = self.starts.copy(), self.starts.copy()
        for box in self.boxes:
            if box.phase == "grow" and box.sampled is not None:
                lower[box.k], upper[box.k] = box.sampled.a, box.sampled.b
            elif box.phase == "grow":
                g = max(box.growers, key=lambda g: float(np.prod(g.hi - g.lo + 1)))
                lower[box.k], upper[box.k] = box.x0 + g.lo * self.delta, box.x0 + g.hi * self.delta
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
            key = self._key(p)
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
        names = ("check_samples", "check_failures", "failure_bound") if self.certificate == "sampled" else \
            ("audit_samples", "audit_failures", "audit_bound")
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
        if self.start_passes is not None:  # a failing start's empty box: nothing to certify
            certified |= ~self.start_passes.astype(bool)
        return {"lower": lower, "upper": upper, "lower_trace": trace_lo, "upper_trace": trace_hi,
                "loss": np.full((T, K), np.nan), "queries": queries, "converged": ~self.active,
                "iterations": np.minimum(self.rounds + 1, T),
                "start_passes": np.full(K, np.nan) if self.start_passes is None else self.start_passes.astype(float),
                "extra": {**extra, "certified": certified.astype(float)}}


