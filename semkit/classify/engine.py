"""Inference engines: a network exported to ONNX and run on the CPU by ONNX Runtime or OpenVINO, and the cache of exports.

On a CPU, float32 inference runs in ONNX Runtime (the network exported once
with ``torch.onnx`` and kept in ``$SEMKIT_CACHE``): it fuses convolution,
batch norm and activation, and measured 2.6x to 3.5x faster than PyTorch
for EfficientNet-Lite0 on the same cores, with probabilities equal to about
1e-6 (docs/benchmarks.md). bfloat16 runs in OpenVINO where it is installed
and the CPU computes bfloat16 (AVX-512 BF16 or AMX): ONNX Runtime's CPU
kernels are float32 only, and PyTorch's autocast ran slower than float32
here (docs/precision.md). Anything that needs gradients, or runs on a GPU,
stays in PyTorch.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import os
import sys
import warnings
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..store import write_bytes

#: How a Classifier runs its network: "auto" (on a CPU: ONNX Runtime for float32, OpenVINO for bfloat16, where
#: installed), or one of these.
ENGINES = ("auto", "torch", "onnxruntime", "openvino")
#: OpenVINO's name of each precision it computes in (its CPU plugin's inference precision hint).
OPENVINO_PRECISIONS = {"float32": "f32", "bfloat16": "bf16"}


class Normalized(nn.Module):
    """Normalization and network in one module, so that ONNX Runtime runs both (torch ops between
    ONNX Runtime calls leave torch's OpenMP threads spinning on the cores ONNX Runtime needs)."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.detach().cpu().clone())
        self.register_buffer("std", std.detach().cpu().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


class ExportCache:
    """ONNX exports kept in memory by key, the most recently used (each is a few to tens of MB).

    One is shared by the process (`EXPORTS`), so a network is exported
    once per process; `clear` frees them.

    Parameters
    ----------
    size : int, default 8
        How many exports to keep, at least 0.

    Raises
    ------
    ValueError
        A negative size.
    """

    def __init__(self, size: int = 8) -> None:
        if size < 0:
            raise ValueError(f"an export cache holds at least 0 exports, got {size}")
        self.size = size
        self._exports: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        """The export kept under ``key`` (now the most recently used), or None.

        Parameters
        ----------
        key : str
            The export's key (the network's code, modules, weights and the exporter's versions).
        """
        data = self._exports.get(key)
        if data is not None:
            self._exports.move_to_end(key)
        return data

    def put(self, key: str, content: bytes) -> None:
        """Keep an export, dropping the least recently used beyond the cache's size.

        Parameters
        ----------
        key : str
            The export's key.
        content : bytes
            The ONNX model.
        """
        self._exports[key] = content
        self._exports.move_to_end(key)
        while len(self._exports) > self.size:
            self._exports.popitem(last=False)

    def clear(self) -> None:
        """Drop every export kept in memory (those on disk stay)."""
        self._exports.clear()

    def __len__(self) -> int:
        return len(self._exports)


#: The process's exports in memory (on disk they are kept in `cache_dir`).
EXPORTS = ExportCache()


class OnnxNetwork:
    """A network exported to ONNX and run by ONNX Runtime on the CPU, with torch tensors in and out.

    Exports are kept in an [`ExportCache`][semkit.classify.engine.ExportCache] and in ``cache_dir()``, keyed
    by the network's code, modules, weights and the exporter's versions: a
    network is exported once (about 5 s), not once per process (notebook
    kernels, Dask workers). A kept export that no longer agrees with the
    network in PyTorch (a change the key cannot see) is exported again.
    """

    engine = "onnxruntime"

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
    def of(cls, model: nn.Module, size: tuple[int, int], agrees: Callable[["OnnxNetwork"], bool],
           exports: ExportCache = EXPORTS) -> "OnnxNetwork":
        """The model at ``size`` in ONNX Runtime, as kept in memory or on disk where it ``agrees``, else exported.

        A fresh export that does not agree raises ValueError, and is not kept.
        """
        import onnxruntime  # noqa: F401  (fail early, before exporting, where it is missing)

        return exported(model, size, cls, agrees, exports)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().to(torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: images})[0])


class OpenVinoNetwork:
    """A network exported to ONNX and run by OpenVINO on the CPU in a precision, with torch tensors in and out.

    The export is the one ONNX Runtime runs (the same cache and key). It is
    checked in float32 against PyTorch before it runs in a lower precision, so
    a faulty export is caught where the comparison is exact to rounding.
    """

    engine = "openvino"

    def __init__(self, model_bytes: bytes, precision: str = "float32") -> None:
        import openvino

        core = openvino.Core()
        config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[precision],  # never the CPU's default
                  "INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
                  "ENABLE_CPU_PINNING": False}  # the rendering threads and other workers share the cores
        self.model_bytes, self.precision = model_bytes, precision
        self.compiled = core.compile_model(core.read_model(model_bytes), "CPU", config)

    @classmethod
    def of(cls, model: nn.Module, size: tuple[int, int], precision: str, agrees: Callable[["OpenVinoNetwork"], bool],
           exports: ExportCache = EXPORTS) -> "OpenVinoNetwork":
        """The model at ``size`` in OpenVINO in ``precision``, its export checked in float32 by ``agrees``."""
        checked = exported(model, size, cls, agrees, exports)
        return checked if precision == "float32" else cls(checked.model_bytes, precision)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().to(torch.float32).contiguous().numpy()
        return torch.from_numpy(self.compiled(images)[0].copy())


@lru_cache(maxsize=1)
def openvino_unavailable_reason() -> str | None:
    """Why bfloat16 cannot run in OpenVINO here (a sentence with the fix), or None when it can."""
    try:
        import openvino
    except ImportError:
        return "OpenVINO is not installed (pip install 'semkit[openvino]')"
    if "BF16" not in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        return "this CPU does not compute bfloat16 (no AVX-512 BF16 or AMX)"
    return None


def exported(model: nn.Module, size: tuple[int, int], make: Callable[[bytes], Any], agrees: Callable[[Any], bool],
             exports: ExportCache = EXPORTS) -> Any:
    """``make`` (a runtime) of the model's ONNX export at ``size``, as kept in memory or on disk where it
    ``agrees``, else exported again; a fresh export that does not agree raises ValueError, and is not kept."""
    key, persistent = export_key(model, size)
    folder = cache_dir() if persistent else None
    path = folder / "onnx" / f"{key}.onnx" if folder is not None else None
    kept = exports.get(key)
    if kept is None and path is not None and path.is_file():
        kept = path.read_bytes()
    if kept is not None:
        with contextlib.suppress(Exception):  # an unreadable or stale export is exported again and replaced
            network = make(kept)
            if agrees(network):
                exports.put(key, kept)
                return network
    model_bytes = export_onnx(model, size)
    network = make(model_bytes)
    if not agrees(network):
        raise ValueError("its ONNX export computes other outputs than the network in PyTorch")
    exports.put(key, model_bytes)
    if path is not None:
        write_atomically(path, model_bytes)
    return network


def cache_dir() -> Path | None:
    """Where semkit keeps what is slow to remake (ONNX exports): ``$SEMKIT_CACHE``, else
    ``$XDG_CACHE_HOME/semkit`` or ``~/.cache/semkit``; None when ``SEMKIT_CACHE`` is set empty."""
    if "SEMKIT_CACHE" in os.environ:
        return Path(os.environ["SEMKIT_CACHE"]).expanduser() if os.environ["SEMKIT_CACHE"] else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semkit"


def export_key(model: nn.Module, size: tuple[int, int]) -> tuple[str, bool]:
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


def write_atomically(path: Path, data: bytes) -> None:
    """Write a cache file whole or not at all; a cache that cannot be written only costs time."""
    try:
        write_bytes(path, data)
    except OSError as e:
        warnings.warn(f"cannot keep the ONNX export in {path.parent} ({e}); set SEMKIT_CACHE to a writable folder",
                      stacklevel=2)


def export_onnx(model: nn.Module, size: tuple[int, int]) -> bytes:
    """The model as ONNX bytes for images [batch, 3, *size], batch dynamic (the torch.export based exporter)."""
    example = torch.zeros(2, 3, *size)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), dynamo=True, verbose=False, dynamic_shapes=({0: torch.export.Dim("batch")},)
        )
    return program.model_proto.SerializeToString()
