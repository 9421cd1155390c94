"""What a score function owes its callers: one finite score per point, checked in one place."""

from __future__ import annotations

from typing import Any

import numpy as np


def checked_scores(scores: Any, points: np.ndarray) -> np.ndarray:
    """``scores`` as a float array [B] for ``points`` [B, n], or an error naming what f returned wrong and where."""
    out = np.asarray(scores, dtype=float).reshape(-1)
    if out.shape != (len(points),):
        raise ValueError(f"f returned {out.size} scores for {len(points)} points: a score function maps points [B, n] "
                         "to one score each, [B]")
    bad = ~np.isfinite(out)
    if bad.any():
        raise ValueError(f"f returned NaN or infinite scores at {int(bad.sum())} point(s), first at "
                         f"{np.asarray(points)[np.argmax(bad)]}")
    return out
