"""The semantic function f(u) = softmax(C(R(S, u)))[y] of one shape and one network, and the protocol of every f.

A :class:`SemanticFunction` maps points u of a Space ([B, n]) to the
network's probability of the true class y for the renders of shape S at u.
Everything downstream (maps, regions, studies) takes any f that follows
:class:`ScoreFunction`: its scores, top-1 predictions, gradient, a
description and a query count. :func:`as_function` completes a plain
callable (an analytic function, an interpolated map) to that protocol, so
no other module has to ask an f what it can do.
"""

from __future__ import annotations

import hashlib

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, NamedTuple, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .cache import DEFAULT_SIZE, QueryCache
from .classifier import Classifier, load_classifier, resolve_label
from .mesh import Mesh, load_mesh
from .renderer import Renderer
from .space import Space


class Evaluation(NamedTuple):
    """Scores and predictions for a batch of points (a function without classes has None predictions)."""

    score: np.ndarray  #: [B] probability of the true class
    top1: np.ndarray | None  #: [B] predicted class index
    topk: np.ndarray | None  #: [B, k] the k most probable classes, best first
    topk_prob: np.ndarray | None  #: [B, k] their probabilities


@runtime_checkable
class ScoreFunction(Protocol):
    """What semkit needs of an f: a :class:`SemanticFunction` follows it, :func:`as_function` completes any callable.

    ``describe()`` says what f is, as plain values; for a store it must
    determine f's results (a SemanticFunction's holds digests of its weights
    and mesh). ``queries`` counts the points evaluated, gradients included.
    """

    space: Space
    queries: int
    gradient_method: str

    def __call__(self, points: Any) -> np.ndarray: ...

    def evaluate(self, points: Any, k: int = 1) -> Evaluation: ...

    def gradient(self, points: Any) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


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
    evaluations included (as a network of :class:`SemanticFunctions`, the
    points it classified: their renders are shared and counted there).

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
        if not isinstance(classifier, (Classifier, str)):
            raise TypeError(f"classifier must be a semkit.Classifier or a network name such as 'efficientnet_lite0' "
                            f"(see semkit.BUNDLED), got {classifier!r}; a class label goes in label=")
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
            "network_digest": self.classifier.fingerprint(),
            "mesh_digest": self.mesh.fingerprint(),
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
            self._remember(unique[~found.hit], fresh)
            miss = ~found.hit
            found.score[miss], found.topk[miss], found.topk_prob[miss] = fresh.score, fresh.topk, fresh.topk_prob
        score, topk, topk_prob = found.score[inverse], found.topk[inverse], found.topk_prob[inverse]
        return Evaluation(score, topk[:, 0].copy(), topk, topk_prob)

    def _compute(self, pts: np.ndarray, k: int) -> Evaluation:
        """Render and classify ``pts`` (every one a query)."""
        parts = []
        with torch.inference_mode():
            for images in _renders(self.renderer, self.mesh, self.space, pts, self.batch_size, self.pipeline):
                parts.append(self._answer(self._classify(images), k))
        return _joined(parts, k)

    def _answer(self, probs: torch.Tensor, k: int) -> Evaluation:
        """The true-class score and top-k of a batch of probabilities."""
        p, idx = probs.topk(k, dim=1)
        topk = idx.cpu().numpy()
        return Evaluation(probs[:, self.label].double().cpu().numpy(), topk[:, 0].copy(), topk, p.double().cpu().numpy())

    def _remember(self, pts: np.ndarray, ev: Evaluation) -> None:
        """Keep freshly computed answers in the cache (when there is one)."""
        if self.cache is not None:
            self.cache.store(pts, ev.score, ev.topk, ev.topk_prob)

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
        return central_differences(self, pts, self.space, self.fd_step)


class SemanticFunctions:
    """One shape under several networks: each view is rendered once and classified by every network.

    ``SemanticFunctions(mesh, ["efficientnet_lite0", "efficientnet_lite1"])``
    holds one :class:`SemanticFunction` per network (``f[name]``,
    ``f.functions``), all with the same mesh, label, Space and renderer, so
    each stays an ordinary :class:`ScoreFunction` (regions, trust, maps of
    one network). ``f.evaluate(points)`` returns one :class:`Evaluation` per
    network (by name); it renders the points that some network has not
    answered yet (cached answers are reused per network) once, and gives the
    images to each network that needs them.

    Queries: each network's ``queries`` counts the points it classified
    (as for a single function); ``renders`` counts the views rendered here,
    so the renders a map of n networks saved are ``sum(queries) - renders``.

    The default renderer draws at the largest input size of the networks;
    the others resize the images (antialiased), as every classifier does
    with images of another size. ``semantic_map(f)`` gives a map with a
    ``network`` dim, equal to the stack of the networks' own maps rendered
    with the same renderer.
    """

    def __init__(
        self,
        mesh: Mesh | str | os.PathLike,
        classifiers: Sequence[Classifier | str],
        label: int | str | None = None,
        renderer: Renderer | None = None,
        space: Space | None = None,
        *,
        batch_size: int = 32,
        pipeline: bool | None = None,
        cache_size: int = DEFAULT_SIZE,
    ) -> None:
        if isinstance(classifiers, (str, Classifier)) or not len(classifiers):
            raise ValueError("SemanticFunctions needs a list of one or more networks (names or Classifiers); "
                             "for one network use SemanticFunction")
        mesh = mesh if isinstance(mesh, Mesh) else load_mesh(mesh)
        loaded = [c if isinstance(c, Classifier) else load_classifier(c) for c in classifiers]
        names = [c.name for c in loaded]
        if len(set(names)) != len(names):
            raise ValueError(f"network names must be unique, got {names}")
        renderer = renderer or Renderer(image_size=max(c.input_size for c in loaded))
        self.functions = [SemanticFunction(mesh, c, label, renderer, space, batch_size=batch_size, pipeline=pipeline,
                                           cache_size=cache_size) for c in loaded]
        first = self.functions[0]
        self.mesh, self.renderer, self.space, self.label = mesh, renderer, first.space, first.label
        self.batch_size = first.batch_size
        self.pipeline = any(f.pipeline for f in self.functions)
        self.renders = 0

    @property
    def networks(self) -> list[str]:
        """The networks' names, in order."""
        return [f.classifier.name for f in self.functions]

    def __getitem__(self, network: str) -> SemanticFunction:
        for f in self.functions:
            if f.classifier.name == network:
                return f
        raise KeyError(f"no network {network!r} here; the networks are {self.networks}")

    def __len__(self) -> int:
        return len(self.functions)

    def __repr__(self) -> str:
        return f"SemanticFunctions(shape={self.mesh.name!r}, networks={self.networks}, {self.space})"

    @property
    def queries(self) -> int:
        """Classifications by all networks so far (each network's own count is ``f[name].queries``)."""
        return sum(f.queries for f in self.functions)

    def evaluate(self, points: Any, k: int = 1, networks: Sequence[str] | None = None) -> dict[str, Evaluation]:
        """Per network (all, or those named), scores and top-k for ``points``; each view rendered at most once."""
        chosen = self.functions if networks is None else [self[n] for n in networks]
        pts = self.space.points(points)
        unique, inverse = _unique_rows(pts)
        found = {}
        for f in chosen:
            if f.cache is None:
                found[f] = None
                continue
            f.cache.count_repeats(len(pts) - len(unique))
            found[f] = f.cache.lookup(unique, k)
        need = {f: np.ones(len(unique), bool) if hit is None else ~hit.hit for f, hit in found.items()}
        todo = np.flatnonzero(np.any([m for m in need.values()], axis=0)) if need else np.empty(0, int)
        fresh: dict[SemanticFunction, list[Evaluation]] = {f: [] for f in chosen}
        with torch.inference_mode():
            start = 0
            for images in _renders(self.renderer, self.mesh, self.space, unique[todo], self.batch_size, self.pipeline):
                rows = todo[start : start + len(images)]
                self.renders += len(images)
                for f in chosen:
                    mine = need[f][rows]
                    if mine.any():
                        fresh[f].append(f._answer(f._classify(images[torch.from_numpy(mine)]), k))
                start += len(images)
        out = {}
        for f in chosen:
            computed = _joined(fresh[f], k)
            f._remember(unique[need[f]], computed)
            hit = found[f]
            if hit is None:
                score, topk, topk_prob = computed.score, computed.topk, computed.topk_prob
            else:
                score, topk, topk_prob = hit.score, hit.topk, hit.topk_prob
                miss = need[f]
                score[miss], topk[miss], topk_prob[miss] = computed.score, computed.topk, computed.topk_prob
            out[f.classifier.name] = Evaluation(score[inverse], topk[inverse][:, 0].copy(), topk[inverse], topk_prob[inverse])
        return out

    def describe(self) -> dict[str, Any]:
        """What these functions are, as plain values: each network's description (by name)."""
        return {f.classifier.name: f.describe() for f in self.functions}


# ------------------------------------------------------------ any callable
def difference_points(points: np.ndarray, space: Space, steps: Any) -> np.ndarray:
    """Points [B, 2, n, n] one step either side of each point along each parameter ([:, 0]: plus, [:, 1]: minus).

    A step that would leave a bounded parameter stops at its bound (one-sided
    differences there); periodic parameters are wrapped into the Space.
    """
    pts = np.asarray(points, dtype=float)
    h = np.eye(pts.shape[1]) * np.broadcast_to(np.asarray(steps, dtype=float), (pts.shape[1],))
    plus, minus = pts[:, None, :] + h, pts[:, None, :] - h
    plus = np.where(space.periodic, plus, np.minimum(plus, space.upper))
    minus = np.where(space.periodic, minus, np.maximum(minus, space.lower))
    return np.stack([plus, minus], axis=1)


def difference_quotients(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Gradients [B, n] from f at :func:`difference_points` ``points`` [B, 2, n, n] (values in the same order)."""
    B, _, n, _ = points.shape
    f = np.asarray(values, dtype=float).reshape(B, 2, n)
    span = np.einsum("bii->bi", points[:, 0] - points[:, 1])
    return (f[:, 0] - f[:, 1]) / span


def central_differences(f: Callable[[np.ndarray], Any], points: np.ndarray, space: Space, steps: Any) -> np.ndarray:
    """d f / d point [B, n] by central differences (semkit's one implementation), in one call of f."""
    stepped = difference_points(points, space, steps)
    return difference_quotients(f(space.wrap(stepped.reshape(-1, space.n))), stepped)


class PlainFunction:
    """A callable completed to the :class:`ScoreFunction` protocol.

    Scores come from ``f`` (checked: one finite value per point), the
    gradient from ``f.gradient`` where f has one, else central differences
    with steps ``fd_step``; ``queries`` counts the points evaluated here.
    ``identified`` says whether f describes itself (then ``describe()`` is
    its own); a function that does not is matched to a store by its values
    at fixed probe points (see :func:`store_identity`).
    """

    def __init__(self, f: Callable[[np.ndarray], Any], space: Space, fd_step: float | Sequence[float] = 1.0) -> None:
        self.f, self.space = f, space
        self.queries = 0
        self._gradient = getattr(f, "gradient", None)
        self._describe = getattr(f, "describe", None)
        self.identified = self._describe is not None
        self.difference_steps = None if self._gradient else np.broadcast_to(np.asarray(fd_step, float), (space.n,)).copy()

    @property
    def name(self) -> str:
        return f"{getattr(self.f, '__module__', '?')}.{getattr(self.f, '__qualname__', type(self.f).__qualname__)}"

    @property
    def gradient_method(self) -> str:
        if self._gradient is not None:
            return "f.gradient"
        steps = ", ".join(f"{name}={h:g}" for name, h in zip(self.space.names, self.difference_steps))
        return f"central differences ({steps})"

    def __call__(self, points: Any) -> np.ndarray:
        pts = np.asarray(points, dtype=float)
        scores = np.asarray(self.f(pts), dtype=float).reshape(-1)
        if scores.shape != (len(pts),):
            raise ValueError(f"f returned {scores.size} scores for {len(pts)} points")
        bad = ~np.isfinite(scores)
        if bad.any():
            raise ValueError(f"f returned NaN or infinite scores at {int(bad.sum())} point(s), first at {pts[np.argmax(bad)]}")
        self.queries += len(pts)
        return scores

    def evaluate(self, points: Any, k: int = 1) -> Evaluation:
        return Evaluation(self(points), None, None, None)

    def gradient(self, points: Any) -> np.ndarray:
        pts = np.asarray(points, dtype=float)
        if self._gradient is None:
            return central_differences(self, pts, self.space, self.difference_steps)
        self.queries += len(pts)  # a gradient of f's own counts as one query per point
        return np.asarray(self._gradient(pts), dtype=float).reshape(pts.shape)

    def describe(self) -> dict[str, Any]:
        return dict(self._describe()) if self._describe is not None else {"callable": self.name}


def as_function(f: Any, space: Space | None = None, *, fd_step: float | Sequence[float] = 1.0) -> ScoreFunction:
    """``f`` as a :class:`ScoreFunction`: itself when it follows the protocol, else completed by :class:`PlainFunction`.

    ``space`` defaults to ``f.space``; ``fd_step`` is the central-difference
    step for a callable without a gradient.
    """
    space = space or getattr(f, "space", None)
    if space is None:
        raise ValueError("f needs a Space: pass space=, or an f with a .space (a SemanticFunction)")
    if isinstance(f, ScoreFunction):
        return f
    if not callable(f):
        raise TypeError(f"f must be callable (points [B, n] -> scores [B]), got {type(f).__name__}")
    return PlainFunction(f, space, fd_step)


#: Fixed probe points (uniform over the Space) that identify a function without a description, besides the grid.
PROBES = 64
#: Grid points (a sample, when the grid has more) that a map's store re-evaluates to identify such a function.
GRID_PROBES = 256


def store_identity(f: ScoreFunction, key: str | None = None, grid: np.ndarray | None = None) -> dict[str, Any]:
    """What identifies ``f`` for a store: ``key`` when given, else its description, with a canary when it has none.

    The canary is a digest of f's values (rounded to nine digits) at
    :data:`PROBES` fixed uniform points of its Space and, for a map, at the
    map's grid points (all of them up to :data:`GRID_PROBES`, else a fixed
    sample): another function of the same name (a lambda, a redefined
    function) that differs at a share q of the grid's points is caught with
    probability at least 1 - (1 - q)^256, and always on a grid of up to 256
    points; on a share q of the Space, with 1 - (1 - q)^64. It costs those
    queries; ``key=`` names the function instead and costs none.
    """
    if key is not None:
        return {"key": str(key)}
    if not isinstance(f, PlainFunction) or f.identified:
        return f.describe()
    space = f.space
    points = space.lower + np.random.default_rng(20231).random((PROBES, space.n)) * space.widths  # fixed points
    if grid is not None and len(grid):
        grid = np.asarray(grid, dtype=float)
        if len(grid) > GRID_PROBES:
            grid = grid[np.random.default_rng(20232).choice(len(grid), GRID_PROBES, replace=False)]
        points = np.concatenate([points, grid])
    values = np.array([float(f"{v:.9g}") for v in f(points)])
    digest = hashlib.sha256(values.tobytes()).hexdigest()[:16]
    return {"callable": f.name, "canary": f"{digest} (values at {len(points)} points)"}


#: One background thread renders the next chunk while the caller classifies (see :func:`_renders`).
_RENDER_THREAD = ThreadPoolExecutor(1, thread_name_prefix="semkit-render-ahead")


def _renders(renderer: Renderer, mesh: Mesh, space: Space, pts: np.ndarray, batch_size: int, pipeline: bool):
    """Images of ``pts`` chunk by chunk; with ``pipeline``, the next chunk renders while the caller classifies this one.

    The renderer (embree) releases the GIL, so the two stages overlap.
    """
    chunks = list(_chunks(pts, batch_size))
    if not pipeline or renderer.differentiable or len(chunks) < 2:
        for chunk in chunks:
            yield renderer.render(mesh, chunk, space)
        return
    pending = _RENDER_THREAD.submit(renderer.render, mesh, chunks[0], space)
    for i in range(len(chunks)):
        images = pending.result()
        if i + 1 < len(chunks):
            pending = _RENDER_THREAD.submit(renderer.render, mesh, chunks[i + 1], space)
        yield images


def _joined(parts: list[Evaluation], k: int) -> Evaluation:
    """Evaluations of consecutive chunks as one."""
    if not parts:
        empty = np.empty((0, k))
        return Evaluation(np.empty(0), np.empty(0, int), empty.astype(int), empty)
    topk = np.concatenate([p.topk for p in parts])
    return Evaluation(np.concatenate([p.score for p in parts]), topk[:, 0].copy(), topk,
                      np.concatenate([p.topk_prob for p in parts]))


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
