"""A query cache: the results of points already rendered and classified, by exact point.

Maps, region steps, verified boxes, radii and failure searches often ask
for the same view twice (a box's corners are its neighbour's, central
differences revisit points, a resumed search starts where it stopped). A
[`QueryCache`][semkit.function.cache.QueryCache] keeps each point's true-class score and top-k
predictions, keyed by the point's exact float64 values (periodic values
already wrapped), and forgets the least recently used points beyond
``size`` entries. It holds one function's answers; it is safe to use
from several threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

#: Entries kept by default: about 40 MB when full at 2 parameters and top-1 (measured 390 bytes an entry; 64 MB at top-5).
DEFAULT_SIZE = 100_000


class Lookup(NamedTuple):
    """What the cache knows about a batch of points."""

    hit: np.ndarray  #: [B] bool: the point is cached with at least k predictions
    score: np.ndarray  #: [B] the cached scores (NaN where missed)
    topk: np.ndarray  #: [B, k] the cached top-k classes (-1 where missed)
    topk_prob: np.ndarray  #: [B, k] their probabilities (NaN where missed)


class QueryCache:
    """Least-recently-used results of one function, by exact point (see the module's docstring).

    Parameters
    ----------
    size : int, default DEFAULT_SIZE
        The most points kept (100,000: about 40 MB at 2 parameters and top-1, 64 MB at top-5).

    Raises
    ------
    ValueError
        A size below 1.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError(f"a cache needs room for at least 1 point, got size={size} (use no cache instead)")
        self.size = int(size)
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, tuple[float, tuple[int, ...], tuple[float, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"QueryCache({len(self)} of {self.size} points, {self.hits} hits, {self.misses} misses)"

    def info(self) -> dict[str, float]:
        """Hits, misses, hit rate and entries so far."""
        asked = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hits / asked if asked else 0.0,
                "entries": len(self), "size": self.size}

    def clear(self) -> None:
        """Forget every point (and the hit counts)."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def count_repeats(self, n: int) -> None:
        """Count points answered as repeats of others in the same batch as hits (nothing rendered).

        Parameters
        ----------
        n : int
            How many points.
        """
        with self._lock:
            self.hits += int(n)

    def lookup(self, points: np.ndarray, k: int = 1) -> Lookup:
        """The cached results of points, counted as hits and misses.

        Parameters
        ----------
        points : numpy.ndarray [B, n]
            The points, periodic values already wrapped.
        k : int, default 1
            How many top predictions are wanted; a point cached with fewer is a miss.

        Returns
        -------
        Lookup
            ``hit`` [B], ``score`` [B] (NaN where missed), ``topk`` and ``topk_prob`` [B, k] (-1 and NaN where
            missed).
        """
        B = len(points)
        hit = np.zeros(B, bool)
        score = np.full(B, np.nan)
        topk = np.full((B, k), -1, np.int64)
        topk_prob = np.full((B, k), np.nan)
        with self._lock:
            for i, key in enumerate(_keys(points)):
                entry = self._entries.get(key)
                if entry is None or len(entry[1]) < k:
                    continue
                self._entries.move_to_end(key)
                hit[i] = True
                score[i], topk[i], topk_prob[i] = entry[0], entry[1][:k], entry[2][:k]
            self.hits += int(hit.sum())
            self.misses += int(B - hit.sum())
        return Lookup(hit, score, topk, topk_prob)

    def store(self, points: np.ndarray, score: np.ndarray, topk: np.ndarray, topk_prob: np.ndarray) -> None:
        """Keep the results of points, forgetting the least recently used beyond ``size``.

        Parameters
        ----------
        points : numpy.ndarray [B, n]
            The points, periodic values already wrapped.
        score : numpy.ndarray [B]
            Their true-class scores.
        topk : numpy.ndarray of int [B, k]
            Their top classes, best first.
        topk_prob : numpy.ndarray [B, k]
            Those classes' probabilities.
        """
        with self._lock:
            for key, s, idx, prob in zip(_keys(points), score.tolist(), topk.tolist(), topk_prob.tolist()):
                self._entries[key] = (s, tuple(idx), tuple(prob))
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def _keys(points: np.ndarray) -> list[bytes]:
    """One key per row: its float64 bytes, with -0.0 made 0.0 so that equal points share a key."""
    rows = np.ascontiguousarray(np.asarray(points, dtype=np.float64) + 0.0)
    return [row.tobytes() for row in rows]
