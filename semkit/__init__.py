"""semkit: semantic robustness of image classifiers.

Render a 3-D object under semantic parameters (camera azimuth, elevation,
distance, light), classify the renders, and measure where and how robustly
a network keeps recognising the object (Hamdi & Ghanem, "Towards Analyzing
Semantic Robustness of Deep Neural Networks").

The subpackages follow the data flow, and each imports only those before it
(tests/test_architecture.py holds them to it):

    space, criterion      the parameters' box and what passes (the root)
    store                 persistence for everything below: match, compute, lock, write
    scene                 meshes, the gallery, ShapeNet, shapes by name
    render                camera, settings, backends, Renderer
    classify              Classifier, loaders, engines, weights, labels
    function              SemanticFunction(s), the ScoreFunction protocol
    maps                  dense and adaptive maps, maps as functions
    regions               region methods (the paper's), driver, SRVR
    trust                 guarantees, radii, robust accuracy, worst cases
    studies               shapes x networks as one spec, comparisons
    plot                  figures (ax= in, ax out; *_figure make whole figures)
    app                   explorer, reports, command line

``accessor`` (``ds.semkit``) sits on top of them all; ``deprecation`` keeps
old names working, with a warning.
"""

from . import accessor, plot, trust  # noqa: F401  (accessor registers ds.semkit)
from .classify import BUNDLED, Classifier, imagenet_labels, load_classifier, resolve_label
from .criterion import Criterion
from .function import Evaluation, SemanticFunction, SemanticFunctions
from .maps import MapFunction, grid_coords, interpolate, open_map, semantic_map
from .regions import check_regions, find_regions, srvr, volume_ratio
from .render import Renderer
from .scene import Mesh, MeshError, gallery, load_mesh, load_shape, load_shapes, shapenet
from .space import Parameter, Space
from .store import StoreError
from .studies import (StudySpec, average, compare_networks, compare_searches, comparison_table, findings, looks,
                      map_regions, maps_of, open_study, open_sweep, semantic_maps, study, sweep)
from .trust import decision_noise, find_failures, robust_accuracy, robustness_radius
from .version import VERSION as __version__  # noqa: F401

__all__ = [
    "BUNDLED", "Classifier", "Criterion", "Evaluation", "MapFunction", "Mesh", "MeshError", "Parameter", "Renderer",
    "SemanticFunction", "SemanticFunctions", "Space", "StoreError", "StudySpec", "average", "check_regions",
    "compare_networks", "compare_searches", "comparison_table", "decision_noise", "find_failures", "find_regions",
    "findings", "gallery", "grid_coords", "imagenet_labels", "interpolate", "load_classifier", "load_mesh", "load_shape",
    "load_shapes", "looks", "map_regions", "maps_of", "open_map", "open_study", "open_sweep", "plot", "resolve_label",
    "robust_accuracy", "robustness_radius", "semantic_map", "semantic_maps", "shapenet", "srvr", "study", "sweep", "trust",
    "volume_ratio",
]
