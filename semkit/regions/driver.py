"""The search driver: [`find_regions`][semkit.find_regions] runs any number of region algorithms together.

Every step batches the proposals of all starts and all algorithms into one
call of f (and one of ``f.gradient`` where an algorithm needs gradients and f
has its own), then hands each search its values. With ``store`` a search
is checkpointed and resumes where it stopped. The results are labeled: an
``xarray.Dataset`` over ``start``, ``algorithm`` and ``param``.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..function import Evaluation, ScoreFunction, as_function, describe_attrs, store_identity
from ..function.differences import difference_points, difference_quotients
from ..function.protocol import PlainFunction
from ..maps import interpolate
from ..scores import checked_scores
from ..space import Space
from ..store import Checkpoint, check_format, locked, matching, versioned, write_dataset
from ..version import VERSION
from ..validation import check_count
from .base import ALGORITHMS, RegionAlgorithm
from .paper import PAPER_ALGORITHMS
from .rules import DEFAULT_STEP_RULE, STEP_RULES, StepRule


# --------------------------------------------------------------- the driver
def find_regions(
    f: "Callable[[np.ndarray], Any] | xr.Dataset",
    starts: Any,
    algorithms: "str | RegionAlgorithm | Sequence[str | RegionAlgorithm]" = PAPER_ALGORITHMS,
    *,
    space: Space | None = None,
    iterations: int = 600,
    step_rule: "str | StepRule" = DEFAULT_STEP_RULE,
    criterion: Criterion | str | None = None,
    store: str | os.PathLike | None = None,
    key: str | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Grow a region around each start with each algorithm.

    Every step batches the proposals of all starts and all algorithms into one call of f. Gradients (OIR_W) come
    from ``f.gradient`` when f has one (autograd through a differentiable renderer, else what f itself does) and
    central differences of f otherwise. With ``store`` the search is kept: its state is saved every few seconds and
    when it is interrupted (Ctrl-C, an error), the same call resumes from the last saved step, a finished search is
    read back, and a store made by another function or with other settings is refused.

    Parameters
    ----------
    f : callable or Dataset
        Maps points [B, n] to scores [B]; or a map (a Dataset from [`semantic_map`][semkit.semantic_map], interpolated: no
        renders).
    starts : array or dict
        Points of ``space`` to grow a box from, one search per start and algorithm.
    algorithms : str, RegionAlgorithm or sequence of them, default ("naive", "oir_b", "oir_w")
        Names in `ALGORITHMS` ("naive", "oir_b", "oir_w", "verified"), made with their defaults
        and ``step_rule`` and ``criterion``; or configured algorithm objects (``OIRB(alpha=0.1)``,
        ``Verified(max_failure=0.01)``). Each may run once.
    space : Space, optional
        The Space of the starts and boxes; None: ``f.space``, or the map's.
    iterations : int, default 600
        The most steps a search takes.
    step_rule : str or StepRule, default "faithful"
        How the paper's algorithms step: "faithful", the paper's steps; "adaptive", the same flow to the same horizon
        in fewer, larger steps; or a [`StepRule`][semkit.regions.StepRule] object such as
        ``AdaptiveSteps(min_motion=0.01)``.
    criterion : Criterion or str, optional
        What a verified box's views must pass (a [`Criterion`][semkit.Criterion] or its spec); None: top-1 correct. Only
        with "verified": the paper's algorithms follow the score and take none.
    store : str or path, optional
        A ``.nc`` or ``.zarr`` path to keep the search in; None: nothing is saved.
    key : str, optional
        Names a plain callable for store matching; None: it is recognised by its values at fixed probe points.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    Dataset
        Over ``start``, ``algorithm`` and ``param`` (and ``iteration`` for the traces): the boxes' ``lower`` and
        ``upper`` bounds, ``lower_trace``, ``upper_trace`` and ``loss`` per step, ``queries``, ``converged``,
        ``iterations`` and ``start_passes`` per search; coords ``start_point`` and ``units``; attrs record the
        algorithms, step rule, criterion, gradient source, Space and f.

    Raises
    ------
    ValueError
        No starts or no algorithms, an algorithm twice, ``criterion`` without "verified" (or differing from an
        algorithm object's), a start outside the Space.
    StoreError
        The store holds another function's search or other settings.
    """
    if isinstance(f, xr.Dataset):
        f = interpolate(f, space=space)
    check_count(iterations, "iterations")
    algorithms, rule = _made(algorithms, step_rule, criterion)
    fd_step = next((m.fd_step for m in algorithms if m.needs_gradient and m.fd_step), 1.0)
    fn = as_function(f, space=space, fd_step=fd_step)
    space = space or fn.space
    if np.size(starts) == 0:
        raise ValueError(f"no starts given: pass at least one point of the Space {list(space.names)} to grow a region "
                         "from, e.g. [[130, 30]]")
    driver = _Driver(fn, space, algorithms, space.points(starts), iterations)
    attrs = {"step_rule": rule.name}
    if store is None:
        return driver.run(progress, attrs)
    return _stored(driver, store, key, attrs, progress)


def _made(algorithms: "str | RegionAlgorithm | Sequence[str | RegionAlgorithm]", step_rule: "str | StepRule",
          criterion: Criterion | str | None) -> tuple[list[RegionAlgorithm], StepRule]:
    """The algorithm objects of find_regions' ``algorithms`` (names made with ``step_rule`` and ``criterion``), each
    at most once, and the step rule; a criterion that no algorithm judges by is refused."""
    specs = [algorithms] if isinstance(algorithms, (str, RegionAlgorithm)) else list(algorithms)  # names or objects; made below
    if not specs:
        raise ValueError(f"no algorithms given; choose from {ALGORITHMS.names()}")
    rule = STEP_RULES.create(step_rule)
    if criterion is not None:
        criterion = Criterion.resolve(criterion)
        if not any((ALGORITHMS[m] if isinstance(m, str) else m).needs_classes for m in specs):
            raise ValueError("criterion= judges verified boxes (algorithms=('verified',)); the paper's algorithms follow "
                             "the score and take no criterion")
    made = [_judged_by(ALGORITHMS.create(m, {"step_rule": rule, "criterion": criterion}), criterion) for m in specs]
    names = [m.name for m in made]
    if len(set(names)) != len(names):
        raise ValueError(f"each algorithm may run once per search, got {names}")
    return made, rule


def _stored(driver: "_Driver", store: str | os.PathLike, key: str | None, attrs: dict[str, Any], progress: bool) -> xr.Dataset:
    """The search kept in ``store``: read back when finished, else resumed from its checkpoint (saved as it
    runs) and written, unless another process finished it meanwhile (then theirs is read back)."""
    settings = versioned({"function": store_identity(driver.fn, key), "space": driver.space.to_dict(),
                          "starts": driver.u0.tolist(), "algorithms": [m.describe() for m in driver.algorithms],
                          "iterations": driver.iterations, "gradient": driver.gradient_source})
    path = Path(store)
    check_format(path, what="region search's store")
    done = matching(path, settings)
    if done is not None:
        return done
    checkpoint = Checkpoint(path.with_name(path.name + ".partial.npz"), settings)
    result = driver.run(progress, {**attrs, "fingerprint": checkpoint.fingerprint, "settings": json.dumps(settings)}, checkpoint)
    with locked(path):
        theirs = matching(path, settings)  # another process may have finished it meanwhile
        if theirs is None:
            write_dataset(result, path)
        checkpoint.path.unlink(missing_ok=True)
    return result if theirs is None else theirs


def _judged_by(algorithm: RegionAlgorithm, criterion: Criterion | None) -> RegionAlgorithm:
    """``algorithm`` judging views by ``criterion`` (find_regions' ``criterion=``): an algorithm object with its default
    criterion takes it; one configured with another criterion is refused (give the criterion once)."""
    if criterion is None or not algorithm.needs_classes or algorithm.criterion == criterion:
        return algorithm
    if algorithm.criterion != type(algorithm)().criterion:
        raise ValueError(f"criterion={criterion.spec()!r} differs from the criterion of {algorithm!r}: give it once, on "
                         "the algorithm object or as criterion=")
    judged = copy.copy(algorithm)
    judged.criterion = criterion
    return judged


#: Seconds between two saves of a stored region search (it is saved when interrupted too).
CHECKPOINT_SECONDS = 10.0


class _Driver:
    """Runs the searches of all algorithms together: one batched call of f (and of f.gradient) per step."""

    def __init__(self, fn: ScoreFunction, space: Space, algorithms: list[RegionAlgorithm], u0: np.ndarray, iterations: int) -> None:
        algorithms = [m.for_function(fn) for m in algorithms]
        self.fn, self.space, self.algorithms, self.u0, self.iterations = fn, space, algorithms, u0, iterations
        self.searches = [m.search(space, u0, iterations) for m in algorithms]
        # a plain callable's differences go into the same batched call as the values
        self.differences = fn.difference_steps if isinstance(fn, PlainFunction) else None
        self.gradient_source = fn.gradient_method if any(m.needs_gradient for m in algorithms) else "not used"
        self.classes = max((m.top_classes for m in algorithms if m.needs_classes), default=0)  # top classes to ask for
        self.t = 0

    def _inside(self, points: np.ndarray) -> np.ndarray:
        """Points wrapped (periodic) and clipped (bounded) into the Space."""
        return self.space.clip(points)

    def step(self) -> None:
        n = self.space.n
        proposals = [s.propose() for s in self.searches]
        values = [p.values for p in proposals]
        wanted = np.concatenate([p.gradients for p in proposals]) if proposals else np.empty((0, n))
        stepped = None
        if len(wanted) and self.differences is not None:
            stepped = difference_points(wanted, self.space, self.differences)
            values.append(stepped.reshape(-1, n))
        points = np.concatenate(values) if values else np.empty((0, n))
        ev = None
        if not len(points):
            f = np.empty(0)
        elif self.classes:  # an algorithm judges classes: one call gives scores and top classes
            ev = self.fn.evaluate(self._inside(points), k=self.classes)
            f = np.asarray(ev.score, dtype=float).reshape(-1)
        else:
            f = np.asarray(self.fn(self._inside(points)), dtype=float).reshape(-1)
        f = checked_scores(f, points)
        cost = 0.0
        if stepped is not None:
            grads = difference_quotients(f[len(points) - stepped.size // n:], stepped)
            cost = 2.0 * n
        elif len(wanted):
            before = self.fn.queries
            grads = np.asarray(self.fn.gradient(self._inside(wanted)), dtype=float).reshape(len(wanted), n)
            cost = (self.fn.queries - before) / len(wanted)
        else:
            grads = np.empty((0, n))
        offset, g_offset = 0, 0
        for search, m, p in zip(self.searches, self.algorithms, proposals):
            sl = slice(offset, offset + len(p.values))
            part = None
            if m.needs_classes:
                part = Evaluation(f[sl], None, None, None) if ev is None or ev.top1 is None else \
                    Evaluation(f[sl], ev.top1[sl], ev.topk[sl], ev.topk_prob[sl])
            search.update(f[sl], grads[g_offset:g_offset + len(p.gradients)], cost, part)
            offset += len(p.values)
            g_offset += len(p.gradients)
        self.t += 1

    def run(self, progress: bool, attrs: dict[str, Any], checkpoint: Checkpoint | None = None) -> xr.Dataset:
        from tqdm.auto import tqdm

        saved = checkpoint.load() if checkpoint is not None else None
        if saved is not None:
            self.t = int(saved["t"])
            for j, search in enumerate(self.searches):
                search.restore({k.split(":", 1)[1]: v for k, v in saved.items() if k.startswith(f"{j}:")})
        bar = tqdm(total=self.iterations, initial=self.t, desc="robust regions", unit="step", disable=not progress, leave=False)
        last_save = time.monotonic()
        try:
            while self.t < self.iterations and any(s.active.any() for s in self.searches):
                self.step()
                bar.update()
                if checkpoint is not None and time.monotonic() - last_save > CHECKPOINT_SECONDS:
                    checkpoint.save(self.state())
                    last_save = time.monotonic()
        except BaseException:
            if checkpoint is not None:  # every finished step is kept; the same call resumes from it
                checkpoint.save(self.state())
                print(f"\nstopped at step {self.t} of {self.iterations}; saved in {checkpoint.path}: rerun to resume",
                      file=sys.stderr)
            raise
        finally:
            bar.close()
        return self.dataset(attrs)

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"t": np.array(self.t)}
        for j, search in enumerate(self.searches):
            arrays.update({f"{j}:{k}": v for k, v in search.state().items()})
        return arrays

    def dataset(self, attrs: dict[str, Any]) -> xr.Dataset:

        results = [s.result() for s in self.searches]
        used = int(max(r["iterations"].max() for r in results))

        def along(name: str, trace: bool = False) -> np.ndarray:
            arrays = [r[name][:used] if trace else r[name] for r in results]
            return np.stack(arrays, axis=2 if trace else 1)  # algorithm after start

        names = list(self.space.names)
        coords = {
            "start": np.arange(len(self.u0)),
            "algorithm": [m.name for m in self.algorithms],
            "param": names,
            "iteration": np.arange(used),
            "start_point": (("start", "param"), self.u0),
            "units": ("param", [self.space.units[n] for n in names]),
        }
        dims = ("start", "algorithm", "param")
        tdims = ("iteration",) + dims
        return xr.Dataset(
            {
                "lower": (dims, along("lower"), {"long_name": "lower bound of the box"}),
                "upper": (dims, along("upper"), {"long_name": "upper bound of the box (periodic bounds are unwrapped)"}),
                "lower_trace": (tdims, along("lower_trace", True)),
                "upper_trace": (tdims, along("upper_trace", True)),
                "loss": (tdims[:-1], along("loss", True)),
                "queries": (dims[:-1], along("queries"), {"long_name": "points evaluated (gradients included)"}),
                "converged": (dims[:-1], along("converged"), {"long_name": "stopped before the last iteration: its bounds no longer moved (min_motion)"}),
                "iterations": (dims[:-1], along("iterations"), {"long_name": "steps taken"}),
                "start_passes": (dims[:-1], np.stack([r.get("start_passes", np.full(len(self.u0), np.nan)) for r in results],
                                                     axis=1).astype(float),
                                 {"long_name": "the start passes the algorithm's criterion (1 or 0; NaN: it has none)"}),
                **{name: (dims[:-1], np.stack([r.get("extra", {}).get(name, np.full(len(self.u0), np.nan)) for r in results],
                                              axis=1).astype(float), {"long_name": EXTRA_NAMES.get(name, name)})
                   for name in dict.fromkeys(k for r in results for k in r.get("extra", {}))},
            },
            coords=coords,
            attrs={
                "title": "Robust regions",
                **attrs,
                **next((m.criterion.attrs() for m in self.algorithms if getattr(m, "criterion", None) is not None), {}),
                "gradient_source": self.gradient_source,
                "algorithms": json.dumps([m.describe() for m in self.algorithms]),
                "space": json.dumps(self.space.to_dict()),
                "semkit_version": VERSION,
                **describe_attrs(self.fn.describe()),
            },
        )


#: What the per-start variables that algorithms may add mean (NaN for algorithms without them).
EXTRA_NAMES = {
    "certified": "the box met its certificate (1; NaN: the algorithm has none)",
    "check_n_samples": "fresh uniform samples of the final box that certified it",
    "check_failures": "of those, views failing the criterion",
    "failure_bound": "Clopper-Pearson upper bound of the box's failure share (at the split confidence)",
    "audit_n_samples": "fresh uniform continuous views that audited the lattice box",
    "audit_failures": "of those, views failing the criterion",
    "audit_bound": "Clopper-Pearson upper bound of the box's failure share at the stated confidence",
}


