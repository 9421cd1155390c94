"""Central finite differences of f over a Space: the gradient of a function that has none of its own."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..space import Space


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
    """Gradients [B, n] from f at `difference_points` ``points`` [B, 2, n, n] (values in the same order)."""
    B, _, n, _ = points.shape
    f = np.asarray(values, dtype=float).reshape(B, 2, n)
    span = np.einsum("bii->bi", points[:, 0] - points[:, 1])
    return (f[:, 0] - f[:, 1]) / span


def central_differences(f: Callable[[np.ndarray], Any], points: np.ndarray, space: Space, steps: Any) -> np.ndarray:
    """d f / d point [B, n] by central differences (semkit's one implementation), in one call of f."""
    stepped = difference_points(points, space, steps)
    return difference_quotients(f(space.wrap(stepped.reshape(-1, space.n))), stepped)
