"""Adaptive maps: evaluate a coarse grid, then refine only the cells that interpolation cannot be trusted with.

Score maps are mostly flat, with the action in narrow bands. :func:`refine`
works in the grid's index space, level by level: level ``l`` holds every
``2**l``-th grid index in each dimension (the last index of a bounded
dimension always; a periodic one wraps, so its cells tile the period). It
evaluates the grid at strides ``2**COARSEST`` and ``2**(COARSEST-1)``
everywhere; from then on a cell of the current level is split (all its
next-level points evaluated, in one batch) only when

- its corners disagree on whether the top-1 class is the label (so the
  pass/fail answer changes inside; without a label: on the top-1 class), or
- the interpolation error seen at its corners exceeds ``tolerance``: the
  largest difference between a corner's value (evaluated when the
  coarser cell around it was split) and that coarser cell's multilinear
  interpolant there (a cell that the split left as wide as before along
  some axis, at the end of a grid, saw no such point: its corners may
  differ by at most ``tolerance``).

A cell left unsplit is split after all when its neighbours' split shows
errors above ``tolerance`` on its border (a ridge or an edge running on
into it), until no such cell is left. Cells never split are final: their points that were not evaluated get the
multilinear interpolant of the cell's corners (finer cells overwrite
coarser ones on shared faces) and the top-1 class of the nearest corner.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

import numpy as np

#: The default tolerance on the estimated interpolation error of the score.
DEFAULT_TOLERANCE = 0.05
#: Refinement starts from cells of 2**COARSEST grid steps (fewer where a dimension is short).
COARSEST = 3


def resolve_tolerance(tolerance: float | None) -> float:
    """``tolerance``, or the default when None; refused unless a positive score difference."""
    tolerance = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive score difference, got {tolerance}")
    return tolerance


class _Axis:
    """One dimension of the grid in index space: its coordinates, and whether it wraps around a period."""

    def __init__(self, x: np.ndarray, period: float | None) -> None:
        x = np.asarray(x, dtype=float)
        self.n = len(x)
        gaps = np.diff(x)
        # a periodic dimension wraps when its grid goes round the whole period (no gap wider than its steps)
        self.wrap = period is not None and self.n > 2 and x[0] + period - x[-1] <= gaps.max() * (1 + 1e-9)
        self.x = np.r_[x, x[0] + period] if self.wrap else x  # the coordinate of index n (= index 0, one period on)
        room = self.n / 4 if self.wrap else (self.n - 1) / 2  # at least 4 (wrapping) or 2 cells at the top level
        self.top = int(np.floor(np.log2(room))) if room >= 1 else 0

    def stride(self, level: int) -> int:
        return 2 ** min(level, self.top)

    def lowers(self, level: int) -> np.ndarray:
        """The lower corners of this level's cells along this dimension."""
        if self.n == 1:
            return np.zeros(1, int)
        return np.arange(0, self.n if self.wrap else self.n - 1, self.stride(level))

    def nodes(self, level: int) -> np.ndarray:
        """This level's grid indices along this dimension."""
        idx = np.arange(0, self.n, self.stride(level))
        return idx if self.wrap or idx[-1] == self.n - 1 else np.r_[idx, self.n - 1]

    def upper(self, lo: np.ndarray, level: int) -> np.ndarray:
        """The upper corners of the cells starting at ``lo`` (``n`` stands for index 0 one period on)."""
        return np.minimum(lo + self.stride(level), self.n if self.wrap else self.n - 1)


def adaptive_values(
    evaluate: Callable[[np.ndarray], dict[str, np.ndarray]],
    grid: dict[str, np.ndarray],
    periods: Sequence[float | None],
    tolerance: float,
    label: int | None = None,
    *,
    journal: Any = None,
    chunk_size: int = 64,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """An adaptive map's values over ``grid`` (see :func:`refine`), evaluated in chunks with a progress bar.

    ``evaluate(points)`` returns ``score`` (and ``top1``) for points [B, n].
    With a ``journal`` (the map's store), every evaluated chunk is saved
    with its grid indices and a rerun starts from the saved points.
    """
    from tqdm.auto import tqdm

    axes = list(grid.values())
    shape = tuple(len(x) for x in axes)
    known: dict[str, list[np.ndarray]] = {}
    saved = 0
    if journal is not None:
        for _, chunk in journal.chunks():
            for key, value in chunk.items():
                known.setdefault(key, []).append(value)
            saved += 1
    known_arrays = {key: np.concatenate(parts) for key, parts in known.items()} if known else None
    done = 0 if known_arrays is None else len(known_arrays["index"])
    bar = tqdm(total=int(np.prod(shape)), initial=done, desc="adaptive map", unit="pt", disable=not progress, leave=False)

    def compute(index: np.ndarray) -> dict[str, np.ndarray]:
        nonlocal saved, done
        parts = []
        for start in range(0, len(index), chunk_size):
            chunk = index[start : start + chunk_size]
            at = np.unravel_index(chunk, shape)
            result = {"index": chunk, **evaluate(np.stack([x[i] for x, i in zip(axes, at)], axis=-1))}
            if journal is not None:
                journal.save(saved, result)
                saved += 1
            parts.append(result)
            done += len(chunk)
            bar.update(len(chunk))
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0] if key != "index"}

    try:
        return refine(compute, axes, periods, tolerance, known_arrays, label)
    except KeyboardInterrupt:
        if journal is not None:
            print(f"\ninterrupted: {done} points are saved in {journal.folder}; rerun to resume", file=sys.stderr)
        raise
    finally:
        bar.close()


def refine(
    evaluate: Callable[[np.ndarray], dict[str, np.ndarray]],
    coords: Sequence[np.ndarray],
    periods: Sequence[float | None],
    tolerance: float,
    known: dict[str, np.ndarray] | None = None,
    label: int | None = None,
) -> dict[str, np.ndarray]:
    """Adaptively evaluate a grid; return ``score``, ``top1`` (when f gives one) and ``evaluated`` over it.

    ``evaluate(index)`` computes the grid points at flat indices ``index``
    and returns ``score`` (and ``top1``); ``coords`` are the grid's values
    per dimension, ``periods`` each dimension's period (None: bounded).
    ``known`` holds points evaluated before (``index``, ``score``, ``top1``):
    they are not evaluated again, so a resumed map takes the same path.
    ``label``: the class whose top-1 pass/fail refinement resolves.
    """
    axes = [_Axis(x, period) for x, period in zip(coords, periods)]
    shape = tuple(a.n for a in axes)
    grid = _Grid(axes, evaluate, known, label)
    level = min(COARSEST, max(a.top for a in axes))
    cells = _product([a.lowers(level) for a in axes])
    grid.ensure(_product([a.nodes(level) for a in axes]))
    final: list[tuple[np.ndarray, int]] = []
    for lvl in range(level, 0, -1):
        split = np.ones(len(cells), bool) if lvl == level else grid.untrusted(cells, lvl, tolerance)
        kept, children = cells[~split], [grid.split(cells[split], lvl)]
        while len(kept):  # a feature seen on a kept cell's border continues into it
            late = grid.seen_on_border(kept, lvl, tolerance)
            if not late.any():
                break
            children.append(grid.split(kept[late], lvl))
            kept = kept[~late]
        final.append((kept, lvl))
        cells = np.unique(np.concatenate(children), axis=0)
    grid.fill(final)
    out = {"score": grid.score.reshape(shape), "evaluated": grid.evaluated.reshape(shape)}
    if grid.top1 is not None:
        out["top1"] = grid.top1.reshape(shape)
    return out


class _Grid:
    """The grid's values so far, the interpolation errors observed per level, and the cell operations."""

    def __init__(self, axes: list[_Axis], evaluate, known, label: int | None) -> None:
        self.axes = axes
        self.label = label
        self.shape = tuple(a.n for a in axes)
        size = int(np.prod(self.shape))
        self.evaluate = evaluate
        self.score = np.full(size, np.nan)
        self.top1: np.ndarray | None = None
        self.evaluated = np.zeros(size, bool)
        self.error = np.zeros(size)  # |value - coarser interpolant| at points new at level observed_at
        self.observed_at = np.full(size, -1)
        if known is not None and len(known["index"]):
            self._put(known["index"], known)

    def _put(self, index: np.ndarray, values: dict[str, np.ndarray]) -> None:
        self.score[index] = values["score"]
        if "top1" in values:
            if self.top1 is None:
                self.top1 = np.full(len(self.score), -1, np.int64)
            self.top1[index] = values["top1"]
        self.evaluated[index] = True

    def flat(self, idx: np.ndarray) -> np.ndarray:
        """Flat indices of grid indices [..., d] (wrapping ones taken modulo their length)."""
        wrapped = [np.mod(idx[..., k], a.n) for k, a in enumerate(self.axes)]
        return np.ravel_multi_index(wrapped, self.shape)

    def ensure(self, idx: np.ndarray) -> None:
        """Evaluate the grid points ``idx`` [m, d] not evaluated yet, in one batch."""
        flat = np.unique(self.flat(idx))
        todo = flat[~self.evaluated[flat]]
        if len(todo):
            self._put(todo, self.evaluate(todo))

    def corners(self, lo: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
        """The cells' upper corners [m, d], and all 2**d corners [m, 2**d, d] (unwrapped)."""
        up = np.stack([a.upper(lo[:, k], level) for k, a in enumerate(self.axes)], axis=1)
        bits = _product([np.array([0, 1])] * len(self.axes))
        return up, np.where(bits[None].astype(bool), up[:, None], lo[:, None])

    def interpolate(self, lo: np.ndarray, up: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Multilinear interpolant of the cells' corner scores at points ``idx`` [m, p, d] in them, and the nearest corner's top-1."""
        d = len(self.axes)
        t = np.empty(idx.shape)
        for k, a in enumerate(self.axes):
            x0, x1 = a.x[lo[:, k]][:, None], a.x[up[:, k]][:, None]
            width = np.where(x1 > x0, x1 - x0, 1.0)
            t[..., k] = (a.x[idx[..., k]] - x0) / width
        value = np.zeros(idx.shape[:2])
        bits = _product([np.array([0, 1])] * d).astype(bool)
        for b in bits:
            corner = self.flat(np.where(b, up, lo))[:, None]
            weight = np.prod(np.where(b, t, 1 - t), axis=-1)
            value += weight * self.score[corner]
        top1 = None
        if self.top1 is not None:
            nearest = np.where(t >= 0.5, up[:, None], lo[:, None])
            top1 = self.top1[self.flat(nearest)]
        return value, top1

    def inside(self, lo: np.ndarray, up: np.ndarray, level: int) -> np.ndarray:
        """The grid points of ``level`` in each cell [m, p, d] (closed cells; repeated where a cell is narrow)."""
        per_axis = []
        for k, a in enumerate(self.axes):
            lo_k, up_k = lo[:, k], up[:, k]
            mid = np.minimum(lo_k + a.stride(level), up_k)
            per_axis.append(np.stack([lo_k, mid, up_k], axis=1))
        return _combine(per_axis)

    def split(self, cells: np.ndarray, level: int) -> np.ndarray:
        """Evaluate the next level's points in ``cells`` (one batch), record the errors seen there, return the child cells."""
        if len(cells) == 0:
            return cells
        up, _ = self.corners(cells, level)
        idx = self.inside(cells, up, level - 1)
        self.ensure(idx.reshape(-1, len(self.axes)))
        value, _ = self.interpolate(cells, up, idx)
        new = ~self.is_node(idx, level)  # points of the finer level only: what the coarser one interpolated
        flat = self.flat(idx)[new]
        self.error[flat] = np.abs(self.score[flat] - value[new])
        self.observed_at[flat] = level - 1
        per_axis = [np.stack([lo_k, np.minimum(lo_k + a.stride(level - 1), up[:, k])], axis=1)
                    for k, (a, lo_k) in enumerate(zip(self.axes, cells.T))]
        child = _combine(per_axis)
        # a lower corner at a cell's upper end is no child (the axis was not split); a length-1 axis has one
        keep = ((child < up[:, None]) | (np.array([a.n for a in self.axes]) == 1)).all(axis=-1)
        return np.unique(child[keep], axis=0)

    def is_node(self, idx: np.ndarray, level: int) -> np.ndarray:
        """Whether grid indices [..., d] are points of ``level``."""
        node = np.ones(idx.shape[:-1], bool)
        for k, a in enumerate(self.axes):
            i = idx[..., k]
            node &= (i % a.stride(level) == 0) | (i == (a.n if a.wrap else a.n - 1))
        return node

    def untrusted(self, cells: np.ndarray, level: int, tolerance: float) -> np.ndarray:
        """Which of this level's cells to split: the largest error seen at their corners exceeds ``tolerance``, or the corners disagree."""
        up, corners = self.corners(cells, level)
        flat = self.flat(corners)
        seen = np.where(self.observed_at[flat] == level, self.error[flat], 0.0)
        split = seen.max(axis=1) > tolerance
        # a cell as wide as its parent along some axis (short, at a grid's end) saw no new point there:
        # trusted only when its corners differ by less than the tolerance
        stale = np.zeros(len(cells), bool)
        for k, a in enumerate(self.axes):
            parent_lo = cells[:, k] - cells[:, k] % a.stride(level + 1)
            width = up[:, k] - cells[:, k]
            stale |= (a.upper(parent_lo, level + 1) - parent_lo == width) & (width > 1)
        values = self.score[flat]
        split |= stale & (values.max(axis=1) - values.min(axis=1) > tolerance)
        if self.top1 is not None:
            verdict = self.top1[flat] if self.label is None else self.top1[flat] == self.label
            split |= (verdict != verdict[:, :1]).any(axis=1)
        return split

    def seen_on_border(self, cells: np.ndarray, level: int, tolerance: float) -> np.ndarray:
        """Which of these unsplit cells have, on their border, next-level points whose errors exceed ``tolerance``."""
        up, _ = self.corners(cells, level)
        flat = self.flat(self.inside(cells, up, level - 1))
        seen = (self.observed_at[flat] == level - 1) & self.evaluated[flat]
        return np.where(seen, self.error[flat], 0.0).max(axis=1) > tolerance

    def fill(self, final: list[tuple[np.ndarray, int]]) -> None:
        """Interpolate the points never evaluated, coarse cells first so that finer ones overwrite them."""
        for cells, level in final:
            if len(cells) == 0:
                continue
            up, _ = self.corners(cells, level)
            offsets = _product([np.arange(a.stride(level) + 1) for a in self.axes])
            idx = cells[:, None] + offsets[None]
            inside = (idx <= up[:, None]).all(axis=-1)
            idx = np.minimum(idx, up[:, None])
            value, top1 = self.interpolate(cells, up, idx)
            flat = self.flat(idx)
            todo = inside & ~self.evaluated[flat]
            self.score[flat[todo]] = value[todo]
            if top1 is not None:
                self.top1[flat[todo]] = top1[todo]


def _product(values: Sequence[np.ndarray]) -> np.ndarray:
    """All combinations [m, d] of one value per dimension, the last dimension fastest."""
    mesh = np.meshgrid(*values, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1)


def _combine(per_axis: Sequence[np.ndarray]) -> np.ndarray:
    """Per cell, all combinations of its per-axis candidates ([m, c] each) -> [m, c**d, d]."""
    m = per_axis[0].shape[0]
    mesh = np.meshgrid(*[np.arange(p.shape[1]) for p in per_axis], indexing="ij")
    picks = [g.ravel() for g in mesh]
    return np.stack([p[:, pick] for p, pick in zip(per_axis, picks)], axis=-1).reshape(m, -1, len(per_axis))
