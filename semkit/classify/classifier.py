"""Image classifiers with their preprocessing inside.

A [`Classifier`][semkit.Classifier] takes rendered images in [0, 1] ([B, 3, H, W]) and
returns ImageNet class probabilities; resizing to the network's input size
and the input normalization its weights were trained with happen inside,
so callers never have to know them.

Networks by name come from `.loaders`; CPU inference runs in ONNX
Runtime where it agrees with PyTorch (`.engine`). A lower precision
(``precision="bfloat16"``) runs on a CPU in OpenVINO where it is installed
and the CPU computes bfloat16, else in PyTorch under autocast (ONNX
Runtime's CPU kernels are float32; docs/precision.md measures speed and
agreement).
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Callable, Sequence

import torch
from torch import nn

from ..validation import check_count
from .engine import ENGINES, Normalized, OnnxNetwork, OpenVinoNetwork, openvino_unavailable_reason
from .labels import check_labels, imagenet_labels, resolve_label

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The precisions a network runs in; float32 by default (a lower one is another network as far as results go).
PRECISIONS = ("float32", "bfloat16", "float16")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Classifier(nn.Module):
    """A network plus its preprocessing: images in [0, 1] -> class probabilities.

    Calling the classifier returns probabilities [B, classes];
    `logits` returns the raw outputs. The network runs in channels-last
    memory format, on a CPU in micro-batches of ``micro_batch`` images
    (default 4: the time per image grows with the batch once activations leave
    the caches; benchmarks/run.py measures it), on a GPU on the whole batch at
    once. ``close()`` drops the ONNX Runtime sessions.

    Parameters
    ----------
    module : torch.nn.Module
        The network's torch module, mapping [B, 3, H, W] to [B, classes]; it is put in eval mode and its weights frozen.
    input_size : int
        The side of the square images the network expects; other sizes are resized (bilinear, antialiased).
    name : str, default "classifier"
        Names the network in results.
    mean, std : sequence of float, default ImageNet's
        Per-channel normalization of the resized images.
    preprocess : callable, optional
        Replaces resizing and normalization: takes images [B, 3, H, W] in [0, 1], returns the network's input.
    labels : sequence of str, optional
        The class names of the network's outputs, in order; None: ImageNet's 1000.
    precision : {"float32", "bfloat16", "float16"}, default "float32"
        The precision the network computes in (the weights stay float32). A lower one is for hardware built for
        it (a GPU's tensor cores, a CPU's AVX-512 BF16 or AMX: docs/precision.md) and changes some answers, so
        results record it and stores made in one are never handed back for another (nor, for bfloat16 on a CPU,
        for another runtime). float16 runs on a GPU only (a CPU computes it dozens of times slower than float32).
    engine : {"auto", "torch", "onnxruntime", "openvino"}, default "auto"
        Where CPU inference runs. "auto": float32 in ONNX Runtime, bfloat16 in OpenVINO where it is installed and
        the CPU computes bfloat16 (else in PyTorch under autocast), each from an ONNX export of ``module`` made
        at the first call at each image size and checked in float32 against PyTorch on that batch (weights
        changed after that call are not seen: make a new Classifier); inputs that require grad, and GPU inputs,
        run in PyTorch (autocast for a lower precision). "torch" always uses PyTorch; "onnxruntime" (float32
        only) and "openvino" (float32 or bfloat16) fail loudly where "auto" falls back to PyTorch for float32
        (for that image size only, with a warning: `engines` says which engine runs each size).
    weights : str, optional
        What weights the network has, as recorded in results; ``"random"`` marks an untrained network.

    Raises
    ------
    ValueError
        An unknown engine or precision, "onnxruntime" with a precision other than float32, "openvino" with
        float16, or labels that are not class names.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        input_size: int,
        name: str = "classifier",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        labels: Sequence[str] | None = None,
        precision: str = "float32",
        engine: str = "auto",
        weights: str | None = None,
    ) -> None:
        super().__init__()
        # The exported network of each image (height, width) on the CPU; None: PyTorch runs that size.
        self._exported: dict[tuple[int, int], OnnxNetwork | OpenVinoNetwork | None] = {}
        self._precision = "float32"
        self.engine = engine
        self.precision = precision
        self._fingerprint: str | None = None
        self.module = module.eval().to(memory_format=torch.channels_last)
        self.micro_batch = 4
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.input_size = check_count(input_size, "input_size", what="pixels, the side of its square input")
        self.name = name
        self.labels = check_labels(labels) if labels is not None else imagenet_labels()
        self.weights = None if weights is None else str(weights)
        self._preprocess = preprocess
        self.register_buffer("mean", _channels(mean, "mean"))
        self.register_buffer("std", _channels(std, "std", positive=True))

    @property
    def micro_batch(self) -> int:
        """Images per network call on a CPU (at least 1)."""
        return self._micro_batch

    @micro_batch.setter
    def micro_batch(self, value: int) -> None:
        self._micro_batch = check_count(value, "micro_batch")

    @property
    def engine(self) -> str:
        """Where CPU inference runs: "auto", "torch", "onnxruntime" or "openvino" (see the class's parameters)."""
        return self._engine

    @engine.setter
    def engine(self, value: str) -> None:
        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}; choose one of {ENGINES}")
        self._engine = value
        self.precision = self._precision  # checked against the engine; the engine of each size is chosen again

    @property
    def precision(self) -> str:
        """The precision the network computes in: "float32", "bfloat16" or "float16" (part of `fingerprint`)."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        value = check_precision(value)
        if value != "float32" and self._engine == "onnxruntime":
            raise ValueError(f"engine='onnxruntime' runs float32 only (its CPU kernels have no {value}); use "
                             f"engine='auto' or 'torch' for precision={value!r}")
        if value == "float16" and self._engine == "openvino":
            raise ValueError("engine='openvino' runs float32 or bfloat16 on a CPU; float16 runs on a GPU only, in "
                             "PyTorch: use engine='auto' or 'torch' for precision='float16'")
        self._precision = value
        self._exported.clear()  # the engine of each size is chosen again

    @property
    def untrained(self) -> bool:
        """Whether the network has random weights (``weights="random"``)."""
        return self.weights == "random"

    def resolve_label(self, label: int | str) -> int:
        """The index of a class of this network.

        Parameters
        ----------
        label : int or str
            A class index, or one of its `labels` (case-insensitive, underscores as spaces).

        Raises
        ------
        ValueError
            An unknown name (naming the closest) or an index out of range.
        """
        return resolve_label(label, self.labels)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def fingerprint(self) -> str:
        """A digest of what determines this classifier's outputs: its architecture, weights, preprocessing and
        precision.

        Two classifiers with the same name but other weights or another
        precision differ here (stores of one are never returned for the other).
        The weights are read once: weights changed after the first call are not
        seen (make a new Classifier).
        """
        if self.precision != "float32":  # float32's digest is the one semkit always had, so its stores still match
            # bfloat16 in OpenVINO rounds otherwise than PyTorch's autocast: another network as far as results go
            runtime = ":openvino" if self.device.type == "cpu" and self._cpu_runtime() == "openvino" else ""
            return hashlib.sha256(f"{self._weights_digest()}:{self.precision}{runtime}".encode()).hexdigest()[:16]
        return self._weights_digest()

    def _weights_digest(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(f"{type(self.module).__qualname__}:{self.input_size}:{len(self.labels)}".encode())
            if self._preprocess is not None:
                digest.update(f"{getattr(self._preprocess, '__module__', '')}.{getattr(self._preprocess, '__qualname__', '')}".encode())
            for name, tensor in self.state_dict().items():
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Resize to the input size and normalize as the weights expect.

        Parameters
        ----------
        images : torch.Tensor [B, 3, H, W]
            Images in [0, 1].
        """
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
        """The network's raw outputs [B, classes] for images, preprocessed.

        Parameters
        ----------
        images : torch.Tensor [B, 3, H, W]
            Images in [0, 1], any size.

        Raises
        ------
        ValueError
            Images not [B, 3, H, W], or network outputs not one row of classes per image.
        """
        x = self._resize(images)
        if not len(x):
            return self._forward(x)
        # Micro-batches keep a CPU's activations in its caches; a GPU wants the whole batch at once.
        size = self.micro_batch if x.device.type == "cpu" else len(x)
        return torch.cat([self._forward(chunk) for chunk in x.split(size)])

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of resized images: normalized, then through the network (checked: one row of classes per image)."""
        if x.device.type == "cpu" and not x.requires_grad and self._cpu_runtime() != "torch":
            network = self._exported_network(x)
            if network is not None:
                return self._checked(network(x), len(x))
        if self.precision != "float32":
            return self._checked(self._lower_forward(x), len(x))
        return self._checked(self._torch_forward(x), len(x))

    def _cpu_runtime(self) -> str:
        """What runs CPU inference (where it can): "onnxruntime", "openvino" or "torch"."""
        if self.engine != "auto":
            return self.engine
        if self.precision == "float32":
            return "onnxruntime"
        return "openvino" if self.precision == "bfloat16" and openvino_unavailable_reason() is None else "torch"

    def _lower_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits computed under autocast in the classifier's precision, returned as float32."""
        if self.precision == "float16" and x.device.type == "cpu":
            raise ValueError(f"{self.name} has precision='float16', which runs on a GPU only: a CPU computes float16 "
                             "dozens of times slower than float32 (docs/precision.md). On a CPU use "
                             "precision='bfloat16'; or move the classifier to a GPU (classifier.to('cuda'))")
        if x.device.type == "cpu":
            self._exported.setdefault((int(x.shape[-2]), int(x.shape[-1])), None)  # `engines`: PyTorch runs this size
        with torch.autocast(x.device.type, dtype=_DTYPES[self.precision]):
            return self._torch_forward(x).float()

    def _checked(self, out: torch.Tensor, batch: int) -> torch.Tensor:
        expected = (batch, len(self.labels))
        if tuple(out.shape) != expected:
            raise ValueError(f"{self.name} returned outputs of shape {tuple(out.shape)} for a batch of {batch} images; "
                             f"expected {list(expected)} (one row of {len(self.labels)} class scores per image). Check "
                             "that the module maps [B, 3, H, W] to [B, classes] and that labels= lists its classes")
        return out

    def _torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(self._normalize(x).contiguous(memory_format=torch.channels_last))
        if not isinstance(out, torch.Tensor):  # e.g. torchvision InceptionOutputs in train mode
            out = out[0]
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities [B, classes] for images: the softmax of `logits`.

        Parameters
        ----------
        images : torch.Tensor [B, 3, H, W]
            Images in [0, 1], any size.
        """
        return self.logits(images).softmax(dim=-1)

    def _exported_network(self, x: torch.Tensor) -> "OnnxNetwork | OpenVinoNetwork | None":
        """The network exported for images of x's size, in ONNX Runtime or OpenVINO; None where "auto" falls back
        to PyTorch.

        Made at the first CPU inference at that size, and checked in float32 on
        that first batch against PyTorch: an export that computes something else
        (say, a data-dependent branch frozen at export) is not used.
        """
        size = (int(x.shape[-2]), int(x.shape[-1]))
        if size not in self._exported:
            runtime = self._cpu_runtime()
            try:
                network = self.module if self._preprocess is not None else Normalized(self.module, self.mean, self.std)
                expected = self._torch_forward(x)
                scale = float(expected.nan_to_num(0.0, 0.0, 0.0).abs().max()) if expected.numel() else 1.0

                def agrees(exported: OnnxNetwork | OpenVinoNetwork) -> bool:
                    return torch.allclose(exported(x), expected, rtol=1e-3, atol=1e-4 * max(scale, 1.0), equal_nan=True)

                if runtime == "openvino":
                    self._exported[size] = OpenVinoNetwork.of(network, size, self.precision, agrees)
                else:
                    self._exported[size] = OnnxNetwork.of(network, size, agrees)
            except Exception as e:
                if self.engine != "auto" or self.precision != "float32":  # no silent change of the numerics
                    title = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}[runtime]
                    raise RuntimeError(f"{self.name} cannot run in {title} in {self.precision}: {e} (engine='torch' "
                                       "runs it in PyTorch)") from e
                if not isinstance(e, ImportError):
                    warnings.warn(f"{self.name} runs in PyTorch, not ONNX Runtime, at {size[0]}x{size[1]}: {e}", stacklevel=4)
                self._exported[size] = None
        return self._exported[size]

    def engines(self) -> dict[tuple[int, int], str]:
        """The engine that runs CPU inference at each image size (height, width) seen so far."""
        return {size: "torch" if network is None else network.engine for size, network in self._exported.items()}

    def close(self) -> None:
        """Drop the ONNX Runtime and OpenVINO sessions (remade at the next call); the exports stay cached."""
        self._exported.clear()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_exported"] = {}  # runtime sessions do not pickle; they are remade where they are used
        return state

    def extra_repr(self) -> str:
        weights = f", weights={self.weights!r}" if self.weights is not None else ""
        precision = f", precision={self.precision!r}" if self.precision != "float32" else ""
        return (f"name={self.name!r}, input_size={self.input_size}, classes={len(self.labels)}, engine={self.engine!r}"
                f"{precision}{weights}")


def check_precision(value: str) -> str:
    """``value`` if it is one of `PRECISIONS`, else a ValueError naming the three."""
    if not isinstance(value, str) or value not in PRECISIONS:
        raise ValueError(f"unknown precision {value!r}: choose one of {', '.join(map(repr, PRECISIONS))} "
                         "(float32 unless a lower one is asked for)")
    return value


def _channels(value: Sequence[float] | torch.Tensor, name: str, positive: bool = False) -> torch.Tensor:
    """``mean`` or ``std`` as a [1, 3, 1, 1] buffer: 3 finite numbers (one per RGB channel) or 1 for all three."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be 3 numbers, one per RGB channel (or 1 for all three), got the text {value!r}")
    try:
        numbers = torch.as_tensor(value, dtype=torch.float32).detach().reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be 3 numbers, one per RGB channel (or 1 for all three), got {value!r}") from None
    if numbers.numel() not in (1, 3):
        raise ValueError(f"{name} must be 3 numbers, one per RGB channel (or 1 for all three), got "
                         f"{numbers.numel()} numbers: {value!r}")
    if not torch.isfinite(numbers).all() or (positive and not (numbers > 0).all()):
        kind = "positive finite numbers (images are divided by it)" if positive else "finite numbers"
        raise ValueError(f"{name} must hold {kind}, got {value!r}")
    return numbers.expand(3).reshape(1, 3, 1, 1).clone()
