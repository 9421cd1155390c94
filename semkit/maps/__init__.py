"""Network semantic maps: f over a grid of a Space, dense or adaptive, and maps read back as functions.

* :mod:`.dense`: :func:`semantic_map` (one f), :func:`network_maps` (several networks, each view rendered once),
  :func:`open_map`;
* :mod:`.adaptive`: adaptive maps, refined where the answer changes;
* :mod:`.interpolation`: :class:`MapFunction`, a map as an f (no renders).
"""

from ..space import MAX_GRID_POINTS
from .adaptive import DEFAULT_TOLERANCE, resolve_tolerance
from .dense import DEFAULT_CHUNK, grid_coords, network_maps, open_map, semantic_map
from .interpolation import MapFunction, interpolate

__all__ = [
    "DEFAULT_CHUNK", "DEFAULT_TOLERANCE", "MAX_GRID_POINTS", "MapFunction", "grid_coords", "interpolate", "network_maps",
    "open_map", "resolve_tolerance", "semantic_map",
]
