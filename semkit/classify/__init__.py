"""Classifying renders: networks with their preprocessing inside, loaded by name, run by the fastest engine.

* :mod:`.classifier`: :class:`Classifier`, images in [0, 1] -> probabilities;
* :mod:`.loaders`: :func:`load_classifier` (bundled EfficientNet-Lites, torchvision, timm, open_clip);
* :mod:`.clip`: open_clip models as zero-shot classifiers over ImageNet or one's own class names;
* :mod:`.engine`: ONNX Runtime on the CPU and the cache of exports;
* :mod:`.weights`: weight files from caches, downloads and mirrors, and untrained weights (``"random"``);
* :mod:`.labels`: ImageNet's class names and :func:`resolve_label`.
"""

from .classifier import IMAGENET_MEAN, IMAGENET_STD, Classifier
from .clip import OPEN_CLIP_PREFIX, ZeroShot
from .engine import ENGINES, EXPORTS, ExportCache
from .labels import imagenet_labels, resolve_label
from .loaders import BUNDLED, TIMM_PREFIX, load_classifier
from .weights import RANDOM

__all__ = [
    "BUNDLED", "Classifier", "ENGINES", "EXPORTS", "ExportCache", "IMAGENET_MEAN", "IMAGENET_STD", "OPEN_CLIP_PREFIX",
    "RANDOM", "TIMM_PREFIX", "ZeroShot", "imagenet_labels", "load_classifier", "resolve_label",
]
