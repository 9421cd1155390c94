"""Network Semantic Maps: a function's scores over a dense grid of a Space, as xarray data.

``semantic_map(f, space=..., step=...)`` evaluates any f (points [B, n] -> scores
[B]) on a grid and returns an ``xarray.Dataset`` whose dims are the Space's
parameters. With ``store=`` (a ``.nc`` or ``.zarr`` path) finished chunks
are saved as they are computed, so an interrupted run resumes where it
stopped: each chunk goes to a journal folder beside the store, and the
complete map is written when the grid is done, both through semkit's one
storage layer (atomic writes, a lock per store, fingerprints; [`semkit.store`][semkit.store]).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..function import Evaluation, ScoreFunction, SemanticFunctions, as_function, describe_attrs, store_identity
from ..scores import checked_scores
from ..space import Space
from ..store import Journal, file_stem, fingerprint, versioned
from ..version import VERSION
from ..validation import check_count

#: Points per evaluation call and per saved chunk, unless the caller sets chunk_size.
DEFAULT_CHUNK = 64


def semantic_map(
    f: Callable[[np.ndarray], Any],
    *,
    space: Space | None = None,
    step: float | Sequence[float] | Mapping[str, float] | None = None,
    store: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = True,
    key: str | None = None,
    adaptive: bool = False,
    max_error: float | None = None,
) -> xr.Dataset:
    """Evaluate ``f`` on a grid of ``space`` and return the map as an ``xarray.Dataset``.

    The grid is the Space's with spacing ``step`` ([`Space.grid`][semkit.Space.grid]), evaluated in chunks with a progress bar.
    With ``store``, finished chunks are saved as they are computed: rerunning the same call after an interruption
    computes only what is missing, a complete store is simply read back, and a store made by another function or
    with other settings is refused. Stores are matched by what determines the results (README, "How stores are
    matched"). Processes that compute one store at once share its finished chunks.

    Parameters
    ----------
    f : callable or SemanticFunctions
        Maps points [B, n] to scores [B]: a [`SemanticFunction`][semkit.SemanticFunction] (then the map also holds ``top1`` and
        ``correct``), an analytic function, an interpolated map; or a [`SemanticFunctions`][semkit.SemanticFunctions] group (one
        shape, several networks, each view rendered once: the map gains a ``network`` dim).
    space : Space, optional
        The Space to map; None: ``f.space``.
    step : float, sequence of float or mapping of str to float, optional
        The grid's spacing, per parameter or for all ([`Space.grid`][semkit.Space.grid]); None: the Space's default step.
    store : str or path, optional
        A ``.nc`` or ``.zarr`` path to save the map in, chunk by chunk; for a group, a folder holding one
        ``<network>.nc`` per network. None: nothing is saved.
    chunk_size : int, default DEFAULT_CHUNK
        Points per evaluation call and per saved chunk.
    progress : bool, default True
        Show a progress bar.
    key : str, optional
        Names a plain callable for store matching; None: it is recognised by its values at 64 fixed probes and up
        to 256 of the grid's points. Not for a group (its networks describe themselves).
    adaptive : bool, default False
        Evaluate ``f`` on a coarse grid first and refine only the cells that interpolation cannot be trusted with
        (estimated score error above ``max_error``, or corners that disagree on ``correct``; see
        `semkit.maps.adaptive`). The map has the same grid.
    max_error : float, optional
        With ``adaptive``: the bound on the estimated interpolation error of the score; None:
        `semkit.maps.DEFAULT_MAX_ERROR`.

    Returns
    -------
    Dataset
        ``score`` over the Space's parameters as dims (plus ``network`` for a group), and ``top1`` and ``correct``
        for a classifier's f; coords carry units, periodicity and valid range, fixed parameters are scalar coords.
        Adaptive maps add ``evaluated`` (which points were computed; the others hold the interpolated score and the
        top-1 class of the nearest evaluated corner) and attr ``max_error``. Attrs describe f and the settings
        (``fingerprint``, ``settings``, ``space``, ``grid_step``, ``semkit_version``).

    Raises
    ------
    ValueError
        A bad step or a grid too large, ``max_error`` without ``adaptive``, ``key`` with a group.
    StoreError
        The store holds another function's map, other settings, or data semkit did not write.
    """
    if isinstance(f, SemanticFunctions):
        if key is not None:
            raise ValueError("key= names one function's store; the networks of SemanticFunctions describe themselves")
        if space is not None and space != f.space:
            raise ValueError(f"space= is {space}, but the networks' functions have their own Space {f.space} and evaluate "
                             "points in it: build SemanticFunctions over the Space you want (space=...), or drop space=")
        space = f.space
        grid = space.grid(step)
        stores = [None if store is None else Path(store) / f"{file_stem(n)}.nc" for n in f.networks]
        maps = network_maps(f, grid, stores, space=space, chunk_size=chunk_size, progress=progress, adaptive=adaptive,
                            max_error=max_error)
        return _by_network(maps, f.networks)
    fn = as_function(f, space=space)
    space = space or fn.space
    grid = space.grid(step)
    [ds] = _maps([fn], lambda requests: {0: _evaluate(fn, requests[0])}, space, grid,
                 [None if store is None else Path(store)], [key], chunk_size, progress, adaptive, max_error)
    return ds


def network_maps(
    f: SemanticFunctions,
    grid: Mapping[str, np.ndarray],
    stores: Sequence[Path | None],
    *,
    space: Space,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = True,
    adaptive: bool = False,
    max_error: float | None = None,
) -> list[xr.Dataset]:
    """Each network's map of ``f`` over ``grid`` (one store path or None per network), every view rendered once.

    A network whose store is complete is read back and not evaluated; the
    others share each chunk's renders. An adaptive map is refined where its
    own network needs it, as if mapped alone, the views that several networks
    ask for at once rendered once (see `semkit.maps.adaptive`).
    """
    networks = f.networks

    def evaluate(requests: Mapping[int, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
        ev = f.evaluate_each({networks[i]: points for i, points in requests.items()})
        return {i: _checked(points, ev[networks[i]]) for i, points in requests.items()}

    return _maps(f.functions, evaluate, space, grid, stores, [None] * len(networks), chunk_size, progress, adaptive, max_error)


def _by_network(maps: Sequence[xr.Dataset], networks: Sequence[str]) -> xr.Dataset:
    """Maps of one shape under several networks, stacked along ``network`` (what the maps share stays in attrs)."""
    out = xr.concat(list(maps), dim=xr.DataArray(list(networks), dims="network", name="network"), combine_attrs="drop_conflicts")
    out.attrs["title"] = "Network semantic maps"
    return out


#: ``evaluate({i: points})``: per function index i, the values (``score``, and ``top1`` where given) at its points.
_Evaluate = Callable[[Mapping[int, np.ndarray]], dict[int, dict[str, np.ndarray]]]


def _maps(fns: Sequence[ScoreFunction], evaluate: _Evaluate, space: Space, grid: Mapping[str, np.ndarray],
          stores: Sequence[Path | None], keys: Sequence[str | None], chunk_size: int, progress: bool, adaptive: bool,
          max_error: float | None) -> list[xr.Dataset]:
    """The maps of ``fns`` over ``grid``; ``evaluate({i: points})`` answers for the functions at indices i, each at its points."""
    check_count(chunk_size, "chunk_size")
    if adaptive:
        from .adaptive import resolve_max_error

        max_error = resolve_max_error(max_error)
    elif max_error is not None:
        raise ValueError("max_error= is for adaptive maps: pass adaptive=True as well")
    job = _MapJob.open(fns, evaluate, space, grid, stores, keys, adaptive, max_error)
    todo = job.todo()
    if todo:
        if adaptive:
            job.refine(todo, chunk_size, progress)
        else:
            _DenseRun(job, todo, progress).run(chunk_size)
    return job.results


@dataclass
class _MapJob:
    """What the helpers of one `_maps` call share: the functions, the grid and its points, each map's journal and
    settings, and the maps finished so far (None: still to do)."""

    fns: Sequence[ScoreFunction]
    evaluate: _Evaluate
    space: Space
    grid: Mapping[str, np.ndarray]
    points: np.ndarray
    max_error: float | None
    journals: list[Journal | None]
    settings: list[dict[str, Any]]
    results: list[xr.Dataset | None]

    @classmethod
    def open(cls, fns: Sequence[ScoreFunction], evaluate: _Evaluate, space: Space, grid: Mapping[str, np.ndarray],
             stores: Sequence[Path | None], keys: Sequence[str | None], adaptive: bool, max_error: float | None) -> "_MapJob":
        """The job with each function's journal (where it has a store) and settings, a complete store read back."""
        points = np.stack([g.ravel() for g in np.meshgrid(*grid.values(), indexing="ij")], axis=-1)
        refinement = {"adaptive": {"max_error": max_error}} if adaptive else {}
        journals: list[Journal | None] = []
        results: list[xr.Dataset | None] = []
        settings = []
        for fn, store, key in zip(fns, stores, keys):
            journal = None
            if store is not None:
                journal = Journal(store, {**map_settings(store_identity(fn, key, points), space, grid), **refinement})
            journals.append(journal)
            results.append(journal.complete_map() if journal is not None else None)
            settings.append(journal.settings if journal is not None else {**map_settings(fn.describe(), space, grid), **refinement})
        return cls(fns, evaluate, space, grid, points, max_error, journals, settings, results)

    def todo(self) -> list[int]:
        """The indices of the maps not finished yet."""
        return [i for i, r in enumerate(self.results) if r is None]

    def finish(self, i: int, values: Mapping[str, np.ndarray]) -> xr.Dataset:
        """Map i as a Dataset from its values over the grid, written to its store where it has one."""
        shape = tuple(len(v) for v in self.grid.values())
        ds = _dataset(self.fns[i], self.space, self.grid, shape, values["score"], values.get("top1"), self.settings[i])
        if "evaluated" in values:
            ds["evaluated"] = (list(self.grid), values["evaluated"], {"long_name": "computed (else interpolated)"})
            ds.attrs["max_error"] = self.max_error
        return self.journals[i].finish(ds) if self.journals[i] is not None else ds

    def refine(self, todo: list[int], chunk_size: int, progress: bool) -> None:
        """Finish the adaptive maps ``todo``; one process refines a stored map at a time, another waits and reads it back."""
        from .adaptive import adaptive_values

        periods = [p.width if self.space.closes_circle(p.name, self.grid[p.name]) else None for p in self.space.parameters]
        with Journal.computing([self.journals[i] for i in todo if self.journals[i] is not None]):
            for i in todo:
                self.results[i] = self.journals[i].complete_map() if self.journals[i] is not None else None
            todo = [i for i in todo if self.results[i] is None]
            if not todo:
                return
            # only the functions to do take part: each is refined where it needs it, whatever the others do
            values = adaptive_values(self._evaluating(todo), self.grid, periods, self.max_error,
                                     [self.fns[i].describe().get("label") for i in todo],
                                     journals=[self.journals[i] for i in todo], chunk_size=chunk_size, progress=progress)
            for i, value in zip(todo, values):
                self.results[i] = self.finish(i, value)

    def _evaluating(self, todo: list[int]) -> _Evaluate:
        """``evaluate`` for the functions to do, numbered by their position in ``todo`` (as the refinement numbers them)."""

        def evaluate_todo(requests: Mapping[int, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
            answers = self.evaluate({todo[j]: points for j, points in requests.items()})
            return {j: answers[todo[j]] for j in requests}

        return evaluate_todo


class _DenseRun:
    """The dense evaluation of the maps ``todo`` chunk by chunk: their values so far (from their journals first), the
    progress bar, and the chunks shared with other processes through the journals."""

    def __init__(self, job: _MapJob, todo: list[int], progress: bool) -> None:
        from tqdm.auto import tqdm

        self.job, self.todo = job, todo
        self.n = n = len(job.points)
        self.score = {i: np.full(n, np.nan) for i in todo}
        self.top1: dict[int, np.ndarray] = {}
        self.done = {i: np.zeros(n, dtype=bool) for i in todo}
        for i in todo:
            if job.journals[i] is not None:
                for start, chunk in job.journals[i].chunks():
                    self.keep(i, start, chunk)
        self.total = n * len(todo)
        self.bar = tqdm(total=self.total, initial=self.saved(), desc="semantic map", unit="pt", disable=not progress, leave=False)

    def saved(self) -> int:
        """The points known so far, over all maps to do."""
        return int(sum(d.sum() for d in self.done.values()))

    def keep(self, i: int, start: int, result: Mapping[str, np.ndarray]) -> None:
        """Put map i's values of the chunk at ``start`` in place."""
        stop = start + len(result["score"])
        self.score[i][start:stop] = result["score"]
        if "top1" in result:
            self.top1.setdefault(i, np.full(self.n, -1, dtype=np.int64))[start:stop] = result["top1"]
        self.done[i][start:stop] = True

    def run(self, chunk_size: int) -> None:
        """Compute every chunk still missing, then finish the maps; on Ctrl-C, say where the points computed are saved."""
        # Processes sharing a store claim each chunk while they compute it: a chunk another process holds is left to
        # it and met again at the end (then waited for, and computed here only if that process stopped without it).
        deferred: list[tuple[int, int, int]] = []
        try:
            for start in range(0, self.n, chunk_size):
                deferred += self.chunk(start, min(start + chunk_size, self.n))
            for i, start, stop in deferred:
                self.wait(i, start, stop)
        except KeyboardInterrupt:
            saved = [str(self.job.journals[i].folder) for i in self.todo if self.job.journals[i] is not None]
            if saved:
                print(f"\ninterrupted: {self.saved()} of {self.total} points are saved in "
                      f"{', '.join(saved)}; rerun to resume", file=sys.stderr)
            raise
        finally:
            self.bar.close()
        for i in self.todo:
            if self.job.results[i] is None:
                values = {"score": self.score[i], **({"top1": self.top1[i]} if i in self.top1 else {})}
                self.job.results[i] = self.job.finish(i, values)

    def chunk(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """Compute the chunk [start, stop) of the maps that miss it; returns the (map, start, stop) that another process
        has claimed, left to it for now."""
        journals, which, deferred = self.job.journals, [], []
        with contextlib.ExitStack() as claims:
            for i in self.todo:
                if self.done[i][start:stop].all() or self.job.results[i] is not None:
                    continue
                if journals[i] is not None:
                    if self.theirs(i, start, stop):
                        continue
                    if not claims.enter_context(journals[i].claim(start)):
                        deferred.append((i, start, stop))
                        continue
                    if self.theirs(i, start, stop):  # saved between the look and the claim
                        continue
                which.append(i)
            if which:
                self.compute(which, start, stop)
        return deferred

    def wait(self, i: int, start: int, stop: int) -> None:
        """Wait for the process that claimed map i's chunk; compute it here if that process stopped without it."""
        journal = self.job.journals[i]
        if self.job.results[i] is not None or journal.path.exists() and self.theirs(i, start, stop):
            return
        with journal.wait(start):
            if not self.theirs(i, start, stop):
                self.compute([i], start, stop)

    def theirs(self, i: int, start: int, stop: int) -> bool:
        """Whether another process finished function i's map or its chunk at ``start`` (then it is kept here)."""
        journal = self.job.journals[i]
        if journal.path.exists():  # the whole map
            self.job.results[i] = journal.finish(None)
            return True
        chunk = journal.chunk(start, stop - start)  # ... or this chunk
        if chunk is not None:
            self.keep(i, start, chunk)
            self.bar.update(stop - start)
        return chunk is not None

    def compute(self, which: Sequence[int], start: int, stop: int) -> None:
        """Evaluate the chunk [start, stop) for the maps ``which`` in one call, saving each map's part in its journal."""
        for i, result in self.job.evaluate({i: self.job.points[start:stop] for i in which}).items():
            self.keep(i, start, result)
            if self.job.journals[i] is not None:
                self.job.journals[i].save(start, result)
            self.bar.update(stop - start)


def _evaluate(fn: ScoreFunction, points: np.ndarray) -> dict[str, np.ndarray]:
    return _checked(points, fn.evaluate(points))


def _checked(points: np.ndarray, ev: Evaluation) -> dict[str, np.ndarray]:
    """An evaluation's score (checked: one finite value per point) and top-1, as a map stores them."""
    score = checked_scores(ev.score, points)
    return {"score": score} if ev.top1 is None else {"score": score, "top1": np.asarray(ev.top1, dtype=np.int64)}


def map_settings(function: Mapping[str, Any], space: Space, grid: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """What determines a map's values: the function's identity, the Space, the grid, semkit's algorithms."""
    return versioned({
        "function": dict(function),
        "space": space.to_dict(),
        "grid": {name: [float(v) for v in values] for name, values in grid.items()},
    })


def _dataset(fn: ScoreFunction, space: Space, grid, shape, score, top1, settings) -> xr.Dataset:

    dims = list(grid)
    coords: dict[str, Any] = {
        name: (name, values, {"units": space.units[name], "periodic": int(space[name].periodic),
                              "valid_range": [space[name].low, space[name].high]}) for name, values in grid.items()
    }
    for name, value in space.fixed.items():
        coords[name] = ((), value, {"units": space.units.get(name, ""), "fixed": 1})
    data_vars: dict[str, Any] = {}
    info = fn.describe()
    label_name = info.get("label_name", "")
    data_vars["score"] = (dims, score.reshape(shape), {"long_name": f"P({label_name})" if label_name else "score", "units": "1"})
    if top1 is not None:
        data_vars["top1"] = (dims, top1.reshape(shape), {"long_name": "predicted class (index into the network's labels)"})
        data_vars["correct"] = (dims, top1.reshape(shape) == info["label"], {"long_name": f"top-1 is {label_name}"})
    attrs = {
        "title": "Network semantic map",
        "semkit_version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fingerprint(settings),
        "settings": json.dumps(settings),
        "space": json.dumps(settings["space"]),
        "grid_step": json.dumps({name: float(v[1] - v[0]) if len(v) > 1 else None for name, v in grid.items()}),
    }
    attrs.update(describe_attrs(info))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
