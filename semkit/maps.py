"""Network Semantic Maps: a function's scores over a dense grid of a Space, as xarray data.

``semantic_map(f, space, step)`` evaluates any f (points [B, n] -> scores
[B]) on a grid and returns an ``xarray.Dataset`` whose dims are the Space's
parameters. With ``store=`` (a ``.nc`` or ``.zarr`` path) finished chunks
are saved as they are computed, so an interrupted run resumes where it
stopped: each chunk goes to a journal folder beside the store, and the
complete map is written when the grid is done, both through semkit's one
storage layer (atomic writes, a lock per store, fingerprints; ``_store``).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from ._store import StoreError, check_format, fingerprint, locked, matching, not_a_store, read_dataset, refuse, remove, versioned, write_bytes, write_dataset
from .semantic import Evaluation, ScoreFunction, SemanticFunctions, as_function, store_identity
from .space import Space, recorded_space

#: Points per evaluation call and per saved chunk, unless the caller sets chunk_size.
DEFAULT_CHUNK = 64


# ----------------------------------------------------------------------- grid
#: The most points a map's grid may have (about 1.6 GB per float64 variable): a larger one is a mistake.
MAX_GRID_POINTS = 2e8


def grid_coords(
    space: Space,
    step: float | Sequence[float] | Mapping[str, float] | None = None,
    coords: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, np.ndarray]:
    """The grid of a Space: coordinates per parameter, in the Space's order.

    ``step`` is one number, one per parameter (sequence or dict by name), or
    None (3 degrees for angles, 1/30 of the range otherwise). A periodic
    parameter's grid covers [low, high) and never repeats its period; a
    bounded one includes ``high`` when the steps land on it. ``coords``
    gives explicit values for some or all parameters.
    """
    coords = dict(coords or {})
    unknown = set(coords) - set(space.names)
    if unknown:
        raise ValueError(f"coords for unknown parameters {sorted(unknown)}; the Space has {list(space.names)}")
    steps = _steps(space, step)
    for p, h in zip(space.parameters, steps):
        if p.name not in coords and h > p.width:
            raise ValueError(f"the step for {p.name} ({h:g}) is wider than its range [{p.low:g}, {p.high:g}]: the grid "
                             f"would hold one value; pass a step of at most {p.width:g}, or fix {p.name} in the Space")
    counts = [len(coords[p.name]) if p.name in coords else int(np.ceil(p.width / h - 1e-9)) + (0 if p.periodic else 1)
              for p, h in zip(space.parameters, steps)]
    total = float(np.prod(np.asarray(counts, dtype=float)))
    if total > MAX_GRID_POINTS:
        raise ValueError(f"this grid has {total:.3g} points ({' x '.join(f'{c:,}' for c in counts)} over "
                         f"{list(space.names)}), more than the {MAX_GRID_POINTS:,.0f} a map may hold: use larger steps, "
                         "or adaptive=True on a coarser grid")
    out = {}
    for p, h in zip(space.parameters, steps):
        if p.name in coords:
            values = np.asarray(coords[p.name], dtype=float).ravel()
            if values.size == 0:
                raise ValueError(f"coords for {p.name} are empty")
            space.points({**{q.name: q.low for q in space.parameters}, p.name: values})  # range and NaN checks
        elif p.periodic:
            values = p.low + h * np.arange(int(np.ceil(p.width / h - 1e-9)))
        else:
            values = p.low + h * np.arange(int(np.floor(p.width / h + 1e-9)) + 1)
        out[p.name] = values
    return out


def _steps(space: Space, step) -> np.ndarray:
    if step is None:
        return np.array([3.0 if p.units == "deg" else p.width / 30 for p in space.parameters])
    if isinstance(step, Mapping):
        unknown = set(step) - set(space.names)
        if unknown:
            raise ValueError(f"steps for unknown parameters {sorted(unknown)}; the Space has {list(space.names)}")
        default = _steps(space, None)
        steps = np.array([float(step.get(name, d)) for name, d in zip(space.names, default)])
    else:
        steps = np.broadcast_to(np.asarray(step, dtype=float), (space.n,)).copy() if np.ndim(step) == 0 else np.asarray(step, dtype=float)
        if steps.shape != (space.n,):
            raise ValueError(f"step needs one value or {space.n} (one per parameter {list(space.names)}), got {step!r}")
    if not (np.isfinite(steps).all() and (steps > 0).all()):
        raise ValueError(f"steps must be positive, got {step!r}")
    return steps


# ------------------------------------------------------------------------ map
def semantic_map(
    f: Callable[[np.ndarray], Any],
    space: Space | None = None,
    step: float | Sequence[float] | Mapping[str, float] | None = None,
    *,
    coords: Mapping[str, Sequence[float]] | None = None,
    store: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = True,
    key: str | None = None,
    adaptive: bool = False,
    tolerance: float | None = None,
) -> xr.Dataset:
    """Evaluate ``f`` on a grid of ``space`` and return the map as an ``xarray.Dataset``.

    ``f`` maps points [B, n] to scores [B]: a :class:`~semkit.SemanticFunction`
    (then the map also holds ``top1`` and ``correct``), an analytic function,
    an interpolated map. ``space`` defaults to ``f.space``. The grid is set
    by ``step`` and ``coords`` (see :func:`grid_coords`) and evaluated in
    chunks of ``chunk_size`` points with a progress bar.

    With ``store`` (``.nc`` or ``.zarr``), finished chunks are saved as they
    are computed; rerunning the same call after an interruption computes
    only what is missing; a complete store is simply read back; a store
    made by another function or with other settings is refused. Stores are
    matched by what determines the results (README, "How stores are
    matched"); a plain callable is recognised by its values at three fixed
    points (three queries), or by ``key`` when given. Processes that
    compute one store at once share its finished chunks.

    With ``adaptive=True``, ``f`` is evaluated on a coarse grid first and
    only the cells that interpolation cannot be trusted with are refined
    (estimated score error above ``tolerance``, default
    :data:`semkit.adaptive.DEFAULT_TOLERANCE`, or corners that disagree on
    ``correct``; see :mod:`semkit.adaptive`). The map has the same grid;
    ``evaluated`` says which points were computed, the others hold the
    interpolated score and the top-1 class of the nearest evaluated corner.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if isinstance(f, SemanticFunctions):
        if key is not None:
            raise ValueError("key= names one function's store; the networks of SemanticFunctions describe themselves")
        space = space or f.space
        grid = grid_coords(space, step, coords)
        stores = [None if store is None else Path(store) / f"{file_stem(n)}.nc" for n in f.networks]
        maps = network_maps(f, space, grid, stores, chunk_size=chunk_size, progress=progress, adaptive=adaptive, tolerance=tolerance)
        return _by_network(maps, f.networks)
    fn = as_function(f, space)
    space = space or fn.space
    grid = grid_coords(space, step, coords)
    [ds] = _maps([fn], lambda points, which: [_evaluate(fn, points)], space, grid, [None if store is None else Path(store)],
                 [key], chunk_size, progress, adaptive, tolerance)
    return ds


def network_maps(
    f: SemanticFunctions,
    space: Space,
    grid: Mapping[str, np.ndarray],
    stores: Sequence[Path | None],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = True,
    adaptive: bool = False,
    tolerance: float | None = None,
) -> list[xr.Dataset]:
    """Each network's map of ``f`` over ``grid`` (one store path or None per network), every view rendered once.

    A network whose store is complete is read back and not evaluated; the
    others share each chunk's renders. Adaptive maps refine a cell where
    any network needs it (see :mod:`semkit.adaptive`).
    """
    networks = f.networks

    def evaluate(points: np.ndarray, which: Sequence[int]) -> list[dict[str, np.ndarray]]:
        ev = f.evaluate(points, networks=[networks[i] for i in which])
        return [_checked(points, ev[networks[i]]) for i in which]

    return _maps(f.functions, evaluate, space, grid, stores, [None] * len(networks), chunk_size, progress, adaptive, tolerance)


def _by_network(maps: Sequence[xr.Dataset], networks: Sequence[str]) -> xr.Dataset:
    """Maps of one shape under several networks, stacked along ``network`` (what the maps share stays in attrs)."""
    out = xr.concat(list(maps), dim=xr.DataArray(list(networks), dims="network", name="network"), combine_attrs="drop_conflicts")
    out.attrs["title"] = "Network semantic maps"
    return out


def _maps(fns, evaluate, space, grid, stores, keys, chunk_size, progress, adaptive, tolerance) -> list[xr.Dataset]:
    """The maps of ``fns`` over ``grid``; ``evaluate(points, which)`` answers for the functions at indices ``which``."""
    if adaptive:
        from .adaptive import resolve_tolerance

        tolerance = resolve_tolerance(tolerance)
    elif tolerance is not None:
        raise ValueError("tolerance= is for adaptive maps: pass adaptive=True as well")
    shape = tuple(len(v) for v in grid.values())
    points = np.stack([g.ravel() for g in np.meshgrid(*grid.values(), indexing="ij")], axis=-1)
    refinement = {"adaptive": {"tolerance": tolerance}} if adaptive else {}
    journals: list[_Journal | None] = []
    results: list[xr.Dataset | None] = []
    settings = []
    for fn, store, key in zip(fns, stores, keys):
        journal = None
        if store is not None:
            journal = _Journal(store, {**map_settings(store_identity(fn, key, points), space, grid), **refinement})
        journals.append(journal)
        results.append(journal.complete_map() if journal is not None else None)
        settings.append(journal.settings if journal is not None else {**map_settings(fn.describe(), space, grid), **refinement})
    todo = [i for i, r in enumerate(results) if r is None]
    if not todo:
        return results

    def finish(i: int, values: Mapping[str, np.ndarray]) -> xr.Dataset:
        ds = _dataset(fns[i], space, grid, shape, values["score"], values.get("top1"), settings[i])
        if "evaluated" in values:
            ds["evaluated"] = (list(grid), values["evaluated"], {"long_name": "computed (else interpolated)"})
            ds.attrs["tolerance"] = tolerance
        return journals[i].finish(ds) if journals[i] is not None else ds

    if adaptive:
        from .adaptive import adaptive_values

        periods = [p.width if p.periodic else None for p in space.parameters]
        # every function takes part, stored or not, so that where a map is refined does not depend on what was stored
        everyone = list(range(len(fns)))
        labels = {fn.describe().get("label") for fn in fns}
        values = adaptive_values(lambda p: evaluate(p, everyone), grid, periods, tolerance, labels.pop() if len(labels) == 1 else None,
                                 journals=[journals[i] if i in todo else None for i in everyone], chunk_size=chunk_size,
                                 progress=progress)
        for i in todo:
            results[i] = finish(i, values[i])
        return results
    n = len(points)
    score = {i: np.full(n, np.nan) for i in todo}
    top1: dict[int, np.ndarray] = {}
    done = {i: np.zeros(n, dtype=bool) for i in todo}

    def keep(i: int, start: int, result: Mapping[str, np.ndarray]) -> None:
        stop = start + len(result["score"])
        score[i][start:stop] = result["score"]
        if "top1" in result:
            top1.setdefault(i, np.full(n, -1, dtype=np.int64))[start:stop] = result["top1"]
        done[i][start:stop] = True

    for i in todo:
        if journals[i] is not None:
            for start, chunk in journals[i].chunks():
                keep(i, start, chunk)

    from tqdm.auto import tqdm

    total = n * len(todo)
    bar = tqdm(total=total, initial=int(sum(d.sum() for d in done.values())), desc="semantic map", unit="pt",
               disable=not progress, leave=False)
    try:
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            which = []
            for i in todo:
                if done[i][start:stop].all() or results[i] is not None:
                    continue
                journal = journals[i]
                if journal is not None:
                    if journal.path.exists():  # another process finished the whole map meanwhile
                        results[i] = journal.finish(None)
                        continue
                    theirs = journal.chunk(start, stop - start)  # ... or this chunk
                    if theirs is not None:
                        keep(i, start, theirs)
                        bar.update(stop - start)
                        continue
                which.append(i)
            if not which:
                continue
            for i, result in zip(which, evaluate(points[start:stop], which)):
                keep(i, start, result)
                if journals[i] is not None:
                    journals[i].save(start, result)
                bar.update(stop - start)
    except KeyboardInterrupt:
        saved = [str(journals[i].folder) for i in todo if journals[i] is not None]
        if saved:
            print(f"\ninterrupted: {int(sum(d.sum() for d in done.values()))} of {total} points are saved in "
                  f"{', '.join(saved)}; rerun to resume", file=sys.stderr)
        raise
    finally:
        bar.close()
    for i in todo:
        if results[i] is None:
            results[i] = finish(i, {"score": score[i], **({"top1": top1[i]} if i in top1 else {})})
    return results


def _evaluate(fn: ScoreFunction, points: np.ndarray) -> dict[str, np.ndarray]:
    return _checked(points, fn.evaluate(points))


def _checked(points: np.ndarray, ev: Evaluation) -> dict[str, np.ndarray]:
    """An evaluation's score (checked: one finite value per point) and top-1, as a map stores them."""
    score = np.asarray(ev.score, dtype=float).reshape(-1)
    if score.shape != (len(points),):
        raise ValueError(f"f returned {score.size} scores for {len(points)} points")
    bad = ~np.isfinite(score)
    if bad.any():
        raise ValueError(f"f returned NaN or infinite scores at {int(bad.sum())} point(s), first at {points[np.argmax(bad)]}")
    return {"score": score} if ev.top1 is None else {"score": score, "top1": np.asarray(ev.top1, dtype=np.int64)}


def map_settings(function: Mapping[str, Any], space: Space, grid: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """What determines a map's values: the function's identity, the Space, the grid, semkit's algorithms."""
    return versioned({
        "function": dict(function),
        "space": space.to_dict(),
        "grid": {name: [float(v) for v in values] for name, values in grid.items()},
    })


def _dataset(fn: ScoreFunction, space: Space, grid, shape, score, top1, settings) -> xr.Dataset:
    from . import __version__

    dims = list(grid)
    coords: dict[str, Any] = {
        name: (name, values, {"units": space.units[name], "periodic": int(space[name].periodic)}) for name, values in grid.items()
    }
    for name, value in space.fixed.items():
        coords[name] = ((), value, {"units": space.units.get(name, ""), "fixed": 1})
    data_vars: dict[str, Any] = {}
    info = fn.describe()
    label_name = info.get("label_name", "")
    data_vars["score"] = (dims, score.reshape(shape), {"long_name": f"P({label_name})" if label_name else "score", "units": "1"})
    if top1 is not None:
        data_vars["top1"] = (dims, top1.reshape(shape), {"long_name": "predicted class (ImageNet index)"})
        data_vars["correct"] = (dims, top1.reshape(shape) == info["label"], {"long_name": f"top-1 is {label_name}"})
    attrs = {
        "title": "Network semantic map",
        "semkit_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fingerprint(settings),
        "settings": json.dumps(settings),
        "space": json.dumps(settings["space"]),
        "grid_step": json.dumps({name: float(v[1] - v[0]) if len(v) > 1 else None for name, v in grid.items()}),
    }
    attrs.update(describe_attrs(info))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def describe_attrs(info: Mapping[str, Any]) -> dict[str, Any]:
    """The attrs a result records of its function's description (label, network, shape, renderer; or the callable)."""
    attrs: dict[str, Any] = {}
    if "label" in info:
        attrs.update(label=int(info["label"]), label_name=info.get("label_name", ""))
    attrs.update({k: info[k] for k in ("network", "shape") if k in info})
    if "renderer" in info:
        attrs["renderer"] = json.dumps(info["renderer"])
    if "callable" in info:
        attrs["function"] = info["callable"]
    return attrs


# -------------------------------------------------------------------- storage
class _Journal:
    """A map's store and its journal of finished chunks (``<store>.partial/``), shared by concurrent writers.

    Chunks are written atomically under unique names; one that cannot be
    read (truncated, damaged) is dropped and computed again; a chunk or the
    whole map that another process finished is used instead of recomputed.
    """

    def __init__(self, path: Path, settings: Mapping[str, Any]) -> None:
        check_format(path)
        self.path = path
        self.folder = path.with_name(path.name + ".partial")
        self.settings = dict(settings)
        self.fingerprint = fingerprint(self.settings)

    def complete_map(self) -> xr.Dataset | None:
        ds = matching(self.path, self.settings)
        if ds is not None and not np.isfinite(ds["score"].values).all():
            raise not_a_store(self.path, "its map has missing or damaged scores")
        return ds

    def chunks(self) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
        settings_file = self.folder / "settings.json"
        with locked(self.path):
            if settings_file.exists():
                try:
                    theirs = json.loads(settings_file.read_text())
                except ValueError:
                    chunks = len(list(self.folder.glob("chunk-*.npz")))
                    raise StoreError(f"{settings_file} is damaged (not readable JSON), so the {chunks} finished chunk(s) "
                                     f"in {self.folder} cannot be matched to this map; delete {self.folder} to compute "
                                     "them again (nothing else is affected)") from None
                if fingerprint(theirs) != self.fingerprint:
                    refuse(self.folder, theirs, self.settings)
            else:
                write_bytes(settings_file, json.dumps(self.settings, indent=1).encode())
        for file in sorted(self.folder.glob("chunk-*.npz")):
            chunk = self._load(file)
            if chunk is not None:
                yield int(file.stem.split("-")[1]), chunk

    def chunk(self, start: int, size: int) -> dict[str, np.ndarray] | None:
        """The chunk at ``start`` when another process saved it (and it holds ``size`` points)."""
        chunk = self._load(self.folder / f"chunk-{start:09d}.npz")
        return chunk if chunk is not None and len(chunk["score"]) == size else None

    @staticmethod
    def _load(file: Path) -> dict[str, np.ndarray] | None:
        try:
            with np.load(file) as data:
                chunk = {k: data[k] for k in data.files}
        except FileNotFoundError:
            return None  # not there (yet), or removed by a process that finished the map
        except Exception:  # truncated or damaged: computed again
            file.unlink(missing_ok=True)
            return None
        if "score" not in chunk or not np.isfinite(chunk["score"]).all():
            file.unlink(missing_ok=True)
            return None
        return chunk

    def save(self, start: int, result: Mapping[str, np.ndarray]) -> None:
        if self.path.exists():  # another process finished the map: its journal is gone, and stays gone
            return
        buffer = io.BytesIO()
        np.savez(buffer, **result)
        write_bytes(self.folder / f"chunk-{start:09d}.npz", buffer.getvalue())

    def finish(self, ds: xr.Dataset | None) -> xr.Dataset:
        """Write the complete map ``ds`` (unless another process did), then drop the journal; returns the stored map."""
        with locked(self.path):
            theirs = self.complete_map()
            if theirs is None:
                assert ds is not None, "no map to write"
                write_dataset(ds, self.path)
            remove(self.folder)
        return ds if theirs is None else theirs


def open_map(path: str | os.PathLike) -> xr.Dataset:
    """Read a map saved by :func:`semantic_map` (``.nc`` or ``.zarr``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no map at {path}")
    return read_dataset(path)


# ---------------------------------------------------------------- many maps
def semantic_maps(
    shapes: Sequence[Any],
    networks: Sequence[Any],
    space: Space | None = None,
    step: float | Sequence[float] | Mapping[str, float] | None = None,
    *,
    coords: Mapping[str, Sequence[float]] | None = None,
    renderer: Any = None,
    store: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = True,
    adaptive: bool = False,
    tolerance: float | None = None,
) -> xr.Dataset:
    """Maps of several shapes under several networks, as one Dataset with ``network`` and ``shape`` dims.

    ``shapes``: meshes, gallery names or mesh paths (each with its ImageNet
    label); ``networks``: names or :class:`~semkit.Classifier` objects.
    Labels become coordinates along ``shape`` (``label``, ``label_name``), so
    class and network averages are ``ds.groupby("label_name").mean("shape")``
    and ``ds.mean("shape")``. With ``store`` (a folder) every map is saved
    as ``<store>/<network>/<shape>.nc`` and the whole computation resumes.
    ``adaptive`` and ``tolerance`` are :func:`semantic_map`'s.

    Each shape's views are rendered once and classified by every network
    (:class:`~semkit.SemanticFunctions`); without ``renderer``, at the
    largest input size of the networks (the others resize the renders).
    """
    from tqdm.auto import tqdm

    from .classifier import Classifier, load_classifier
    from .study import load_shape, stack

    meshes = [load_shape(s) for s in shapes]
    names = [m.name for m in meshes]
    if len(set(names)) != len(names):
        raise ValueError(f"shape names must be unique, got {names}")
    classifiers = [n if isinstance(n, Classifier) else load_classifier(n) for n in networks]
    space = space or Space.paper()
    grid = grid_coords(space, step, coords)
    columns = []
    for mesh in tqdm(meshes, desc="semantic maps", unit="shape", disable=not progress):
        f = SemanticFunctions(mesh, classifiers, renderer=renderer, space=space)
        stores = [None if store is None else Path(store) / c.name / f"{file_stem(mesh.name)}.nc" for c in classifiers]
        columns.append(network_maps(f, space, grid, stores, chunk_size=chunk_size, progress=progress, adaptive=adaptive,
                                    tolerance=tolerance))
    rows = [list(row) for row in zip(*columns)]
    stacked = stack(rows, [c.name for c in classifiers], names)
    stacked.attrs["title"] = "Network semantic maps"
    return stacked


def file_stem(name: str) -> str:
    """A name ('bench/1a2b') as a file name ('bench_1a2b')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# -------------------------------------------------------------- interpolation
class MapFunction:
    """A map as a function: multilinear interpolation of its ``score`` between grid points.

    Lets regions, and anything else that takes an f, run on a saved map
    instead of the network (the paper's maps, a map made elsewhere). A
    periodic parameter interpolates across its period (357 -> 0 degrees);
    a bounded one is held at its first or last grid value beyond the grid.
    """

    def __init__(self, data: xr.Dataset | xr.DataArray, space: Space | None = None) -> None:
        from scipy.interpolate import RegularGridInterpolator

        score = data["score"] if isinstance(data, xr.Dataset) else data
        space = recorded_space(data, space)
        extra = set(score.dims) - set(space.names)
        if extra:
            raise ValueError(f"the map has dims {sorted(extra)} beyond the Space's {list(space.names)}: select or average them first")
        missing = [name for name in space.names if name not in score.dims]
        if missing:
            raise ValueError(f"the map has no dims {missing} of the Space")
        score = score.transpose(*space.names)
        values = np.asarray(score.values, dtype=float)
        if not np.isfinite(values).all():
            raise ValueError("the map holds NaN or infinite scores (is it complete?)")
        axes = []
        closed = []
        for i, p in enumerate(space.parameters):
            x = np.asarray(score[p.name].values, dtype=float)
            # a periodic grid that covers its period closes the circle: the first slice again, one period on;
            # one that covers part of it (say azimuth 0..180) is held at its ends like a bounded one
            circle = p.periodic and len(x) > 1 and np.isclose(x[-1] + (x[1] - x[0]), x[0] + p.width)
            if circle:
                x = np.r_[x, x[0] + p.width]
                values = np.concatenate([values, values.take([0], axis=i)], axis=i)
            closed.append(circle)
            axes.append(x)
        self.space = space
        self.attrs = dict(getattr(data, "attrs", {}))
        digest = hashlib.sha256(values.tobytes())
        for x in axes:
            digest.update(x.tobytes())
        self.digest = digest.hexdigest()[:16]  #: of the grid and its scores: what the interpolation depends on
        self._lo = np.array([x[0] for x in axes])
        self._hi = np.array([x[-1] for x in axes])
        self._closed = np.array(closed)
        self._interp = RegularGridInterpolator(axes, values, method="linear")

    def __call__(self, points: Any) -> np.ndarray:
        pts = self.space.points(points)
        # wrap periodic values onto the grid's own period (a partial periodic grid: onto the Space's), then hold
        # what lies beyond the grid at its edges
        widths = self.space.widths
        origin = np.where(self._closed, self._lo, self.space.lower)
        pts = np.where(self.space.periodic, origin + np.mod(pts - origin, widths), pts)
        partial = self.space.periodic & ~self._closed
        outside = partial & ((pts < self._lo) | (pts > self._hi))
        nearer_lo = np.mod(self._lo - pts, widths) < np.mod(pts - self._hi, widths)  # around the circle
        pts = np.where(outside, np.where(nearer_lo, self._lo, self._hi), pts)
        return self._interp(np.clip(pts, self._lo, self._hi))

    def describe(self) -> dict[str, Any]:
        info = {k: self.attrs[k] for k in ("label", "label_name", "network", "shape") if k in self.attrs}
        return {**info, "interpolated_map": self.digest, "space": self.space.to_dict()}


def interpolate(data: xr.Dataset | xr.DataArray, space: Space | None = None) -> MapFunction:
    """The map ``data`` as a function of points [B, n] (see :class:`MapFunction`)."""
    return MapFunction(data, space)
