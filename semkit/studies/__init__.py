"""Studies: shapes x networks as one spec, run here or on Dask, and networks compared with confidence.

* :mod:`.spec`: :class:`StudySpec`, what a study computes (:class:`Maps` or :class:`Regions` per pair);
* :mod:`.run`: :func:`study` runs a spec (serially, or on Dask with a ``.zarr`` store);
* :mod:`.tasks`: what one task computes and writing it; :mod:`.stacking`: tasks' results as one Dataset;
* :mod:`.shortcuts`: :func:`map_regions` (regions on stacked maps), :func:`looks`;
* :mod:`.compare`: :func:`compare_networks`, :func:`findings`, :func:`comparison_table`, :func:`average`.
"""

from .compare import average, compare_networks, compare_searches, comparison_table, findings
from .run import study
from .shortcuts import looks, map_regions
from .spec import DEFAULT_STARTS, KINDS, Maps, Regions, StudySpec
from .stacking import stack

__all__ = [
    "DEFAULT_STARTS", "KINDS", "Maps", "Regions", "StudySpec", "average", "compare_networks", "compare_searches",
    "comparison_table", "findings", "looks", "map_regions", "stack", "study",
]
