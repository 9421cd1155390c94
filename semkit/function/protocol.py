"""The protocol of every semantic function f, and plain callables completed to it.

Everything downstream (maps, regions, trust, studies) takes any f that
follows [`ScoreFunction`][semkit.function.protocol.ScoreFunction]: its scores, top-1 predictions, gradient, a
description and a query count. [`as_function`][semkit.function.protocol.as_function] completes a plain
callable (an analytic function, an interpolated map) to that protocol, so
no other module has to ask an f what it can do; [`store_identity`][semkit.function.protocol.store_identity]
says which f a stored result belongs to.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Mapping, NamedTuple, Protocol, Sequence, runtime_checkable

import numpy as np

from ..scores import checked_scores
from ..space import Space
from .differences import central_differences


class Evaluation(NamedTuple):
    """Scores and predictions for a batch of points (a function without classes has None predictions)."""

    score: np.ndarray  #: [B] probability of the true class
    top1: np.ndarray | None  #: [B] predicted class index
    topk: np.ndarray | None  #: [B, k] the k most probable classes, best first
    topk_prob: np.ndarray | None  #: [B, k] their probabilities


@runtime_checkable
class ScoreFunction(Protocol):
    """What semkit needs of an f: a [`SemanticFunction`][semkit.SemanticFunction] follows it, [`as_function`][semkit.function.protocol.as_function] completes any callable.

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


class PlainFunction:
    """A callable completed to the [`ScoreFunction`][semkit.function.protocol.ScoreFunction] protocol.

    Scores come from ``f`` (checked: one finite value per point), the
    gradient from ``f.gradient`` where f has one, else central differences
    with steps ``fd_step``; ``queries`` counts the points evaluated here.
    The grid points a map's store identity probed (`remember`) are
    answered once more without evaluating f, when the map then needs them;
    every other call goes straight to f.
    ``identified`` says whether f describes itself (then ``describe()`` is
    its own); a function that does not is matched to a store by its values
    at fixed probe points (see [`store_identity`][semkit.function.protocol.store_identity]).
    """

    def __init__(self, f: Callable[[np.ndarray], Any], space: Space, fd_step: float | Sequence[float] = 1.0) -> None:
        self.f, self.space = f, space
        self.queries = 0
        self._gradient = getattr(f, "gradient", None)
        self._describe = getattr(f, "describe", None)
        self.identified = self._describe is not None
        self.difference_steps = None if self._gradient else np.broadcast_to(np.asarray(fd_step, float), (space.n,)).copy()
        self._probed: dict[bytes, float] = {}  # grid points the identity evaluated, until the map asks for them

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
        pts = np.asarray(points, dtype=float).reshape(-1, self.space.n)
        if not self._probed:
            self.queries += len(pts)
            return checked_scores(self.f(pts), pts)
        keys = [p.tobytes() for p in pts]
        scores = np.array([self._probed.get(k, np.nan) for k in keys])
        rest = np.isnan(scores)
        for k in {k for k, r in zip(keys, rest) if not r}:
            del self._probed[k]
        if rest.any():
            scores[rest] = checked_scores(self.f(pts[rest]), pts[rest])
            self.queries += int(rest.sum())
        return scores

    def remember(self, points: np.ndarray, scores: np.ndarray) -> None:
        """Keep f's ``scores`` at ``points`` (already evaluated) for the next call that asks for them, once."""
        self._probed.update(zip((p.tobytes() for p in np.asarray(points, dtype=float)), np.asarray(scores, float)))

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


def as_function(f: Any, *, space: Space | None = None, fd_step: float | Sequence[float] = 1.0) -> ScoreFunction:
    """``f`` as a [`ScoreFunction`][semkit.function.protocol.ScoreFunction]: itself when it follows the protocol, else completed by `PlainFunction`.

    Parameters
    ----------
    f : ScoreFunction or callable
        A score function, or a callable mapping points [B, n] to scores [B].
    space : Space, optional
        Its Space; None: ``f.space``. A score function with a Space of its own refuses another one (it would
        be ignored).
    fd_step : float or sequence of float, default 1.0
        The central-difference step (one, or one per parameter) for a callable without a gradient.

    Raises
    ------
    ValueError
        No Space given or known, or ``space`` differs from ``f``'s own.
    TypeError
        ``f`` is not callable.
    """
    own = getattr(f, "space", None)
    space = space or own
    if space is None:
        raise ValueError("f needs a Space: pass space=, or an f with a .space (a SemanticFunction)")
    if isinstance(f, ScoreFunction):
        if space != f.space:  # f evaluates its points in its own Space: another one would be ignored
            raise ValueError(f"space= is {space}, but f has its own Space {f.space} and evaluates points in it: "
                             "build f over the Space you want (e.g. SemanticFunction(..., space=...)), or leave "
                             "space= out")
        return f
    if not callable(f):
        raise TypeError(f"f must be callable (points [B, n] -> scores [B]), got {type(f).__name__}")
    return PlainFunction(f, space, fd_step)


#: Fixed probe points (uniform over the Space) that identify a function without a description ...
PROBES = 64
#: ... and at most this many of a map's grid points besides them.
GRID_PROBES = 256


def store_identity(f: ScoreFunction, key: str | None = None, grid: np.ndarray | None = None) -> dict[str, Any]:
    """What identifies ``f`` for a store: ``key`` when given, else its description, with a canary when it has none.

    The canary is a digest of f's values (rounded to nine digits) at up to
    `PROBES` fixed uniform points of its Space and, for a map, at a
    fixed sample of its grid points (up to `GRID_PROBES`), all
    together at most half the grid, so that reading a finished map back
    costs at most half of it; the grid points probed are remembered by f
    and cost nothing when the map computes them. Another function of the
    same name (a lambda, a redefined function) that differs at a share q of
    the grid's points is caught with probability at least 1 - (1 - q)^m
    (m: the grid points probed); on a share q of the Space, with
    1 - (1 - q)^p (p: the fixed probes).

    Parameters
    ----------
    f : ScoreFunction
        The function.
    key : str, optional
        A name for the function chosen by the caller, used instead of everything else; it costs nothing.
    grid : numpy.ndarray [m, n], optional
        The map's grid points, some of which the canary probes.
    """
    if key is not None:
        return {"key": str(key)}
    if not isinstance(f, PlainFunction) or f.identified:
        return f.describe()
    space = f.space
    probes = PROBES
    if grid is not None and len(grid):
        grid = np.asarray(grid, dtype=float)
        probes = min(PROBES, max(1, len(grid) // 4))
        take = min(GRID_PROBES, max(0, len(grid) // 2 - probes))
        grid = grid[np.random.default_rng(20232).choice(len(grid), take, replace=False)] if take < len(grid) else grid
    points = space.lower + np.random.default_rng(20231).random((probes, space.n)) * space.widths  # fixed points
    if grid is not None and len(grid):
        points = np.concatenate([points, grid])
    scores = f(points)
    if grid is not None and len(grid):
        f.remember(grid, scores[probes:])
    values = np.array([float(f"{v:.9g}") for v in scores])
    digest = hashlib.sha256(values.tobytes()).hexdigest()[:16]
    return {"callable": f.name, "canary": f"{digest} (values at {len(points)} points)"}


def describe_attrs(info: Mapping[str, Any]) -> dict[str, Any]:
    """The attrs a result records of its function's description (label, network and its precision, shape,
    renderer; or the callable).

    Parameters
    ----------
    info : mapping
        The function's ``describe()``.
    """
    attrs: dict[str, Any] = {}
    if "label" in info:
        attrs.update(label=int(info["label"]), label_name=info.get("label_name", ""))
    attrs.update({k: info[k] for k in ("network", "shape", "weights") if k in info})
    if "network" in info:
        attrs["precision"] = info.get("precision", "float32")
    if "renderer" in info:
        attrs["renderer"] = json.dumps(info["renderer"])
    if "callable" in info:
        attrs["function"] = info["callable"]
    return attrs
