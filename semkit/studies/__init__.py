"""Studies: shapes x networks as one spec, run here or on Dask, and networks compared with confidence.

* :mod:`.spec`: :class:`StudySpec`, what a study computes;
* :mod:`.run`: :func:`study` runs a spec (serially, or on Dask with a ``.zarr`` store), :func:`open_study`;
* :mod:`.tasks`: what one task computes and the store's layout; :mod:`.stacking`: tasks' results as one Dataset;
* :mod:`.shortcuts`: :func:`sweep`, :func:`semantic_maps`, :func:`maps_of`, :func:`map_regions`, :func:`looks`;
* :mod:`.compare`: :func:`compare_networks`, :func:`findings`, :func:`comparison_table`, :func:`average`.
"""

from .compare import average, compare_networks, compare_searches, comparison_table, findings
from .run import SCHEDULER_TIMEOUT, open_study, study
from .shortcuts import looks, map_regions, maps_of, open_sweep, semantic_maps, sweep
from .spec import DEFAULT_STARTS, KINDS, StudySpec
from .stacking import stack

__all__ = [
    "DEFAULT_STARTS", "KINDS", "SCHEDULER_TIMEOUT", "StudySpec", "average", "compare_networks", "compare_searches",
    "comparison_table", "findings", "looks", "map_regions", "maps_of", "open_study", "open_sweep", "semantic_maps", "stack",
    "study", "sweep",
]
