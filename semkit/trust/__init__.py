"""Robustness with a guarantee and a stated criterion.

The paper's boxes are heuristics: they can hold many misclassified views.
This package answers the same questions with guarantees, always under an
explicit :class:`~semkit.Criterion` (top-1, top-k, score >= t, margin), and
by default about every view in a box, not only lattice points:

* :mod:`.guarantee`: the continuous guarantee (with confidence c, at most a
  share p of a box's views fail, by fresh uniform samples) and audits;
* :mod:`.lattice`: lattices of views, exact statements about their points;
* :mod:`.verified`: verified regions as a region algorithm of ``find_regions``;
* :mod:`.radius`: :func:`robustness_radius`, on the lattice and the continuum;
* :mod:`.accuracy`: :func:`robust_accuracy` and :func:`decision_noise`;
* :mod:`.failures`: :func:`find_failures`, worst-case views (no guarantee);
* :mod:`.smoothing`: :class:`Smoothed`, randomized smoothing (certificates of the smoothed network g, not of f),
  and :func:`certified_accuracy`;
* :mod:`.sobol`: :func:`sensitivity`, Sobol indices of the score and of failure per parameter.
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
