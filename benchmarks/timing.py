"""What the benchmark scripts share: medians of timed runs, and random views of the paper's space."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def median_seconds(fn: Callable[[], object], repeats: int, sync: Callable[[], object] = lambda: None) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up (caches, lazy set-up); ``sync`` waits for
    asynchronous work (a GPU) before each clock read."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def views(n: int, seed: int = 0) -> np.ndarray:
    """``n`` uniform random (azimuth, elevation) points of ``Space.paper()``."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0, 360, n), rng.uniform(-10, 90, n)])
