"""The semantic function f(u) = softmax(C(R(S, u)))[y] of one shape and one network.

A :class:`SemanticFunction` maps points u of a Space ([B, n]) to the
network's probability of the true class y for the renders of shape S at u.
Everything downstream (maps, regions, reports) only needs this callable,
its top-1 predictions and, for white-box methods, its gradient.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch

from .cache import DEFAULT_SIZE, QueryCache
from .classifier import Classifier, load_classifier, resolve_label
from .mesh import Mesh, load_mesh
from .renderer import Renderer
from .space import Space


class Evaluation(NamedTuple):
    """Scores and predictions for a batch of points."""

    score: np.ndarray  #: [B] probability of the true class
    top1: np.ndarray  #: [B] predicted class index
    topk: np.ndarray  #: [B, k] the k most probable classes, best first
    topk_prob: np.ndarray  #: [B, k] their probabilities


class SemanticFunction:
    """Score a network on renders of one shape over a semantic Space.

    ``f(points)`` returns the true-class probabilities [B] of the renders at
    ``points`` ([B, n] in the Space's order, or named arrays). Points are
    processed in chunks of ``batch_size`` so memory stays bounded, and with
    ``pipeline`` (default: when the network runs on a GPU) the next chunk
    renders in a background thread while the current one is classified;
    results are deterministic. ``f.gradient(points)`` differentiates through the
    renderer when it is differentiable, else by central differences with
    steps ``fd_step`` (in the Space's units; default 1 for parameters with
    units, 1% of the range for unitless ones such as ``light_intensity``).
    ``f.queries`` counts the points rendered and classified so far, gradient
    evaluations included.

    Every point's answer is kept in ``f.cache`` (a :class:`~semkit.cache.QueryCache`
    of ``cache_size`` points, least recently used forgotten; 0 turns it
    off), so a point asked for again (by a map, a region step, central
    differences) is neither rendered nor classified again: it is no query,
    and ``f.cache_hits`` counts it instead (as it counts a point repeated
    within one batch, computed once).

    ``mesh`` may be a path and ``classifier`` a network name; ``label`` an
    ImageNet index or class name (default: the mesh's own label). The
    default renderer is the CPU/GPU default at the classifier's input size.
    """

    def __init__(
        self,
        mesh: Mesh | str | os.PathLike,
        classifier: Classifier | str,
        label: int | str | None = None,
        renderer: Renderer | None = None,
        space: Space | None = None,
        *,
        batch_size: int = 32,
        fd_step: float | Sequence[float] | None = None,
        pipeline: bool | None = None,
        cache_size: int = DEFAULT_SIZE,
    ) -> None:
        self.mesh = mesh if isinstance(mesh, Mesh) else load_mesh(mesh)
        self.classifier = classifier if isinstance(classifier, Classifier) else load_classifier(classifier)
        if label is None:
            if self.mesh.label is None:
                raise ValueError(f"mesh {self.mesh.name!r} has no class label: pass label= (an ImageNet index or name)")
            label = self.mesh.label
        self.label = resolve_label(label, self.classifier.labels)
        self.renderer = renderer or Renderer(image_size=self.classifier.input_size)
        self.space = space or Space.paper()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        # Overlap pays where the two stages use different hardware (a GPU network, CPU rendering); on a
        # small CPU both stages want every core, and overlapping them measured slower (docs/benchmarks.md).
        self.pipeline = self.classifier.device.type != "cpu" if pipeline is None else bool(pipeline)
        if fd_step is None:
            fd_step = [1.0 if p.units else p.width / 100 for p in self.space.parameters]
        steps = np.broadcast_to(np.asarray(fd_step, dtype=float), (self.space.n,)).copy()
        if not (steps > 0).all():
            raise ValueError(f"fd_step must be positive, got {fd_step}")
        self.fd_step = steps
        if cache_size < 0:
            raise ValueError(f"cache_size must be 0 (no cache) or more, got {cache_size}")
        self.cache = QueryCache(cache_size) if cache_size else None
        self.queries = 0

    # ------------------------------------------------------------ description
    @property
    def cache_hits(self) -> int:
        """Points answered from the cache (not rendered, not counted in :attr:`queries`)."""
        return self.cache.hits if self.cache is not None else 0

    @property
    def label_name(self) -> str:
        return self.classifier.labels[self.label]

    @property
    def gradient_method(self) -> str:
        """How :meth:`gradient` differentiates: through the renderer, or by finite differences."""
        if self.renderer.differentiable:
            return f"autograd ({self.renderer.backend_name} renderer)"
        steps = ", ".join(f"{name}={h:g}" for name, h in zip(self.space.names, self.fd_step))
        return f"central differences ({steps})"

    def describe(self) -> dict[str, Any]:
        """What this function is, as plain values (dataset attrs)."""
        return {
            "label": self.label,
            "label_name": self.label_name,
            "network": self.classifier.name,
            "shape": self.mesh.name,
            "renderer": self.renderer.describe(),
            "space": self.space.to_dict(),
        }

    def __repr__(self) -> str:
        return (
            f"SemanticFunction(shape={self.mesh.name!r}, network={self.classifier.name!r}, "
            f"label={self.label} {self.label_name!r}, {self.space})"
        )

    # ------------------------------------------------------------- evaluation
    def __call__(self, points: Any) -> np.ndarray:
        return self.evaluate(points).score

    def evaluate(self, points: Any, k: int = 1) -> Evaluation:
        """Scores, top-1 and top-k predictions for a batch of points (cached ones from the cache)."""
        pts = self.space.points(points)
        if self.cache is None:
            return self._compute(pts, k)
        unique, inverse = _unique_rows(pts)
        self.cache.count_repeats(len(pts) - len(unique))
        found = self.cache.lookup(unique, k)
        if not found.hit.all():
            fresh = self._compute(unique[~found.hit], k)
            self.cache.store(unique[~found.hit], fresh.score, fresh.topk, fresh.topk_prob)
            miss = ~found.hit
            found.score[miss], found.topk[miss], found.topk_prob[miss] = fresh.score, fresh.topk, fresh.topk_prob
        score, topk, topk_prob = found.score[inverse], found.topk[inverse], found.topk_prob[inverse]
        return Evaluation(score, topk[:, 0].copy(), topk, topk_prob)

    def _compute(self, pts: np.ndarray, k: int) -> Evaluation:
        """Render and classify ``pts`` (every one a query)."""
        scores, top_idx, top_prob = [], [], []
        with torch.inference_mode():
            for probs in self._stream(pts):
                p, idx = probs.topk(k, dim=1)
                scores.append(probs[:, self.label].double().cpu().numpy())
                top_idx.append(idx.cpu().numpy())
                top_prob.append(p.double().cpu().numpy())
        if not scores:
            empty = np.empty((0, k))
            return Evaluation(np.empty(0), np.empty(0, int), empty.astype(int), empty)
        topk = np.concatenate(top_idx)
        return Evaluation(np.concatenate(scores), topk[:, 0].copy(), topk, np.concatenate(top_prob))

    def _stream(self, pts: np.ndarray):
        """Probabilities chunk by chunk; with ``pipeline``, the next chunk renders while this one is classified.

        The renderer (embree) releases the GIL, so the two stages overlap.
        """
        chunks = list(_chunks(pts, self.batch_size))
        if not self.pipeline or self.renderer.differentiable or len(chunks) < 2:
            for chunk in chunks:
                yield self._probabilities(chunk)
            return
        pending = _RENDER_THREAD.submit(self.renderer.render, self.mesh, chunks[0], self.space)
        for i in range(len(chunks)):
            images = pending.result()
            if i + 1 < len(chunks):
                pending = _RENDER_THREAD.submit(self.renderer.render, self.mesh, chunks[i + 1], self.space)
            yield self._classify(images)

    def _probabilities(self, points: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self._classify(self.renderer.render(self.mesh, points, self.space))

    def _classify(self, images: torch.Tensor) -> torch.Tensor:
        probs = self.classifier(images)
        if not torch.isfinite(probs).all():
            raise FloatingPointError(f"{self.classifier.name} returned NaN or infinite probabilities")
        self.queries += len(images)
        return probs

    # --------------------------------------------------------------- gradient
    def gradient(self, points: Any) -> np.ndarray:
        """d score / d point [B, n], in score per Space unit (see :attr:`gradient_method`)."""
        pts = self.space.points(points)
        if self.renderer.differentiable:
            return self._autograd(pts)
        return self._central_differences(pts)

    def _autograd(self, pts: np.ndarray) -> np.ndarray:
        grads = []
        for chunk in _chunks(pts, self.batch_size):
            u = torch.tensor(chunk, dtype=torch.float64, requires_grad=True)
            score = self._probabilities(u)[:, self.label]
            (g,) = torch.autograd.grad(score.sum(), u)
            grads.append(g.numpy())
        return np.concatenate(grads) if grads else np.empty((0, self.space.n))

    def _central_differences(self, pts: np.ndarray) -> np.ndarray:
        """Central differences, one-sided where a step would leave a bounded parameter."""
        B, n = pts.shape
        lower, upper, periodic = self.space.lower, self.space.upper, self.space.periodic
        plus = np.repeat(pts[None], n, axis=0)  # [n, B, n]: column i stepped in block i
        minus = plus.copy()
        for i in range(n):
            plus[i, :, i] += self.fd_step[i]
            minus[i, :, i] -= self.fd_step[i]
            if not periodic[i]:
                plus[i, :, i] = np.minimum(plus[i, :, i], upper[i])
                minus[i, :, i] = np.maximum(minus[i, :, i], lower[i])
        values = self(np.concatenate([plus.reshape(-1, n), minus.reshape(-1, n)]))
        f_plus, f_minus = values[: n * B].reshape(n, B), values[n * B :].reshape(n, B)
        span = np.stack([plus[i, :, i] - minus[i, :, i] for i in range(n)])
        return ((f_plus - f_minus) / span).T


#: One background thread renders the next chunk while the caller classifies (see SemanticFunction._stream).
_RENDER_THREAD = ThreadPoolExecutor(1, thread_name_prefix="semkit-render-ahead")


def _unique_rows(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``points`` in order of first appearance, and each row's index among them."""
    if len(points) == 0:
        return points, np.empty(0, int)
    _, first, inverse = np.unique(points, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return points[first[order]], rank[inverse.reshape(-1)]


def _chunks(points: np.ndarray, size: int):
    for start in range(0, len(points), size):
        yield points[start : start + size]
