"""Network semantic maps: f over a grid of a Space, dense or adaptive, and maps read back as functions.

* `.dense`: [`semantic_map`][semkit.semantic_map] (one f), `network_maps` (several networks, each view rendered once);
* `.adaptive`: adaptive maps, refined where the answer changes;
* `.interpolation`: [`MapFunction`][semkit.maps.MapFunction], a map as an f (no renders).
"""

from .adaptive import DEFAULT_MAX_ERROR, resolve_max_error
from .dense import DEFAULT_CHUNK, network_maps, semantic_map
from .interpolation import MapFunction, interpolate

__all__ = ["DEFAULT_CHUNK", "DEFAULT_MAX_ERROR", "MapFunction", "interpolate", "semantic_map"]
