"""Classifying renders: networks with their preprocessing inside, loaded by name, run by the fastest engine.

* `.classifier`: [`Classifier`][semkit.Classifier], images in [0, 1] -> probabilities;
* `.loaders`: [`load_classifier`][semkit.load_classifier] (bundled EfficientNet-Lites, torchvision, timm, open_clip);
* `.clip`: open_clip models as zero-shot classifiers over ImageNet or one's own class names;
* `.engine`: ONNX Runtime on the CPU and the cache of exports;
* `.weights`: weight files from caches, downloads and mirrors, and untrained weights (``"random"``);
* `.labels`: ImageNet's class names and [`resolve_label`][semkit.classify.resolve_label].
"""

from .classifier import IMAGENET_MEAN, IMAGENET_STD, PRECISIONS, Classifier
from .clip import OPEN_CLIP_PREFIX, ZeroShot
from .engine import ENGINES, EXPORTS, ExportCache
from .labels import imagenet_labels, resolve_label
from .loaders import BUNDLED, TIMM_PREFIX, load_classifier
from .weights import RANDOM

__all__ = [
    "BUNDLED", "Classifier", "ENGINES", "EXPORTS", "ExportCache", "IMAGENET_MEAN", "IMAGENET_STD", "OPEN_CLIP_PREFIX",
    "PRECISIONS", "RANDOM", "TIMM_PREFIX", "ZeroShot", "imagenet_labels", "load_classifier", "resolve_label",
]
