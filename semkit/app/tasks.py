"""Background work for the explorer: a question answered in a thread, with progress, that can be cancelled.

The explorer's trust questions (a radius, a failure search, a verified box, a
certificate) take seconds to minutes of renders; run in the kernel's thread
they would freeze the sliders. A `Task` runs one in a thread. The score
function the question uses is wrapped in a `Watched` function: it evaluates in
small chunks, each under the explorer's lock (one renderer and one set of
networks serve both the sliders and the task, one chunk at a time), counts the
views for the progress bar, and stops the question between two chunks when
the task is cancelled (raising `Cancelled`, which the task reports as such). `give_back_memory` returns
what a closed explorer freed to the system.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from ..function import Evaluation

#: Views evaluated under the lock at a time: a slider move waits for at most this many (a gradient, asked by no
#: question the explorer offers, runs whole under the lock).
CHUNK = 8

_current = threading.local()


class Cancelled(RuntimeError):
    """The task was cancelled: the question was left unanswered."""


class Watch:
    """A task's cancel flag and view counter (what a `Watched` function reports to)."""

    def __init__(self, on_views: Callable[[int], None] | None = None) -> None:
        self.cancelled = threading.Event()
        self.views = 0
        self.on_views = on_views

    def count(self, n: int) -> None:
        self.views += n
        if self.on_views is not None:
            self.on_views(self.views)


def current_watch() -> Watch | None:
    """The watch of the task running in this thread (None outside a task)."""
    return getattr(_current, "watch", None)


class Watched:
    """A score function evaluated in chunks under ``lock``, counted by and cancelled through ``watch``; ``context``
    records what it was asked about (the explorer's shape, network and criterion).

    It follows the ScoreFunction protocol of the function it wraps (space, queries, gradient_method, describe,
    evaluate, gradient), so the trust functions take it as they take that function.
    """

    def __init__(self, f: Any, lock: threading.RLock, watch: Watch | None, context: tuple = ()) -> None:
        self.f, self.lock, self.watch, self.context = f, lock, watch, context
        self.space = f.space
        self.gradient_method = f.gradient_method

    @property
    def queries(self) -> int:
        return self.f.queries

    def describe(self) -> dict[str, Any]:
        return self.f.describe()

    def __call__(self, points: Any) -> np.ndarray:
        return self.evaluate(points).score

    def evaluate(self, points: Any, k: int = 1) -> Evaluation:
        pts = self.space.points(points)
        if not len(pts):
            with self.lock:
                return self.f.evaluate(pts, k=k)
        parts = []
        for start in range(0, len(pts), CHUNK):
            self._check()
            with self.lock:
                parts.append(self.f.evaluate(pts[start : start + CHUNK], k=k))
            if self.watch is not None:
                self.watch.count(len(pts[start : start + CHUNK]))
        return Evaluation(*(None if parts[0][i] is None else np.concatenate([p[i] for p in parts]) for i in range(4)))

    def gradient(self, points: Any) -> np.ndarray:
        self._check()
        with self.lock:
            return self.f.gradient(points)

    def _check(self) -> None:
        if self.watch is not None and self.watch.cancelled.is_set():
            raise Cancelled("cancelled")


class Task:
    """``work()`` run in a daemon thread; ``done(result, error)`` is called in that thread when it ends.

    Parameters
    ----------
    work : callable
        The question, called with no arguments; a `Watched` function it uses reports to this task.
    done : callable
        Called with the result and None, or None and the exception (a `Cancelled` one when cancelled).
    on_views : callable, optional
        Called with the number of views evaluated so far, as they are.
    """

    def __init__(self, work: Callable[[], Any], done: Callable[[Any, BaseException | None], None],
                 on_views: Callable[[int], None] | None = None) -> None:
        self.watch = Watch(on_views)
        self.result: Any = None
        self.error: BaseException | None = None
        self._work, self._done = work, done
        self.thread = threading.Thread(target=self._run, daemon=True, name="semkit-explorer-task")
        self.thread.start()

    def _run(self) -> None:
        _current.watch = self.watch
        try:
            self.result = self._work()
        except BaseException as error:  # reported to done(), never lost in the thread
            self.error = error
        finally:
            _current.watch = None
        self._done(self.result, self.error)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def cancel(self) -> None:
        """Ask the question to stop (it stops before its next chunk of views)."""
        self.watch.cancelled.set()

    def join(self, timeout: float | None = None) -> Any:
        """Wait for the task; its result (or its error, raised; a TimeoutError if it runs on past ``timeout``)."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"the task still runs after {timeout} s: wait longer, or cancel() it")
        if self.error is not None:
            raise self.error
        return self.result


def give_back_memory() -> None:
    """Return the heap a closed explorer freed to the system (glibc keeps it otherwise: ~5 MB a cycle, docs/explorer.md)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
