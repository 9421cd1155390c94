"""Classifying renders: networks with their preprocessing inside, loaded by name, run by the fastest engine.

* :mod:`.classifier`: :class:`Classifier`, images in [0, 1] -> probabilities;
* :mod:`.loaders`: :func:`load_classifier` (bundled EfficientNet-Lites, torchvision, timm);
* :mod:`.engine`: ONNX Runtime on the CPU and the cache of exports;
* :mod:`.weights`: weight files from caches, downloads and mirrors;
* :mod:`.labels`: ImageNet's class names and :func:`resolve_label`.
"""

from .classifier import IMAGENET_MEAN, IMAGENET_STD, Classifier
from .engine import ENGINES, EXPORTS, ExportCache
from .labels import imagenet_labels, resolve_label
from .loaders import BUNDLED, TIMM_PREFIX, load_classifier

__all__ = [
    "BUNDLED", "Classifier", "ENGINES", "EXPORTS", "ExportCache", "IMAGENET_MEAN", "IMAGENET_STD", "TIMM_PREFIX",
    "imagenet_labels", "load_classifier", "resolve_label",
]
