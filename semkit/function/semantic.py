"""The semantic function f(u) = softmax(C(R(S, u)))[y] of one shape and one network (or several).

A [`SemanticFunction`][semkit.SemanticFunction] maps points u of a Space ([B, n]) to the
network's probability of the true class y for the renders of shape S at u;
[`SemanticFunctions`][semkit.SemanticFunctions] renders each view once for several networks.
Both follow [`ScoreFunction`][semkit.function.ScoreFunction] (`.protocol`).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..classify import Classifier, imagenet_labels, load_classifier, resolve_label
from ..render import Renderer
from ..scene import Mesh, load_shape
from ..space import Space
from ..validation import check_count
from .cache import DEFAULT_SIZE, QueryCache
from .differences import central_differences
from .protocol import Evaluation


IMAGENET = imagenet_labels()


#: Views per chunk on a CPU (memory stays small, and the cache sees each chunk) and on a GPU (hundreds of views
#: keep the device busy: docs/gpu.md).
CPU_BATCH, GPU_BATCH = 32, 256


class SemanticFunction:
    """Score a network on renders of one shape over a semantic Space.

    ``f(points)`` returns the true-class probabilities [B] of the renders at
    ``points`` ([B, n] in the Space's order, or named arrays); results are
    deterministic. ``f.gradient(points)`` differentiates through the
    renderer when it is differentiable, else by central differences.
    ``f.queries`` counts the points rendered and classified so far, gradient
    evaluations included (as a network of [`SemanticFunctions`][semkit.SemanticFunctions], the
    points it classified: their renders are shared and counted there).

    Every point's answer is kept in ``f.cache`` (a [`QueryCache`][semkit.function.QueryCache],
    least recently used forgotten), so a point asked for again (by a map, a
    region step, central differences) is neither rendered nor classified
    again: it is no query, and ``f.cache_hits`` counts it instead (as it
    counts a point repeated within one batch, computed once).

    Parameters
    ----------
    shape : Mesh, str or path
        Anything [`load_shape`][semkit.load_shape] takes: a gallery name, a mesh file, a ShapeNet entry, a Mesh.
    network : Classifier or str
        The network, or its name (see [`load_classifier`][semkit.load_classifier]).
    label : int or str, optional
        The true class, an index or a name of the network's labels; None: the shape's own (ImageNet) label.
    renderer : Renderer, optional
        None: the CPU/GPU default at the network's input size.
    space : Space, optional
        The semantic parameters; None: [`Space.paper`][semkit.Space.paper].
    batch_size : int, optional
        Points rendered and classified per chunk, so memory stays bounded; None: `GPU_BATCH` when the network
        runs on a GPU (a batch that fills the device), `CPU_BATCH` on a CPU.
    fd_step : float or sequence of float, optional
        The central-difference steps, in the Space's units; None: 1 for parameters with units, 1% of the range
        for unitless ones such as ``light_intensity``.
    pipeline : bool, optional
        Render the next chunk on the renderer's background thread while the current one is classified; None:
        when the network runs on a GPU (on a small CPU both stages want every core).
    cache_size : int, default DEFAULT_SIZE
        The most points the cache keeps (100,000); 0 turns it off.

    Raises
    ------
    TypeError
        ``network`` is neither a Classifier nor a name.
    ValueError
        No label given for a shape without one the network knows, an unknown label, or a ``batch_size``,
        ``fd_step`` or ``cache_size`` out of range.
    """

    def __init__(
        self,
        shape: Mesh | str | os.PathLike,
        network: Classifier | str,
        label: int | str | None = None,
        *,
        renderer: Renderer | None = None,
        space: Space | None = None,
        batch_size: int | None = None,
        fd_step: float | Sequence[float] | None = None,
        pipeline: bool | None = None,
        cache_size: int = DEFAULT_SIZE,
    ) -> None:
        if not isinstance(network, (Classifier, str)):
            raise TypeError(f"network must be a semkit.Classifier or a network name such as 'efficientnet_lite0' "
                            f"(see semkit.BUNDLED), got {network!r}; a class label goes in label=")
        self.mesh = load_shape(shape)
        self.classifier = network if isinstance(network, Classifier) else load_classifier(network)
        if label is None:  # the shape's own label is an ImageNet class: it means nothing to a network of other classes
            if self.mesh.label is None or len(self.classifier.labels) != len(IMAGENET):
                raise ValueError(f"{self.mesh.name!r} has no class label {self.classifier.name} knows: pass label= "
                                 f"(an index or a name of its {len(self.classifier.labels)} labels)")
            label = self.mesh.label
        self.label = resolve_label(label, self.classifier.labels)
        self.renderer = renderer or Renderer(image_size=self.classifier.input_size)
        self.space = space or Space.paper()
        default = CPU_BATCH if self.classifier.device.type == "cpu" else GPU_BATCH
        self.batch_size = default if batch_size is None else check_count(batch_size, "batch_size")
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
        """Points answered from the cache (not rendered, not counted in `queries`)."""
        return self.cache.hits if self.cache is not None else 0

    @property
    def label_name(self) -> str:
        return self.classifier.labels[self.label]

    @property
    def gradient_method(self) -> str:
        """How `gradient` differentiates: through the renderer, or by finite differences."""
        if self.renderer.differentiable:
            return f"autograd ({self.renderer.backend_name} renderer)"
        steps = ", ".join(f"{name}={h:g}" for name, h in zip(self.space.names, self.fd_step))
        return f"central differences ({steps})"

    def close(self) -> None:
        """Stop the renderer's threads and drop the network's ONNX Runtime sessions (both start again when used)."""
        self.renderer.close()
        self.classifier.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        """What this function is, as plain values (dataset attrs)."""
        return {
            "label": self.label,
            "label_name": self.label_name,
            "network": self.classifier.name,
            "shape": self.mesh.name,
            "network_digest": self.classifier.fingerprint(),
            **({"weights": self.classifier.weights} if getattr(self.classifier, "weights", None) else {}),
            # float32 is left out, so stores made before precisions existed still match
            **({"precision": self.classifier.precision} if self.classifier.precision != "float32" else {}),
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
        """Scores, top-1 and top-k predictions for a batch of points (cached ones from the cache).

        Parameters
        ----------
        points : array_like [B, n], mapping or xarray object
            Points of the Space (see [`Space.points`][semkit.Space.points]).
        k : int, default 1
            How many top classes to return.

        Returns
        -------
        Evaluation
            ``score`` [B], ``top1`` [B], ``topk`` and ``topk_prob`` [B, k].
        """
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
            batches = list(_chunks(pts, self.batch_size))
            for images in self.renderer.render_batches(self.mesh, batches, space=self.space, ahead=self.pipeline):
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
        return self._classify(self.renderer.render(self.mesh, points, space=self.space))

    def _classify(self, images: torch.Tensor) -> torch.Tensor:
        probs = self.classifier(images)
        if not torch.isfinite(probs).all():
            raise FloatingPointError(f"{self.classifier.name} returned NaN or infinite probabilities")
        self.queries += len(images)
        return probs

    # --------------------------------------------------------------- gradient
    def gradient(self, points: Any) -> np.ndarray:
        """d score / d point [B, n], in score per Space unit (see `gradient_method`).

        Parameters
        ----------
        points : array_like [B, n], mapping or xarray object
            Points of the Space (see [`Space.points`][semkit.Space.points]).
        """
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

    ``SemanticFunctions("coffee_mug", ["efficientnet_lite0", "efficientnet_lite1"])``
    holds one [`SemanticFunction`][semkit.SemanticFunction] per network (``f[name]``,
    ``f.functions``), all with the same mesh, label, Space and renderer, so
    each stays an ordinary [`ScoreFunction`][semkit.function.ScoreFunction] (regions, trust, maps of
    one network). ``f.evaluate(points)`` returns one [`Evaluation`][semkit.function.Evaluation] per
    network (by name); it renders the points that some network has not
    answered yet (cached answers are reused per network) once, and gives the
    images to each network that needs them. ``f.evaluate_each({name: points})``
    does the same with each network at its own points (each network's
    adaptive map asks for its own).

    Queries: each network's ``queries`` counts the points it classified
    (as for a single function); ``renders`` counts the views rendered here,
    so the renders a map of n networks saved are ``sum(queries) - renders``.
    ``semantic_map(f)`` gives a map with a ``network`` dim, equal to the
    stack of the networks' own maps rendered with the same renderer.

    Parameters
    ----------
    shape : Mesh, str or path
        Anything [`load_shape`][semkit.load_shape] takes.
    networks : sequence of Classifier or str
        One or more networks or their names, with unique names.
    label : int or str, optional
        The true class, as for [`SemanticFunction`][semkit.SemanticFunction].
    renderer : Renderer, optional
        None: the default at the largest input size of the networks; the others resize the images
        (antialiased), as every classifier does with images of another size.
    space : Space, optional
        The semantic parameters; None: [`Space.paper`][semkit.Space.paper].
    batch_size : int, optional
        Points rendered and classified per chunk; None: as [`SemanticFunction`][semkit.SemanticFunction] (by the first network's device).
    pipeline : bool, optional
        Render the next chunk while the current one is classified; None: when some network runs on a GPU.
    cache_size : int, default DEFAULT_SIZE
        The most points each network's cache keeps (100,000); 0 turns caching off.

    Raises
    ------
    ValueError
        No list of networks, or networks of the same name.
    """

    def __init__(
        self,
        shape: Mesh | str | os.PathLike,
        networks: Sequence[Classifier | str],
        label: int | str | None = None,
        *,
        renderer: Renderer | None = None,
        space: Space | None = None,
        batch_size: int | None = None,
        pipeline: bool | None = None,
        cache_size: int = DEFAULT_SIZE,
    ) -> None:
        if isinstance(networks, (str, Classifier)) or not len(networks):
            raise ValueError("SemanticFunctions needs a list of one or more networks (names or Classifiers); "
                             "for one network use SemanticFunction")
        mesh = load_shape(shape)
        loaded = [c if isinstance(c, Classifier) else load_classifier(c) for c in networks]
        names = [c.name for c in loaded]
        if len(set(names)) != len(names):
            raise ValueError(f"network names must be unique, got {names}")
        renderer = renderer or Renderer(image_size=max(c.input_size for c in loaded))
        self.functions = [SemanticFunction(mesh, c, label, renderer=renderer, space=space, batch_size=batch_size, pipeline=pipeline,
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
        """Per network, scores and top-k for ``points``; each view rendered at most once.

        Parameters
        ----------
        points : array_like [B, n], mapping or xarray object
            Points of the Space.
        k : int, default 1
            How many top classes to return.
        networks : sequence of str, optional
            The networks to ask, by name; None: all.

        Returns
        -------
        dict of str to Evaluation
        """
        return self.evaluate_each({name: points for name in (self.networks if networks is None else networks)}, k)

    def evaluate_each(self, points: Mapping[str, Any], k: int = 1) -> dict[str, Evaluation]:
        """Per network named, scores and top-k for its own points.

        The views that some network asks for and has not answered yet (cached
        answers are reused per network) are rendered once, and each network
        classifies only the views it asked for: networks that need different
        points (each one's own adaptive map) still share their renders.

        Parameters
        ----------
        points : mapping of str to array_like [B, n]
            Each network's points, by network name.
        k : int, default 1
            How many top classes to return.

        Returns
        -------
        dict of str to Evaluation
        """
        chosen = [self[name] for name in points]
        pts = [self.space.points(points[f.classifier.name]) for f in chosen]
        unique, inverse = _unique_rows(np.concatenate(pts) if pts else np.empty((0, self.space.n)))
        ends = np.cumsum([0] + [len(p) for p in pts])
        rows, where, found, need = {}, {}, {}, {}
        for f, a, b in zip(chosen, ends[:-1], ends[1:]):
            rows[f] = np.unique(inverse[a:b])  # this network's distinct points, as rows of unique
            where[f] = np.searchsorted(rows[f], inverse[a:b])
            need[f] = np.zeros(len(unique), bool)
            if f.cache is None:
                found[f] = None
                need[f][rows[f]] = True
                continue
            f.cache.count_repeats(b - a - len(rows[f]))
            found[f] = f.cache.lookup(unique[rows[f]], k)
            need[f][rows[f][~found[f].hit]] = True
        todo = np.flatnonzero(np.any([m for m in need.values()], axis=0)) if need else np.empty(0, int)
        fresh: dict[SemanticFunction, list[Evaluation]] = {f: [] for f in chosen}
        with torch.inference_mode():
            start = 0
            for images in self.renderer.render_batches(self.mesh, list(_chunks(unique[todo], self.batch_size)), space=self.space,
                                                       ahead=self.pipeline):
                batch = todo[start : start + len(images)]
                self.renders += len(images)
                for f in chosen:
                    mine = need[f][batch]
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
                miss = ~hit.hit
                score[miss], topk[miss], topk_prob[miss] = computed.score, computed.topk, computed.topk_prob
            at = where[f]
            out[f.classifier.name] = Evaluation(score[at], topk[at][:, 0].copy(), topk[at], topk_prob[at])
        return out

    def close(self) -> None:
        """Stop the renderer's threads and drop the networks' ONNX Runtime sessions (both start again when used)."""
        self.renderer.close()
        for f in self.functions:
            f.classifier.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        """What these functions are, as plain values: each network's description (by name)."""
        return {f.classifier.name: f.describe() for f in self.functions}


# ------------------------------------------------------------ any callable


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
