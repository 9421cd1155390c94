"""Robustness with a guarantee and a stated criterion.

The paper's boxes are heuristics: they can hold many misclassified views.
This package answers the same questions with guarantees, always under an
explicit [`Criterion`][semkit.Criterion] (top-1, top-k, score >= t, margin), and
by default about every view in a box, not only lattice points:

* `.guarantee`: the continuous guarantee (with confidence c, at most a
  share p of a box's views fail, by fresh uniform samples) and audits;
* `.lattice`: lattices of views, exact statements about their points;
* `.verified`: verified regions as a region algorithm of ``find_regions``;
* `.radius`: [`robustness_radius`][semkit.robustness_radius], on the lattice and the continuum;
* `.accuracy`: [`robust_accuracy`][semkit.robust_accuracy] and [`decision_noise`][semkit.decision_noise];
* `.failures`: [`find_failures`][semkit.find_failures], worst-case views (no guarantee);
* `.smoothing`: [`Smoothed`][semkit.Smoothed], randomized smoothing (certificates of the smoothed network g, not of f),
  and [`certified_accuracy`][semkit.certified_accuracy];
* `.sobol`: [`sensitivity`][semkit.sensitivity], Sobol indices of the score and of failure per parameter.
"""

from ..criterion import Criterion
from .accuracy import decision_noise, robust_accuracy
from .failures import FAILURE_SEARCHES, CMAESSearch, FailureSearch, RandomSearch, find_failures
from .guarantee import Guarantee, audit, failure_bound
from .radius import CERTIFICATES, robustness_radius
from .sobol import sensitivity, sensitivity_summary
from .smoothing import Smoothed, certified_accuracy
from .verified import GROWTHS, Verified

__all__ = [
    "CERTIFICATES", "CMAESSearch", "Criterion", "FAILURE_SEARCHES", "FailureSearch", "GROWTHS", "Guarantee",
    "RandomSearch", "Smoothed", "Verified", "audit", "certified_accuracy", "decision_noise", "failure_bound",
    "find_failures", "robust_accuracy", "robustness_radius", "sensitivity", "sensitivity_summary",
]
