"""semkit: semantic robustness of image classifiers.

Render a 3-D object under semantic parameters (camera azimuth, elevation,
distance, light), classify the renders, and measure where and how robustly
a network keeps recognising the object (Hamdi & Ghanem, "Towards Analyzing
Semantic Robustness of Deep Neural Networks").
"""

from . import accessor, gallery, plot, shapenet, trust  # accessor: registers ds.semkit
from ._store import StoreError
from .classifier import BUNDLED, Classifier, imagenet_labels, load_classifier, resolve_label
from .maps import MapFunction, grid_coords, interpolate, open_map, semantic_map, semantic_maps
from .mesh import Mesh, MeshError, load_mesh
from .regions import check_regions, find_regions, srvr, volume_ratio
from .renderer import Renderer
from .semantic import Evaluation, SemanticFunction, SemanticFunctions
from .space import Parameter, Space
from .study import (average, compare_networks, compare_searches, comparison_table, findings, load_shape, load_shapes, looks,
                    map_regions, maps_of, open_study, study)
from .criterion import Criterion
from .trust import decision_noise, find_failures, robust_accuracy, robustness_radius
from .sweep import open_sweep, sweep

__version__ = "0.1.0"

__all__ = [
    "BUNDLED",
    "Classifier",
    "Criterion",
    "Evaluation",
    "MapFunction",
    "Mesh",
    "MeshError",
    "Parameter",
    "Renderer",
    "SemanticFunction",
    "SemanticFunctions",
    "Space",
    "StoreError",
    "average",
    "compare_networks",
    "compare_searches",
    "comparison_table",
    "load_shape",
    "load_shapes",
    "looks",
    "map_regions",
    "maps_of",
    "open_study",
    "study",
    "check_regions",
    "decision_noise",
    "find_failures",
    "find_regions",
    "findings",
    "gallery",
    "grid_coords",
    "imagenet_labels",
    "interpolate",
    "load_classifier",
    "load_mesh",
    "open_map",
    "open_sweep",
    "plot",
    "resolve_label",
    "robust_accuracy",
    "robustness_radius",
    "semantic_map",
    "semantic_maps",
    "shapenet",
    "srvr",
    "sweep",
    "trust",
    "volume_ratio",
]
