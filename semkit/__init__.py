"""semkit: semantic robustness of image classifiers.

Render a 3-D object under semantic parameters (camera azimuth, elevation,
distance, light), classify the renders, and measure where and how robustly
a network keeps recognising the object (Hamdi & Ghanem, "Towards Analyzing
Semantic Robustness of Deep Neural Networks").

The subpackages follow the data flow, and each imports only those before it
(tests/test_architecture.py holds them to it):

    registry, scores      plug-ins by name; what a score function owes (the root)
    space, criterion      the parameters' box and what passes
    store                 persistence for everything below: match, compute, lock, write
    scene                 meshes, the gallery, ShapeNet, shapes by name
    render                camera, settings, backends, Renderer
    classify              Classifier, loaders, engines, weights, labels
    function              SemanticFunction(s), the ScoreFunction protocol
    maps                  dense and adaptive maps, maps as functions
    regions               region algorithms (the paper's), driver, SRVR
    trust                 guarantees, radii, robust accuracy, worst cases, smoothing, sensitivity
    studies               shapes x networks as one spec, comparisons
    plot                  figures (ax= in, ax out; *_figure make whole figures)
    app                   explorer, reports, command line

``accessor`` (``ds.semkit``) sits on top of them all. The top level holds
the data flow's verbs and nouns; everything else lives in its subpackage.
"""

from . import accessor, plot  # noqa: F401  (accessor registers ds.semkit)
from .classify import BUNDLED, Classifier, load_classifier
from .criterion import Criterion
from .function import SemanticFunction, SemanticFunctions
from .maps import interpolate, semantic_map
from .regions import check_regions, find_regions, srvr
from .render import Renderer
from .scene import Mesh, gallery, load_shape, shapenet
from .space import Space
from .store import open_result as open  # noqa: A001  (semkit.open: any stored result)
from .studies import Maps, Regions, StudySpec, compare_networks, study
from .trust import (Smoothed, certified_accuracy, decision_noise, find_failures, robust_accuracy, robustness_radius,
                    sensitivity)
from .version import VERSION as __version__  # noqa: F401

__all__ = [
    "BUNDLED", "Classifier", "Criterion", "Maps", "Mesh", "Regions", "Renderer", "SemanticFunction", "SemanticFunctions",
    "Space", "StudySpec", "check_regions", "compare_networks", "decision_noise", "find_failures", "find_regions",
    "gallery", "interpolate", "load_classifier", "load_shape", "open", "plot", "robust_accuracy", "robustness_radius",
    "semantic_map", "shapenet", "srvr", "study", "Smoothed", "certified_accuracy", "sensitivity",
]
