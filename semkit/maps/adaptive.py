"""Adaptive maps: evaluate a coarse grid, then refine only the cells that interpolation cannot be trusted with.

Score maps are mostly flat, with the action in narrow bands, and often vary
along one parameter only (a bottle's score changes with the elevation, not
the azimuth). `refine` works in the grid's index space with cells
that have their own level per dimension: along dimension k a cell of level
``l`` spans ``2**l`` grid steps (fewer at a bounded dimension's end; a
periodic one wraps, so its cells tile the period). It evaluates the grid at
strides ``2**COARSEST`` and ``2**(COARSEST-1)`` everywhere; from then on a
cell is halved along dimension k (the new points evaluated in one batch)
only when, on a line along k across the cell or its parent (through the
cell's corners, or its midpoints where evaluated),

- the top-1 answer changes: whether it is the label (so ``correct``
  changes inside; without a label: the top-1 class), or
- 1-D linear interpolation along k is off by more than
  ``max_error / 2**(l-1)`` at a midpoint: the cell's own (evaluated when a
  neighbour's split reached its border: a ridge running on into it) or its
  parent's (evaluated when the parent was halved along k). The limit halves
  with each doubling of the cell's width, since a wide cell's error spreads
  over more grid points; a short cell at a grid's end that no midpoint saw
  is trusted only if its ends differ by less.

Cells are decided again after their neighbours' splits, until no cell
changes; decisions see only the points this run asked for (not the rest of
a resumed map's saved points), so a resumed map takes the same path. Cells
never split are final: their points that were not evaluated
get the multilinear interpolant of the cell's corners (smaller cells
overwrite larger ones on shared faces) and the top-1 class of the nearest
corner.

Several functions (the networks of one shape) are refined each where it
needs it, so each one's map is the map it gets alone and each evaluates
only its own points. `refine` is a generator that asks for its
batches, so `adaptive_values` runs the refinements in lockstep and
evaluates the points asked for in the same round together: a view is
rendered once for the networks that ask for it in one round, and again
when another network reaches it in a later round (their paths differ:
on a ShapeNet bathtub at 3 degrees, 2,858 renders for 2,618 views, and
5,297 classifications where refining the union of the needs took 7,914).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Generator, Mapping, Sequence

import numpy as np

#: The default bound on the estimated interpolation error of the score (``max_error``).
DEFAULT_MAX_ERROR = 0.05
#: Refinement starts from cells of 2**COARSEST grid steps (fewer where a dimension is short).
COARSEST = 3


def resolve_max_error(max_error: float | None) -> float:
    """``max_error``, or the default when None; refused unless a positive score difference."""
    if isinstance(max_error, (bool, str)):
        raise TypeError(f"max_error must be a positive score difference (a number), got {max_error!r}")
    max_error = DEFAULT_MAX_ERROR if max_error is None else float(max_error)
    if not (np.isfinite(max_error) and max_error > 0):
        raise ValueError(f"max_error must be a positive score difference, got {max_error}")
    return max_error


class _Axis:
    """One dimension of the grid in index space: its coordinates, and whether it wraps around a period."""

    def __init__(self, x: np.ndarray, period: float | None) -> None:
        x = np.asarray(x, dtype=float)
        self.n = len(x)
        # a dimension wraps when its grid goes round the whole period (the Space says so: period given)
        self.wrap = period is not None and self.n > 2
        self.x = np.r_[x, x[0] + period] if self.wrap else x  # the coordinate of index n (= index 0, one period on)
        room = self.n / 4 if self.wrap else (self.n - 1) / 2  # at least 4 (wrapping) or 2 cells at the top level
        self.top = int(np.floor(np.log2(room))) if room >= 1 else 0

    @property
    def end(self) -> int:
        """The last cell corner: index n (index 0 one period on) when wrapping, else n - 1."""
        return self.n if self.wrap else self.n - 1

    def lowers(self, level: int) -> np.ndarray:
        """The lower corners of this level's cells along this dimension."""
        return np.arange(0, max(self.end, 1), 2**level)

    def nodes(self, level: int) -> np.ndarray:
        """This level's grid indices along this dimension."""
        idx = np.arange(0, self.n, 2**level)
        return idx if self.wrap or idx[-1] == self.n - 1 else np.r_[idx, self.n - 1]

    def upper(self, lo: np.ndarray, level: np.ndarray) -> np.ndarray:
        """The upper corners of the cells of ``level`` starting at ``lo``."""
        return np.minimum(lo + 2**level, self.end)


#: A refinement (`refine`): yields the flat grid indices it needs evaluated, is sent their values, returns the map.
Refinement = Generator[np.ndarray, Mapping[str, np.ndarray], dict[str, np.ndarray]]


def adaptive_values(
    evaluate: Callable[[dict[int, np.ndarray]], dict[int, dict[str, np.ndarray]]],
    grid: dict[str, np.ndarray],
    periods: Sequence[float | None],
    max_error: float,
    label: Sequence[int | None],
    *,
    journals: Sequence[Any],
    chunk_size: int = 64,
    progress: bool = True,
) -> list[dict[str, np.ndarray]]:
    """Adaptive maps' values over ``grid`` (see `refine`) for one or more functions, each refined where it needs it.

    Per function (by position) ``label`` holds its true class (or None) and
    ``journals`` its map's store (or None). The refinements run in lockstep:
    the batches that those still refining ask for are merged and evaluated in
    chunks of ``chunk_size`` points, ``evaluate({function: points [B, n]})``
    answering per function ``score`` (and ``top1``) for the points it asked
    for, so each map is the one its function gets alone while a point that
    several ask for in the same round is evaluated in one call (the networks
    of one shape share its render). Each function's part of a chunk is saved with its grid
    indices in its own journal; a rerun starts each function from its own
    saved points.
    """
    from tqdm.auto import tqdm

    rounds = _Rounds(evaluate, list(grid.values()), journals, chunk_size)
    rounds.bar = tqdm(total=int(np.prod(rounds.shape)) * len(journals), initial=rounds.done, desc="adaptive map", unit="pt",
                      disable=not progress, leave=False)
    runs = [refine(rounds.axes, periods, max_error, k, true_class) for k, true_class in zip(rounds.known, label)]
    try:
        return _lockstep(runs, rounds.compute)
    except KeyboardInterrupt:
        rounds.interrupted()
        raise
    finally:
        rounds.bar.close()


#: ``evaluate({function: points [B, n]})``: per function, ``score`` (and ``top1``) at the points it asked for.
_Evaluate = Callable[[dict[int, np.ndarray]], dict[int, dict[str, np.ndarray]]]


def _lockstep(runs: Sequence[Refinement], compute: _Evaluate) -> list[dict[str, np.ndarray]]:
    """Run the refinements together, each round's requests (flat indices per function) answered by one ``compute``;
    their maps by position, so the points several ask for in one round are evaluated once."""
    out: list[dict[str, np.ndarray]] = [{} for _ in runs]
    asking: dict[int, np.ndarray] = {}

    def advance(j: int, values: Mapping[str, np.ndarray] | None) -> None:
        """Send function j's refinement its values (None: start it); keep its next request, or its map when done."""
        try:
            asking[j] = runs[j].send(values)
        except StopIteration as finished:
            asking.pop(j, None)
            out[j] = finished.value

    for j in range(len(runs)):
        advance(j, None)
    while asking:
        for j, values in compute(dict(asking)).items():
            advance(j, values)
    return out


class _Rounds:
    """The evaluation of each round's requests: the grid, the functions' journals with their saved points and next chunk
    numbers, and the count of the points known (saved or evaluated)."""

    def __init__(self, evaluate: _Evaluate, axes: list[np.ndarray], journals: Sequence[Any], chunk_size: int) -> None:
        self.evaluate, self.axes, self.journals, self.chunk_size = evaluate, axes, journals, chunk_size
        self.shape = tuple(len(x) for x in axes)
        self.known: list[dict[str, np.ndarray] | None] = []
        self.saved: list[int] = []  # per journal, the next chunk number
        for journal in journals:
            chunks, number = _saved(journal)
            self.known.append(chunks)
            self.saved.append(number)
        self.done = sum(len(k["index"]) for k in self.known if k is not None)
        self.bar: Any = None  # the progress bar (adaptive_values' tqdm), counting the points known

    def compute(self, requests: dict[int, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
        """The functions' values at the flat indices each asked for, evaluated together in chunks of their union."""
        parts: dict[int, list[dict[str, np.ndarray]]] = {j: [] for j in requests}
        union = np.unique(np.concatenate(list(requests.values())))
        for start in range(0, len(union), self.chunk_size):
            chunk = union[start : start + self.chunk_size]
            mine = {j: chunk[np.isin(chunk, index)] for j, index in requests.items()}
            mine = {j: index for j, index in mine.items() if len(index)}
            results = self.evaluate({j: self.points(index) for j, index in mine.items()})
            for j, index in mine.items():
                self.keep(j, index, results[j])
                parts[j].append(results[j])
        return {j: {key: np.concatenate([p[key] for p in part]) for key in part[0]} for j, part in parts.items()}

    def points(self, index: np.ndarray) -> np.ndarray:
        """The grid points [B, n] at flat indices ``index``."""
        return np.stack([x[i] for x, i in zip(self.axes, np.unravel_index(index, self.shape))], axis=-1)

    def keep(self, j: int, index: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Save function j's values at ``index`` with their indices in its journal (a rerun resumes from them); count them."""
        if self.journals[j] is not None:
            self.journals[j].save(self.saved[j], {"index": index, **values})
            self.saved[j] += 1
        self.done += len(index)
        self.bar.update(len(index))

    def interrupted(self) -> None:
        """Say how many points are saved, and where (Ctrl-C)."""
        folders = [str(journal.folder) for journal in self.journals if journal is not None]
        if folders:
            print(f"\ninterrupted: {self.done} points are saved in {', '.join(folders)}; rerun to resume", file=sys.stderr)


def _saved(journal: Any) -> tuple[dict[str, np.ndarray] | None, int]:
    """The points saved in a journal (``index``, and ``score``, ``top1`` where saved; None: none) and its next chunk number."""
    chunks: dict[str, list[np.ndarray]] = {}
    number = 0
    if journal is not None:
        for n, chunk in journal.chunks():
            for key, value in chunk.items():
                chunks.setdefault(key, []).append(value)
            number = max(number, n + 1)  # after the highest number: a dropped damaged chunk leaves a gap
    if not chunks:
        return None, number
    every = {key: np.concatenate(parts) for key, parts in chunks.items()}
    index = np.unique(every["index"])
    return {"index": index, **{key: _at(every, key, index) for key in ("score", "top1") if key in every}}, number


def _at(known: dict[str, np.ndarray], key: str, index: np.ndarray) -> np.ndarray:
    """``known[key]`` at the saved points ``index`` (the last saving of a point wins)."""
    order = np.argsort(known["index"], kind="stable")
    last = np.searchsorted(known["index"][order], index, side="right") - 1
    return known[key][order][last]


def refine(
    coords: Sequence[np.ndarray],
    periods: Sequence[float | None],
    max_error: float,
    known: dict[str, np.ndarray] | None = None,
    label: int | None = None,
) -> Refinement:
    """Adaptively evaluate a grid: a generator that yields the flat indices of each batch of grid points it needs,
    is sent their ``score`` (and ``top1``), and returns ``score``, ``top1`` (when sent) and ``evaluated`` over the grid.

    ``coords`` are the grid's values per dimension, ``periods`` each
    dimension's period where its grid closes the circle
    ([`closes_circle`][semkit.Space.closes_circle]; None: bounded, or a grid over part
    of the period). ``known`` holds points evaluated before (``index``,
    ``score``, ``top1``): they are not asked for again, so a resumed map
    takes the same path. ``label``: the class whose top-1 pass/fail
    refinement resolves.
    """
    axes = [_Axis(x, period) for x, period in zip(coords, periods)]
    shape = tuple(a.n for a in axes)
    grid = _Grid(axes, known, label)
    coarsest = min(COARSEST, max(a.top for a in axes))
    start = np.array([min(coarsest, a.top) for a in axes])
    lo = _product([a.lowers(c) for a, c in zip(axes, start)])
    cells = np.concatenate([lo, np.broadcast_to(start, lo.shape)], axis=1)
    yield from grid.ensure(_product([a.nodes(c) for a, c in zip(axes, start)]))
    first = np.broadcast_to((start == coarsest) & (start > 0), lo.shape)  # the coarsest cells are always halved
    final = []
    while len(cells):
        along = first if len(final) == 0 else grid.untrusted(cells, max_error)
        children = []
        while along.any():  # splits show errors on their neighbours' borders: decide those again
            split = along.any(axis=1)
            points, halves = grid.split(cells[split], along[split])
            yield from grid.ensure(points)
            children.append(halves)
            cells = cells[~split]
            along = grid.untrusted(cells, max_error)
        final.append(cells)
        cells = np.unique(np.concatenate(children), axis=0) if children else cells[:0]
    grid.fill(np.concatenate(final))
    out = {"score": grid.score.reshape(shape), "evaluated": grid.evaluated.reshape(shape)}
    if grid.top1 is not None:
        out["top1"] = grid.top1.reshape(shape)
    return out


class _Grid:
    """The grid's values so far and the cell operations.

    A cell is a row ``[lower corner (d indices), level per dimension (d)]``:
    along dimension k it spans ``2**level`` grid steps from its lower corner
    (fewer at a bounded grid's end).
    """

    def __init__(self, axes: list[_Axis], known: dict[str, np.ndarray] | None, label: int | None) -> None:
        self.axes = axes
        self.label = label
        self.shape = tuple(a.n for a in axes)
        size = int(np.prod(self.shape))
        self.score = np.full(size, np.nan)
        self.top1: np.ndarray | None = None
        self.evaluated = np.zeros(size, bool)
        self.reached = np.zeros(size, bool)  # the points this run asked for: decisions see only these
        if known is not None and len(known["index"]):
            self._put(known["index"], known)

    def _put(self, index: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        self.score[index] = values["score"]
        if "top1" in values:
            if self.top1 is None:
                self.top1 = np.full(self.score.shape, -1, np.int64)
            self.top1[index] = values["top1"]
        self.evaluated[index] = True

    def flat(self, idx: np.ndarray) -> np.ndarray:
        """Flat indices of grid indices [..., d] (wrapping ones taken modulo their length)."""
        wrapped = [np.mod(idx[..., k], a.n) for k, a in enumerate(self.axes)]
        return np.ravel_multi_index(wrapped, self.shape)

    def ensure(self, idx: np.ndarray) -> Generator[np.ndarray, Mapping[str, np.ndarray], None]:
        """Ask for the grid points ``idx`` [m, d] not evaluated yet in one batch (yielding their flat indices); keep their values."""
        flat = np.unique(self.flat(idx))
        self.reached[flat] = True
        todo = flat[~self.evaluated[flat]]
        if len(todo):
            self._put(todo, (yield todo))

    def bounds(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cells' lower and upper corners [m, d] (upper unwrapped), and their levels [m, d]."""
        d = len(self.axes)
        lo, level = cells[:, :d], cells[:, d:]
        up = np.stack([a.upper(lo[:, k], level[:, k]) for k, a in enumerate(self.axes)], axis=1)
        return lo, up, level

    def split(self, cells: np.ndarray, along: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Halve ``cells`` along the dimensions marked in ``along`` [m, d]: the points [p, d] the halves need, and the halves."""
        lo, up, level = self.bounds(cells)
        level = level - along
        mid = np.minimum(lo + 2 ** level, up)
        points = _combine([np.stack([lo[:, k], mid[:, k], up[:, k]], axis=1) for k in range(len(self.axes))])
        points = points.reshape(-1, len(self.axes))
        # children: the lower half, and the upper half where the dimension was split and has room
        halves = [np.stack([lo[:, k], np.where(along[:, k] & (mid[:, k] < up[:, k]), mid[:, k], lo[:, k])], axis=1)
                  for k in range(len(self.axes))]
        child_lo = _combine(halves)
        child = np.concatenate([child_lo, np.broadcast_to(level[:, None], child_lo.shape)], axis=-1)
        return points, np.unique(child.reshape(-1, child.shape[-1]), axis=0)

    def untrusted(self, cells: np.ndarray, max_error: float) -> np.ndarray:
        """Along which dimensions [m, d] to split ``cells`` (see the module docstring)."""
        lo, up, level = self.bounds(cells)
        mid = np.minimum(lo + (2 ** level) // 2, up)
        along = np.zeros(lo.shape, bool)
        # lines along each dimension through the cell's corners, and through its midpoints where neighbours reached them
        across = [np.stack([lo[:, j], mid[:, j], up[:, j]], axis=1) for j in range(len(self.axes))]
        for k, a in enumerate(self.axes):
            room = (level[:, k] > 0) & (up[:, k] - lo[:, k] > 1)
            if not room.any():
                continue

            def line(at: np.ndarray) -> np.ndarray:
                """Flat indices [m, 3**(d-1)] of the lines' points at index ``at`` [m] along k."""
                return self.flat(_combine(across[:k] + [at[:, None]] + across[k + 1:]))

            limit = max_error / 2.0 ** (level[:, k, None] - 1)
            ends = line(lo[:, k]), line(up[:, k])
            parent_lo = lo[:, k] - lo[:, k] % 2 ** (level[:, k] + 1)
            parent_up = a.upper(parent_lo, level[:, k] + 1)
            parent_mid = np.minimum(parent_lo + 2 ** level[:, k], parent_up)
            seen = np.zeros(len(cells), bool)
            for ends_k, mid_k in (((lo[:, k], up[:, k]), mid[:, k]), ((parent_lo, parent_up), parent_mid)):
                (f0, f1), fm = (line(e) for e in ends_k), line(mid_k)
                known = self.reached[f0] & self.reached[f1] & self.reached[fm]
                known &= (room & (ends_k[0] < mid_k) & (mid_k < ends_k[1]))[:, None]
                x0, x1 = a.x[ends_k[0]], a.x[ends_k[1]]
                t = ((a.x[mid_k] - x0) / np.where(x1 > x0, x1 - x0, 1.0))[:, None]
                error = np.abs(self.score[fm] - (1 - t) * self.score[f0] - t * self.score[f1])
                along[:, k] |= (known & (error > limit)).any(axis=1)
                seen |= known.any(axis=1)
                if self.top1 is not None:  # the verdict changes along k: between the ends, or at the midpoint
                    v0, v1, vm = (self.verdict(f) for f in (f0, f1, fm))
                    pair = self.reached[f0] & self.reached[f1] & room[:, None]
                    along[:, k] |= (pair & (v0 != v1)).any(axis=1) | (known & ((vm != v0) | (vm != v1))).any(axis=1)
            # no midpoint seen along k (a short cell at a grid's end): trusted only if its ends differ by less
            pair = self.reached[ends[0]] & self.reached[ends[1]] & room[:, None] & ~seen[:, None]
            along[:, k] |= (pair & (np.abs(self.score[ends[1]] - self.score[ends[0]]) > limit)).any(axis=1)
        return along

    def verdict(self, flat: np.ndarray) -> np.ndarray:
        """The pass/fail answer at points: top-1 is the label (without a label: the top-1 class)."""
        return self.top1[flat] if self.label is None else self.top1[flat] == self.label

    def fill(self, cells: np.ndarray) -> None:
        """Interpolate the points never evaluated, large cells first so that smaller ones overwrite them."""
        if len(cells) == 0:
            return
        lo, up, level = self.bounds(cells)
        size = level.sum(axis=1)  # log2 of a cell's volume in grid steps
        for s in np.unique(size)[::-1]:
            pick = np.flatnonzero(size == s)
            l, u = lo[pick], up[pick]
            offsets = _product([np.arange(2 ** level[pick][:, k].max() + 1) for k in range(len(self.axes))])
            idx = l[:, None] + offsets[None]
            inside = (idx <= u[:, None]).all(axis=-1)
            idx = np.minimum(idx, u[:, None])
            value, top1 = self.interpolate(l, u, idx)
            flat = self.flat(idx)
            todo = inside & ~self.evaluated[flat]
            self.score[flat[todo]] = value[todo]
            if top1 is not None:
                self.top1[flat[todo]] = top1[todo]

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


def _product(values: Sequence[np.ndarray]) -> np.ndarray:
    """All combinations [m, d] of one value per dimension, the last dimension fastest."""
    mesh = np.meshgrid(*values, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1)


def _combine(per_axis: Sequence[np.ndarray]) -> np.ndarray:
    """Per cell, all combinations of its per-axis candidates ([m, c_k] each) -> [m, prod c_k, d]."""
    m = per_axis[0].shape[0]
    mesh = np.meshgrid(*[np.arange(p.shape[1]) for p in per_axis], indexing="ij")
    picks = [g.ravel() for g in mesh]
    return np.stack([p[:, pick] for p, pick in zip(per_axis, picks)], axis=-1).reshape(m, -1, len(per_axis))
