"""The continuous guarantee: with confidence c, at most a share p of a box's views fail.

A box is certified by fresh uniform samples of the whole box (continuous
views, not lattice points), none reused from the search that grew it. The
share of failing views is bounded by the one-sided Clopper-Pearson upper
bound of the failures seen; the box is certified once that bound is at most
``max_failure``. Samples come in looks (n1, 2 n1, 4 n1, ...), so a box with
rare failures can still be certified with more samples, and a hopeless one
is given up early (it could not pass, or its failures already exceed 3/4 of
the allowed share: shrinking it and testing again is cheaper). The
confidence is split (Bonferroni) over every test a
search may make (``tests``: looks x attempts, or x candidate boxes), so the
statement holds for the box finally reported, whichever it is.

The same samples audit a box grown otherwise (a lattice box): the failures
seen and their Clopper-Pearson bound at ``confidence``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..criterion import Criterion
from ..space import Space
from ..validation import check_confidence, check_count, check_probability


def failure_bound(failures: int, n_samples: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound of a failure share, from the failures seen among independent views.

    Parameters
    ----------
    failures : int
        How many of the views failed.
    n_samples : int
        How many independent views were seen.
    confidence : float
        The bound's confidence level, in (0, 1).

    Returns
    -------
    float
        The bound; 1.0 where no view was seen or all failed.
    """
    from scipy.stats import beta

    if n_samples <= 0 or failures >= n_samples:
        return 1.0
    return float(beta.ppf(confidence, failures + 1, n_samples - failures))


@dataclass(frozen=True)
class Guarantee:
    """With confidence ``confidence``, at most a share ``max_failure`` of a box's views fail.

    Parameters
    ----------
    confidence : float
        The confidence level of the statement, in (0, 1).
    max_failure : float
        The share of a box's views allowed to fail, in (0, 1).
    tests : int
        The number of sample tests the confidence is split over (Bonferroni), so that the statement holds for
        the box finally reported.
    looks : int
        How many times one test may add samples (n1, 2 n1, 4 n1, ...) before it gives up.

    Raises
    ------
    ValueError
        If ``confidence`` or ``max_failure`` is not a number in (0, 1), or ``tests`` or ``looks`` is below 1.
    TypeError
        If one of them is no number (text, None, a bool).
    """

    confidence: float = 0.95
    max_failure: float = 0.01
    tests: int = 1
    looks: int = 3

    def __post_init__(self) -> None:
        check_confidence(self.confidence)
        check_probability(self.max_failure, "max_failure", closed="neither")
        check_count(self.tests, "tests")
        check_count(self.looks, "looks")

    @property
    def look_error(self) -> float:
        """The error level of one look: 1 - confidence, split over every look of every test."""
        return (1.0 - self.confidence) / (self.tests * self.looks)

    @property
    def first_look(self) -> int:
        """Samples of the first look: all passing certifies the box, ceil(ln(1 / look_error) / max_failure)."""
        return int(math.ceil(math.log(1.0 / self.look_error) / self.max_failure))

    def look_sizes(self, max_queries: int | None = None) -> list[int]:
        """Cumulative samples at each look (n1, 2 n1, 4 n1, ...).

        Parameters
        ----------
        max_queries : int, optional
            Keep only the looks that fit in this many samples; None: every look.

        Returns
        -------
        list of int
            The cumulative sample counts.
        """
        sizes = [self.first_look * 2**i for i in range(self.looks)]
        return sizes if max_queries is None else [s for s in sizes if s <= max_queries]

    def holds(self, failures: int, n_samples: int) -> bool:
        """Whether ``failures`` of ``n_samples`` fresh views meet the guarantee at one look.

        Parameters
        ----------
        failures : int
            How many of the views failed.
        n_samples : int
            How many fresh views were seen.

        Returns
        -------
        bool
            The Clopper-Pearson bound at one look's error level is at most ``max_failure``.
        """
        return failure_bound(failures, n_samples, 1.0 - self.look_error) <= self.max_failure

    def hopeless(self, failures: int, final_n_samples: int) -> bool:
        """Whether, even if every later sample passed, the last look could not certify the box.

        Parameters
        ----------
        failures : int
            How many views failed so far.
        final_n_samples : int
            The samples of the last look.

        Returns
        -------
        bool
            True: the box cannot pass; shrink it or give up.
        """
        return not self.holds(failures, final_n_samples)

    def describe(self, criterion: Criterion) -> str:
        """The guarantee in words, under ``criterion`` (for results' attrs).

        Parameters
        ----------
        criterion : Criterion
            What a view must pass.

        Returns
        -------
        str
            The statement, how it is tested and over how many looks the confidence is split.
        """
        return (f"with confidence {self.confidence:g}, at most a share {self.max_failure:g} of the box's views fail "
                f"({criterion.name}): fresh uniform samples of the whole box, continuous views, none reused from the "
                f"search; the one-sided Clopper-Pearson bound of their failures <= {self.max_failure:g}, the "
                f"confidence split over {self.tests * self.looks} looks ({self.first_look} samples all passing "
                "certify at the first)")

    def attrs(self) -> dict[str, Any]:
        """The options as plain values, for results' attrs."""
        return {"confidence": self.confidence, "max_failure": self.max_failure, "tests": self.tests, "looks": self.looks}


def uniform(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    """m uniform points of the box [a, b] (unwrapped coordinates; wrap before evaluating)."""
    return a + rng.random((m, len(a))) * (b - a)


class BoxCertifier:
    """One sequential test of a box: propose fresh uniform samples, learn whether they pass, decide.

    ``status`` is "pending", then "certified" or "failed"; the samples and
    their answers are kept (`samples_seen`) to shrink a failed box by.
    A box of zero volume in every parameter is its start, already known to pass.
    """

    def __init__(self, guarantee: Guarantee, a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                 max_queries: int | None = None) -> None:
        self.guarantee, self.a, self.b, self.rng = guarantee, np.asarray(a, float), np.asarray(b, float), rng
        self.sizes = guarantee.look_sizes(max_queries)
        self.samples = self.failures = 0
        self.points: list[np.ndarray] = []  # every sample drawn, and whether it passed
        self.passed: list[np.ndarray] = []
        if (self.b <= self.a).all():
            self.status = "certified"
        elif not self.sizes:
            self.status = "failed"
        else:
            self.status = "pending"

    @property
    def done(self) -> bool:
        return self.status != "pending"

    @property
    def bound(self) -> float:
        """The Clopper-Pearson upper bound of the failure share at the split level (0 for a point box)."""
        if (self.b <= self.a).all():
            return 0.0
        return failure_bound(self.failures, self.samples, 1.0 - self.guarantee.look_error)

    def propose(self) -> np.ndarray:
        look = next(s for s in self.sizes if s > self.samples)
        self._pending = uniform(self.rng, self.a, self.b, look - self.samples)
        return self._pending

    def samples_seen(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples drawn so far [m, n] and whether each passed [m]."""
        if not self.points:
            return np.zeros((0, len(self.a))), np.zeros(0, bool)
        return np.concatenate(self.points), np.concatenate(self.passed)

    def update(self, passes: np.ndarray) -> None:
        passes = np.asarray(passes, dtype=bool)
        self.samples += len(passes)
        self.failures += int((~passes).sum())
        self.points.append(self._pending)
        self.passed.append(passes)
        if self.guarantee.holds(self.failures, self.samples):
            self.status = "certified"
        elif (self.samples >= self.sizes[-1] or self.guarantee.hopeless(self.failures, self.sizes[-1])
              or self.failures > 0.75 * self.guarantee.max_failure * self.samples):  # futile: shrink, retest
            self.status = "failed"


def audit(f: Any, criterion: Criterion, lower: np.ndarray, upper: np.ndarray, *, space: Space, n_samples: int,
          confidence: float, random_state: int | np.random.Generator = 0) -> dict[str, np.ndarray]:
    """Audit boxes with fresh uniform continuous views: the failures seen and their bound.

    All boxes' views go to f in one call; a box that is a single view is not sampled.

    Parameters
    ----------
    f : ScoreFunction or callable
        The function whose views are judged.
    criterion : Criterion
        What a view must pass.
    lower, upper : ndarray
        The boxes' bounds, ``[K, n]`` (periodic ones unwrapped).
    space : Space
        The Space of the boxes.
    n_samples : int
        Fresh views per box.
    confidence : float
        The confidence level of each box's bound, in (0, 1).
    random_state : int or numpy Generator
        Draws the views: the same value gives the same audit.

    Returns
    -------
    dict of str to ndarray
        Per box ``[K]``: ``audit_n_samples``, ``audit_failures`` and ``audit_bound``, the one-sided Clopper-Pearson
        upper bound of its failure share at ``confidence`` (0 for a box that is a single view).
    """
    K = len(lower)
    rng = np.random.default_rng(random_state)
    point = (upper <= lower).all(axis=1)
    m = np.where(point, 0, n_samples)
    batch = [uniform(rng, lower[k], upper[k], int(m[k])) for k in range(K)]
    flat = np.concatenate(batch) if K else np.zeros((0, space.n))
    passes, _, _ = criterion.evaluate(f, space.wrap(flat))
    failures = np.array([int((~p).sum()) for p in np.split(passes, np.cumsum(m)[:-1])]) if K else np.zeros(0, int)
    bound = np.array([0.0 if point[k] else failure_bound(int(failures[k]), int(m[k]), confidence) for k in range(K)])
    return {"audit_n_samples": m.astype(np.int64), "audit_failures": failures.astype(np.int64), "audit_bound": bound}


def trim(a: np.ndarray, b: np.ndarray, x0: np.ndarray, points: np.ndarray, passed: np.ndarray, target: float,
         margin: np.ndarray, max_cuts: int = 64, density: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shrink [a, b] (keeping x0) until the share of failing samples left inside is at most ``target``.

    Each cut pulls one face in to just past the outermost failing sample on
    its side (by ``margin``), choosing the cut that removes the most
    failures per share of volume lost: failures along a face (a box grown
    past a boundary) go cheaply, a rare pocket deep inside is kept. Without
    any cut that helps, the box becomes x0 alone. With ``density``, only
    cuts whose removed samples fail at that rate or more are made, and the
    box stays as it is when none is left (a refinement, not a verdict).
    """
    a, b = a.copy(), b.copy()
    for _ in range(max_cuts):
        inside = ((points >= a - 1e-12) & (points <= b + 1e-12)).all(axis=1)
        failing = inside & ~passed
        if not failing.any() or failing.sum() <= target * inside.sum():
            return a, b
        best, best_gain = None, 0.0
        widths = np.maximum(b - a, 1e-300)
        for d in range(len(a)):
            for side in (0, 1):
                if side:
                    cut = float(points[failing, d].max()) - margin[d]
                    new_a, new_b = a[d], max(cut, x0[d])
                else:
                    cut = float(points[failing, d].min()) + margin[d]
                    new_a, new_b = min(cut, x0[d]), b[d]
                lost = 1.0 - (new_b - new_a) / widths[d]
                kept = inside & (points[:, d] >= new_a - 1e-12) & (points[:, d] <= new_b + 1e-12)
                removed = int(failing.sum() - (failing & kept).sum())
                if removed == 0 or (density is not None and removed < density * int(inside.sum() - kept.sum())):
                    continue
                gain = removed / max(lost, 1e-9)
                if gain > best_gain:
                    best, best_gain = (d, new_a, new_b), gain
        if best is None:
            return (a, b) if density is not None else (x0.copy(), x0.copy())
        d, a[d], b[d] = best
    return a, b
