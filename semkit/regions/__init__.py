"""Robust regions: boxes of semantic parameters grown around a start where a network keeps its answer.

* `.base`: the region-algorithm interface ([`RegionAlgorithm`][semkit.regions.RegionAlgorithm],
  [`Search`][semkit.regions.Search]) and its registry (`ALGORITHMS`);
* `.rules`: step rules of the bound flow (faithful, adaptive);
* `.paper`: the paper's naive, OIR_B and OIR_W algorithms;
* `.driver`: [`find_regions`][semkit.find_regions], all algorithms and starts in one batch;
* `.metrics`: [`srvr`][semkit.srvr], [`volume_ratio`][semkit.regions.volume_ratio], [`check_regions`][semkit.check_regions].

The paper's boxes are heuristics; [`semkit.trust`][semkit.trust] adds verified boxes
(the ``"verified"`` algorithm) and guarantees.
"""

from .base import ALGORITHMS, Proposal, RegionAlgorithm, Search, style
from .driver import EXTRA_NAMES, find_regions  # noqa: F401  (EXTRA_NAMES: for trust, not public)
from .metrics import box_iou, check_regions, srvr, volume_ratio
from .paper import PAPER_ALGORITHMS, OIRB, OIRW, BoxFlow, Naive
from .rules import DEFAULT_STEP_RULE, STEP_RULES, AdaptiveSteps, FaithfulSteps, StepRule

__all__ = [
    "ALGORITHMS", "PAPER_ALGORITHMS", "AdaptiveSteps", "BoxFlow", "DEFAULT_STEP_RULE", "FaithfulSteps", "Naive", "OIRB", "OIRW",
    "Proposal", "RegionAlgorithm", "STEP_RULES", "Search", "StepRule", "box_iou", "check_regions", "find_regions", "srvr",
    "style", "volume_ratio",
]
