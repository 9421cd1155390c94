"""Inference engines: a network exported to ONNX and run by ONNX Runtime on the CPU, and the cache of exports.

On a CPU, inference runs in ONNX Runtime (the network exported once with
``torch.onnx`` and kept in ``$SEMKIT_CACHE``): it fuses convolution, batch
norm and activation, and measured 2.6x to 3.5x faster than PyTorch for
EfficientNet-Lite0 on the same cores, with probabilities equal to about 1e-6
(docs/benchmarks.md). Anything that needs gradients, or runs on a GPU, stays
in PyTorch.
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
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..store import write_bytes

#: How a Classifier runs its network: "auto" (ONNX Runtime for CPU inference when it is installed), or one of these.
ENGINES = ("auto", "torch", "onnxruntime")


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

        key, persistent = export_key(model, size)
        folder = cache_dir() if persistent else None
        path = folder / "onnx" / f"{key}.onnx" if folder is not None else None
        kept = exports.get(key)
        if kept is None and path is not None and path.is_file():
            kept = path.read_bytes()
        if kept is not None:
            with contextlib.suppress(Exception):  # an unreadable or stale export is exported again and replaced
                network = cls(kept)
                if agrees(network):
                    exports.put(key, kept)
                    return network
        model_bytes = export_onnx(model, size)
        network = cls(model_bytes)
        if not agrees(network):
            raise ValueError("its ONNX export computes other outputs than the network in PyTorch")
        exports.put(key, model_bytes)
        if path is not None:
            write_atomically(path, model_bytes)
        return network

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().to(torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: images})[0])


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
