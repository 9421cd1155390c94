"""Robust regions: boxes of semantic parameters grown around a start where a network keeps its answer.

* :mod:`.base`: the region-method interface (:class:`RegionMethod`,
  :class:`Search`) and its registry (:data:`METHODS`);
* :mod:`.rules`: step rules of the bound flow (faithful, adaptive);
* :mod:`.paper`: the paper's naive, OIR_B and OIR_W methods;
* :mod:`.driver`: :func:`find_regions`, all methods and starts in one batch;
* :mod:`.metrics`: :func:`srvr`, :func:`volume_ratio`, :func:`check_regions`.

The paper's boxes are heuristics; :mod:`semkit.trust` adds verified boxes
(the ``"verified"`` method) and guarantees.
"""

from .base import METHODS, Proposal, RegionMethod, Search, style
from .driver import EXTRA_NAMES, find_regions  # noqa: F401  (EXTRA_NAMES: for trust, not public)
from .metrics import box_iou, check_regions, srvr, volume_ratio
from .paper import PAPER_METHODS, OIRB, OIRW, BoxFlow, Naive
from .rules import DEFAULT_STEP_RULE, STEP_RULES, AdaptiveSteps, FaithfulSteps, StepRule

__all__ = [
    "PAPER_METHODS", "AdaptiveSteps", "BoxFlow", "DEFAULT_STEP_RULE", "FaithfulSteps", "METHODS", "Naive", "OIRB", "OIRW",
    "Proposal", "RegionMethod", "STEP_RULES", "Search", "StepRule", "box_iou", "check_regions", "find_regions", "srvr",
    "style", "volume_ratio",
]
