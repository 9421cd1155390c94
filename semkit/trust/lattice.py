"""Lattices of views (x + k * step per parameter), and boxes grown on them or by sampling.

`LatticeOracle` evaluates f under a criterion on the lattices of
several starts (each distinct point once, all starts in one call of f);
`largest_passing` finds, per start, the largest of nested lattice
boxes whose points all pass; `LatticeBox` grows a box of lattice
offsets whose points all pass; `SampledGrowth` grows a continuous
box by sampling slabs beyond its faces (for many parameters). A lattice statement is about lattice points
only; the continuous guarantee (`.guarantee`) is about every view.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import numpy as np

from ..criterion import Criterion
from ..space import Space
from .guarantee import uniform

#: A sampled box locates its faces to half the step (growth steps and pull-backs).
FINE = 2
#: How often a face closed on failures may open again as the box grows.
MAX_REOPEN = 2


class LatticeOracle:
    """f under a criterion on the lattices u0 + k * delta of several starts.

    Each distinct point is evaluated once (points are keyed after wrapping),
    the requests of all starts go to f in one batched call, and queries are
    counted for the start that first asked for a point.
    """

    def __init__(self, f: Any, space: Space, criterion: Criterion, starts: np.ndarray, delta: np.ndarray) -> None:
        self.f, self.space, self.criterion = f, space, criterion
        self.starts, self.delta = starts, delta
        self.queries = np.zeros(len(starts), dtype=np.int64)
        self._memo: dict[bytes, bool] = {}

    def inside(self, start: int, offsets: np.ndarray) -> np.ndarray:
        """Which lattice offsets [m, n] of a start lie in the Space (bounded parameters)."""
        return self.space.contains(self.space.lattice(self.starts[start], self.delta, offsets))

    def points(self, start: int, offsets: np.ndarray) -> np.ndarray:
        return self.space.clip(self.space.lattice(self.starts[start], self.delta, offsets))

    def _key(self, point: np.ndarray) -> bytes:
        return np.round(point, 9).tobytes()

    def __call__(self, requests: Sequence[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        """Pass/fail of each request's lattice offsets, in one call of f for the points not seen before."""
        points = [self.points(s, offsets) for s, offsets in requests]
        new: dict[bytes, tuple[int, np.ndarray]] = {}
        for (s, _), pts in zip(requests, points):
            for p in pts:
                key = self._key(p)
                if key not in self._memo and key not in new:
                    new[key] = (s, p)
        if new:
            batch = np.array([p for _, p in new.values()])
            passes, _, _ = self.criterion.evaluate(self.f, batch)
            for (key, (s, _)), ok in zip(new.items(), passes):
                self._memo[key] = bool(ok)
                self.queries[s] += 1
        return [np.array([self._memo[self._key(p)] for p in pts], dtype=bool) for pts in points]


def box_offsets(half: np.ndarray, inner: np.ndarray | None = None) -> np.ndarray:
    """Integer offsets j with |j_d| <= half_d for all d, less those with |j_d| <= inner_d for all d."""
    axes = [np.arange(-h, h + 1) for h in half]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(half))
    if inner is None:
        return grid
    return grid[~(np.abs(grid) <= inner).all(axis=1)]


def largest_passing(oracle: LatticeOracle, halves: Sequence[np.ndarray], progress: bool, desc: str) -> np.ndarray:
    """For each start, the index of the last box in ``halves`` (nested, growing half-widths in lattice steps)
    whose lattice points all pass: -1 when even the first fails, -2 when the start itself fails.

    Boxes are checked shell by shell, all starts together in one call of f
    per shell, and a start stops at its first failing shell.
    """
    from tqdm.auto import tqdm

    S, n = oracle.starts.shape
    centre = oracle([(s, np.zeros((1, n), int)) for s in range(S)])
    result = np.where([ok[0] for ok in centre], -1, -2)
    active = [s for s in range(S) if result[s] == -1]
    previous = np.zeros(n, dtype=int)
    for i, half in enumerate(tqdm(halves, desc=desc, disable=not progress, leave=False)):
        if not active:
            break
        half = np.asarray(half, dtype=int)
        shell = box_offsets(half, previous)
        requests = [(s, shell[oracle.inside(s, shell)]) for s in active]
        passed = [ok.all() for ok in oracle(requests)]
        for (s, _), ok in zip(requests, passed):
            if ok:
                result[s] = i
        active = [s for (s, _), ok in zip(requests, passed) if ok]
        previous = half
    return result



class LatticeBox:
    """Grow a box of lattice offsets [lo, hi] around 0 whose lattice points all pass.

    Each round proposes the shell of the box expanded by one step on every
    open face (corners included), then moves out the set of faces that
    keeps every point of the grown box passing and adds the most volume. A
    face whose own next layer holds a failing point, or that would leave the
    Space, or that would make a periodic parameter's box wrap onto itself,
    closes for good (its layer only grows as the other faces move).
    """

    def __init__(self, n: int, inside: Callable[[np.ndarray], np.ndarray], max_width: np.ndarray,
                 prefer: int | None = None) -> None:
        self.prefer = prefer  # grow this parameter first (then the volume); None: the volume alone
        self.lo = np.zeros(n, dtype=int)
        self.hi = np.zeros(n, dtype=int)
        self.closed = np.zeros((n, 2), dtype=bool)  # [d, 0]: the low face, [d, 1]: the high face
        self.inside = inside
        self.max_width = max_width  # lattice steps a parameter's box may span (periodic ones: less than a period)
        self._pending: tuple[list[tuple[int, int]], np.ndarray] | None = None

    @property
    def done(self) -> bool:
        return bool(self.closed.all())

    def propose(self) -> np.ndarray:
        """Lattice offsets [m, n] to evaluate next (empty when the box is final)."""
        n = len(self.lo)
        for d in range(n):
            if self.hi[d] - self.lo[d] + 1 > self.max_width[d]:
                self.closed[d] = True
            for side, step in ((0, self.lo[d] - 1), (1, self.hi[d] + 1)):
                probe = np.zeros((1, n), dtype=int)
                probe[0, d] = step
                if not self.closed[d, side] and not self.inside(probe)[0]:
                    self.closed[d, side] = True
        faces = [(d, side) for d in range(n) for side in (0, 1) if not self.closed[d, side]]
        if not faces:
            return np.zeros((0, n), dtype=int)
        lo, hi = self.lo.copy(), self.hi.copy()
        for d, side in faces:
            if side:
                hi[d] += 1
            else:
                lo[d] -= 1
        axes = [np.arange(l, h + 1) for l, h in zip(lo, hi)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, n)
        shell = grid[~((grid >= self.lo) & (grid <= self.hi)).all(axis=1)]
        self._pending = (faces, shell)
        return shell

    def update(self, passes: np.ndarray) -> None:
        """Move out the best consistent set of faces, given the pass/fail of the proposed offsets."""
        faces, shell = self._pending
        bit = {face: 1 << i for i, face in enumerate(faces)}
        needs = np.zeros(len(shell), dtype=np.int64)  # the faces a point needs moved out to lie in the box
        for (d, side), b in bit.items():
            needs |= np.where(shell[:, d] > self.hi[d] if side else shell[:, d] < self.lo[d], b, 0)
        failing = set(int(m) for m in needs[~np.asarray(passes, dtype=bool)])
        for face, b in bit.items():
            if b in failing:
                self.closed[face] = True
        open_faces = [face for face in faces if not self.closed[face]]
        best, best_key = 0, (-1.0, -1.0)
        for k in range(1, len(open_faces) + 1):
            for subset in itertools.combinations(open_faces, k):
                mask = sum(bit[face] for face in subset)
                if any(m & mask == m for m in failing):
                    continue
                widths = (self.hi - self.lo + 1).astype(float)
                for d, _ in subset:
                    widths[d] += 1
                key = (widths[self.prefer] if self.prefer is not None else 0.0, float(np.prod(widths)))
                if key > best_key:
                    best, best_key = mask, key
        for (d, side), b in bit.items():
            if best & b:
                if side:
                    self.hi[d] += 1
                else:
                    self.lo[d] -= 1
        self._pending = None


class SampledGrowth:
    """Grow a continuous box from a start by sampling slabs beyond its faces.

    Each open face proposes a slab of thickness ``step`` beyond it and
    samples it. A slab is taken in whole while the failures of everything
    taken in so far (each slab's failing share, weighted by its volume) stay
    under ``max_failure`` of the box's volume: a rare failing pocket does not
    stop a face. Otherwise the face moves to the last passing sample before
    the slab's first failure; when most samples beyond that failure fail
    too (a wall, not a pocket), the boundary lies between them and the next
    slab is that gap, so a face finds a wall in a few rounds. A slab with no
    failure doubles the face's step. A face closes once its step is under
    half the lattice step, at a bound, or when a periodic parameter's box
    would wrap onto itself; a face closed on failures opens again (twice at
    most) once the box has doubled in volume: what stopped a small box may
    be a pocket that a larger box tolerates.
    """

    def __init__(self, x0: np.ndarray, space: Space, delta: np.ndarray, rng: np.random.Generator, *,
                 max_queries: int, samples_per_face: int, max_failure: float,
                 box: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        self.space, self.delta, self.rng = space, delta, rng
        self.x0 = x0
        self.a, self.b = x0.copy(), x0.copy()
        self.step = np.repeat(delta[:, None], 2, axis=1) * 2.0
        self.closed = np.zeros((space.n, 2), dtype=bool)
        if box is not None:  # go on from a box grown otherwise: lower, upper, and its faces closed [n, 2]
            self.a, self.b, self.closed = box[0].copy(), box[1].copy(), box[2].copy()
        self.closed_at = np.full((space.n, 2), np.inf)  # the box's volume when a face closed on failures
        self.reopened = np.zeros((space.n, 2), dtype=int)
        self.max_queries, self.samples_per_face, self.max_failure = max_queries, samples_per_face, max_failure
        self.used = 0
        self.failed_volume = 0.0  # estimated volume of failing views taken in
        self.done = False
        self._pending: list = []

    def _slab(self, d: int, side: int) -> tuple[np.ndarray, np.ndarray] | None:
        p = self.space.parameters[d]
        a, b = self.a.copy(), self.b.copy()
        if side:
            a[d], b[d] = self.b[d], self.b[d] + self.step[d, 1]
        else:
            a[d], b[d] = self.a[d] - self.step[d, 0], self.a[d]
        if p.periodic:
            room = p.width - self.delta[d] - (self.b[d] - self.a[d])
            if room <= 1e-12:
                return None
            a[d], b[d] = (a[d], min(b[d], self.b[d] + room)) if side else (max(a[d], self.a[d] - room), b[d])
        else:
            a[d], b[d] = max(a[d], p.low), min(b[d], p.high)
        return (a, b) if b[d] - a[d] > 1e-12 else None

    def propose(self) -> np.ndarray:
        n = self.space.n
        slabs = []
        # a face closed on failures while the box was small opens again once the box has doubled (a pocket, not a wall)
        volume = self._volume(self.a, self.b)
        again = self.closed & (volume >= 2 * self.closed_at) & (self.reopened < MAX_REOPEN)
        self.closed[again], self.closed_at[again] = False, np.inf
        self.reopened[again] += 1
        self.step[again] = (np.repeat(self.delta[:, None], 2, axis=1) * 2.0)[again]
        for d in range(n):
            for side in (0, 1):
                if self.closed[d, side] or self.used + self.samples_per_face * (len(slabs) + 1) > self.max_queries:
                    continue  # the faces that fit max_queries this round
                slab = self._slab(d, side)
                if slab is None:
                    self.closed[d, side] = True
                else:
                    slabs.append(((d, side), slab))
        if not slabs:
            self.done = True
            return np.zeros((0, n))
        m = self.samples_per_face
        points = [uniform(self.rng, a, b, m) for _, (a, b) in slabs]
        self._pending = [(face, slab, p) for (face, slab), p in zip(slabs, points)]
        self.used += m * len(slabs)
        return np.concatenate(points)

    def _volume(self, a: np.ndarray, b: np.ndarray) -> float:
        # widths relative to the step, so that a box thin in one parameter still has a volume
        return float(np.prod(np.maximum(b - a, 0.0) / self.delta + 1.0))

    def _moved(self, d: int, side: int, depth: float) -> tuple[np.ndarray, np.ndarray]:
        """The box with face (d, side) moved out by ``depth`` (a periodic parameter's box never wraps onto itself:
        both its faces may move in one round)."""
        a, b = self.a.copy(), self.b.copy()
        p = self.space.parameters[d]
        if p.periodic:
            depth = min(depth, max(p.width - self.delta[d] - (b[d] - a[d]), 0.0))
        if side:
            b[d] += depth
        else:
            a[d] -= depth
        return a, b

    def update(self, passes: np.ndarray) -> None:
        passes = np.asarray(passes, dtype=bool)
        m = self.samples_per_face
        for i, ((d, side), (a, b), points) in enumerate(self._pending):
            ok = passes[i * m : (i + 1) * m]
            depth = points[:, d] - a[d] if side else b[d] - points[:, d]  # how far beyond the face
            share = 1.0 - ok.mean()
            new_a, new_b = self._moved(d, side, b[d] - a[d])
            grown = self._volume(new_a, new_b)
            failed = self.failed_volume + share * (grown - self._volume(self.a, self.b))
            first = float(depth[~ok].min()) if share else np.inf  # the slab's first failure
            wall = share > 0 and (~ok[depth >= first]).mean() >= 0.5  # most beyond it fail too: a wall, not a pocket
            if share == 0 or (not wall and failed <= self.max_failure * grown):
                self.a, self.b, self.failed_volume = new_a, new_b, failed
                if share == 0:
                    self.step[d, side] *= 2.0
                continue
            cut = float(depth[ok & (depth < first)].max(initial=0.0))  # the last pass before the first failure
            self.a, self.b = self._moved(d, side, cut)
            thin = self.step[d, side] <= self.delta[d] / FINE + 1e-12  # this slab was already the finest
            self.step[d, side] = max(first - cut, self.delta[d] / FINE) if wall else self.step[d, side] / 2.0
            if thin or self.step[d, side] < self.delta[d] / FINE - 1e-12:
                self.closed[d, side] = True
                self.closed_at[d, side] = self._volume(self.a, self.b)
