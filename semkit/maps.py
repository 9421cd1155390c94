"""Network Semantic Maps: a function's scores over a dense grid of a Space, as xarray data.

``semantic_map(f, space, step)`` evaluates any f (points [B, n] -> scores
[B]) on a grid and returns an ``xarray.Dataset`` whose dims are the Space's
parameters. With ``store=`` (a ``.nc`` or ``.zarr`` path) finished chunks
are saved as they are computed, so an interrupted run resumes where it
stopped: each chunk goes to a journal folder beside the store (written to
a temporary file, then renamed: an interruption never leaves a half-written
file), and the complete map is written the same way when the grid is done.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from .space import Space

#: Points per evaluation call and per saved chunk, unless the caller sets chunk_size.
DEFAULT_CHUNK = 64


# ----------------------------------------------------------------------- grid
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
    made with other settings is refused.

    With ``adaptive=True``, ``f`` is evaluated on a coarse grid first and
    only the cells that interpolation cannot be trusted with are refined
    (estimated score error above ``tolerance``, default
    :data:`semkit.adaptive.DEFAULT_TOLERANCE`, or corners that disagree on
    ``correct``; see :mod:`semkit.adaptive`). The map has the same grid;
    ``evaluated`` says which points were computed, the others hold the
    interpolated score and the top-1 class of the nearest evaluated corner.
    """
    space = space or getattr(f, "space", None)
    if space is None:
        raise ValueError("semantic_map needs a Space: pass space=, or an f with a .space (a SemanticFunction)")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    grid = grid_coords(space, step, coords)
    shape = tuple(len(v) for v in grid.values())
    points = np.stack([g.ravel() for g in np.meshgrid(*grid.values(), indexing="ij")], axis=-1)
    settings = _settings(f, space, grid)
    if adaptive:
        from .adaptive import resolve_tolerance

        tolerance = resolve_tolerance(tolerance)
        settings["adaptive"] = {"tolerance": tolerance}
    elif tolerance is not None:
        raise ValueError("tolerance= is for adaptive maps: pass adaptive=True as well")
    journal = _Journal(Path(store), settings) if store is not None else None
    if journal is not None:
        complete = journal.complete_map()
        if complete is not None:
            return complete

    evaluate = getattr(f, "evaluate", None)
    if adaptive:
        from .adaptive import adaptive_values

        label = getattr(f, "label", None) if evaluate else None
        periods = [p.width if p.periodic else None for p in space.parameters]
        values = adaptive_values(lambda p: _evaluate(f, evaluate, p), grid, periods, tolerance, label,
                                 journal=journal, chunk_size=chunk_size, progress=progress)
        ds = _dataset(f, space, grid, shape, values["score"], values.get("top1"), settings)
        ds["evaluated"] = (list(grid), values["evaluated"], {"long_name": "computed (else interpolated)"})
        ds.attrs["tolerance"] = tolerance
        if journal is not None:
            journal.finish(ds)
        return ds
    n = len(points)
    score = np.full(n, np.nan)
    top1 = np.full(n, -1, dtype=np.int64) if evaluate else None
    done = np.zeros(n, dtype=bool)
    if journal is not None:
        for start, chunk in journal.chunks():
            stop = start + len(chunk["score"])
            score[start:stop] = chunk["score"]
            if top1 is not None:
                top1[start:stop] = chunk["top1"]
            done[start:stop] = True

    from tqdm.auto import tqdm

    bar = tqdm(total=n, initial=int(done.sum()), desc="semantic map", unit="pt", disable=not progress, leave=False)
    saved = int(done.sum())
    try:
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            if done[start:stop].all():
                continue
            result = _evaluate(f, evaluate, points[start:stop])
            score[start:stop] = result["score"]
            if top1 is not None:
                top1[start:stop] = result["top1"]
            if journal is not None:
                journal.save(start, result)
                saved += stop - start
            bar.update(stop - start)
    except KeyboardInterrupt:
        if journal is not None:
            print(f"\ninterrupted: {saved} of {n} points are saved in {journal.folder}; rerun to resume", file=sys.stderr)
        raise
    finally:
        bar.close()

    ds = _dataset(f, space, grid, shape, score, top1, settings)
    if journal is not None:
        journal.finish(ds)
    return ds


def _evaluate(f, evaluate, points: np.ndarray) -> dict[str, np.ndarray]:
    if evaluate is not None:
        ev = evaluate(points)
        score, top1 = np.asarray(ev.score, dtype=float), np.asarray(ev.top1, dtype=np.int64)
    else:
        score, top1 = np.asarray(f(points), dtype=float).reshape(-1), None
    if score.shape != (len(points),):
        raise ValueError(f"f returned {score.shape[0] if score.ndim else 'a scalar'} scores for {len(points)} points")
    bad = ~np.isfinite(score)
    if bad.any():
        raise ValueError(f"f returned NaN or infinite scores at {int(bad.sum())} point(s), first at {points[np.argmax(bad)]}")
    return {"score": score} if top1 is None else {"score": score, "top1": top1}


def _settings(f, space: Space, grid: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """What determines the map's values: the function, the Space and the grid."""
    describe = getattr(f, "describe", None)
    function = describe() if describe else {"callable": f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', type(f).__qualname__)}"}
    return {
        "function": function,
        "space": space.to_dict(),
        "grid": {name: [float(v) for v in values] for name, values in grid.items()},
    }


def _fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _dataset(f, space: Space, grid, shape, score, top1, settings) -> xr.Dataset:
    from . import __version__

    dims = list(grid)
    coords: dict[str, Any] = {
        name: (name, values, {"units": space.units[name], "periodic": int(space[name].periodic)}) for name, values in grid.items()
    }
    for name, value in space.fixed.items():
        coords[name] = ((), value, {"units": space.units.get(name, ""), "fixed": 1})
    data_vars: dict[str, Any] = {}
    describe = getattr(f, "describe", None)
    info = describe() if describe else {}
    label_name = info.get("label_name", "")
    data_vars["score"] = (dims, score.reshape(shape), {"long_name": f"P({label_name})" if label_name else "score", "units": "1"})
    if top1 is not None:
        data_vars["top1"] = (dims, top1.reshape(shape), {"long_name": "predicted class (ImageNet index)"})
        data_vars["correct"] = (dims, top1.reshape(shape) == info["label"], {"long_name": f"top-1 is {label_name}"})
    attrs = {
        "title": "Network semantic map",
        "semkit_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": _fingerprint(settings),
        "settings": json.dumps(settings),
        "space": json.dumps(settings["space"]),
        "grid_step": json.dumps({name: float(v[1] - v[0]) if len(v) > 1 else None for name, v in grid.items()}),
    }
    if "label" in info:
        attrs.update(label=int(info["label"]), label_name=label_name)
        attrs.update({k: info[k] for k in ("network", "shape") if k in info})
        if "renderer" in info:
            attrs["renderer"] = json.dumps(info["renderer"])
    if "callable" in settings["function"]:
        attrs["function"] = settings["function"]["callable"]
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# -------------------------------------------------------------------- storage
class _Journal:
    """A store and its journal of finished chunks (``<store>.partial/``)."""

    def __init__(self, path: Path, settings: Mapping[str, Any]) -> None:
        suffix = path.suffix.lower()
        if suffix not in (".nc", ".zarr"):
            raise ValueError(f"store must be a .nc or .zarr path, got {path}")
        self.path = path
        self.format = suffix
        self.folder = path.with_name(path.name + ".partial")
        self.settings = settings
        self.fingerprint = _fingerprint(settings)

    def _refuse(self, where: Path, theirs: Mapping[str, Any] | None) -> None:
        what = _differences(theirs, self.settings) if theirs else "settings unknown"
        raise ValueError(
            f"{where} was made with different settings ({what}); semkit will not mix them. "
            f"Use another store path, or delete {where} to recompute."
        )

    def complete_map(self) -> xr.Dataset | None:
        if not self.path.exists():
            return None
        ds = _read(self.path, self.format)
        if ds.attrs.get("fingerprint") != self.fingerprint:
            self._refuse(self.path, json.loads(ds.attrs["settings"]) if "settings" in ds.attrs else None)
        return ds

    def chunks(self) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
        settings_file = self.folder / "settings.json"
        if settings_file.exists():
            theirs = json.loads(settings_file.read_text())
            if _fingerprint(theirs) != self.fingerprint:
                self._refuse(self.folder, theirs)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(settings_file, json.dumps(self.settings, indent=1).encode())
        for file in sorted(self.folder.glob("chunk-*.npz")):
            with np.load(file) as data:
                yield int(file.stem.split("-")[1]), {k: data[k] for k in data.files}

    def save(self, start: int, result: Mapping[str, np.ndarray]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".chunk-{start:09d}.tmp.npz"
        np.savez(tmp, **result)
        os.replace(tmp, self.folder / f"chunk-{start:09d}.npz")

    def finish(self, ds: xr.Dataset) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent)) / self.path.name
        if self.format == ".nc":
            ds.to_netcdf(tmp)
        else:
            ds.to_zarr(tmp, mode="w", consolidated=False)
        os.replace(tmp, self.path)
        shutil.rmtree(tmp.parent, ignore_errors=True)
        shutil.rmtree(self.folder, ignore_errors=True)


def _read(path: Path, fmt: str) -> xr.Dataset:
    opened = xr.open_zarr(path, consolidated=False) if fmt == ".zarr" else xr.open_dataset(path)
    with opened as ds:
        return ds.load()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    keys = sorted(set(a) | set(b))
    diff = []
    for k in keys:
        if a.get(k) != b.get(k):
            if isinstance(a.get(k), Mapping) and isinstance(b.get(k), Mapping):
                sub = [f"{k}.{s}" for s in sorted(set(a[k]) | set(b[k])) if a[k].get(s) != b[k].get(s)]
                diff.extend(sub or [k])
            else:
                diff.append(k)
    return "differs in " + ", ".join(diff) if diff else "same settings"


def open_map(path: str | os.PathLike) -> xr.Dataset:
    """Read a map saved by :func:`semantic_map` (``.nc`` or ``.zarr``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no map at {path}")
    return _read(path, path.suffix.lower())


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
    """
    from tqdm.auto import tqdm

    from .classifier import Classifier, load_classifier
    from .semantic import SemanticFunction

    meshes = [_as_mesh(s) for s in shapes]
    names = [m.name for m in meshes]
    if len(set(names)) != len(names):
        raise ValueError(f"shape names must be unique, got {names}")
    classifiers = [n if isinstance(n, Classifier) else load_classifier(n) for n in networks]
    space = space or Space.paper()
    rows = []
    pairs = tqdm(total=len(meshes) * len(classifiers), desc="semantic maps", unit="map", disable=not progress)
    for classifier in classifiers:
        row = []
        for mesh in meshes:
            f = SemanticFunction(mesh, classifier, renderer=renderer, space=space)
            path = None if store is None else Path(store) / classifier.name / f"{file_stem(mesh.name)}.nc"
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            row.append(semantic_map(f, space, step, coords=coords, store=path, chunk_size=chunk_size, progress=progress,
                                    adaptive=adaptive, tolerance=tolerance))
            pairs.update()
        rows.append(row)
    pairs.close()

    first = rows[0][0]
    per_map = ("label", "label_name", "network", "shape", "fingerprint", "settings", "created")
    stacked = xr.concat(
        [xr.concat([m.drop_attrs() for m in row], dim="shape") for row in rows], dim="network", combine_attrs="drop"
    )
    stacked = stacked.assign_coords(
        network=("network", [c.name for c in classifiers]),
        shape=("shape", names),
        label=("shape", [m.label for m in meshes]),
        label_name=("shape", [first_row.attrs["label_name"] for first_row in rows[0]]),
    )
    for name, coord in first.coords.items():  # concat dropped the coordinates' units
        stacked[name].attrs = dict(coord.attrs)
    stacked.attrs = {k: v for k, v in first.attrs.items() if k not in per_map}
    stacked.attrs["title"] = "Network semantic maps"
    return stacked


def _as_mesh(shape: Any):
    """A Mesh, a gallery name, or a mesh file (ShapeNet files labelled by their class)."""
    from . import gallery
    from .mesh import Mesh
    from .shapenet import load_file

    if isinstance(shape, Mesh):
        return shape
    if isinstance(shape, str) and shape in gallery.names():
        return gallery.load(shape)
    return load_file(shape)


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
        if space is None:
            if "space" not in data.attrs:
                raise ValueError("this map records no Space (a DataArray, or a map made elsewhere): pass space=")
            space = Space.from_dict(json.loads(data.attrs["space"]))
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
        for i, p in enumerate(space.parameters):
            x = np.asarray(score[p.name].values, dtype=float)
            if p.periodic:  # close the circle: the first slice again, one period on
                x = np.r_[x, x[0] + p.width]
                values = np.concatenate([values, values.take([0], axis=i)], axis=i)
            axes.append(x)
        self.space = space
        self.attrs = dict(getattr(data, "attrs", {}))
        self._lo = np.array([x[0] for x in axes])
        self._hi = np.array([x[-1] for x in axes])
        self._interp = RegularGridInterpolator(axes, values, method="linear")

    def __call__(self, points: Any) -> np.ndarray:
        pts = self.space.points(points)
        # wrap periodic values onto the grid's own period, then hold bounded ones inside the grid
        pts = np.where(self.space.periodic, self._lo + np.mod(pts - self._lo, self.space.widths), pts)
        return self._interp(np.clip(pts, self._lo, self._hi))

    def describe(self) -> dict[str, Any]:
        info = {k: self.attrs[k] for k in ("label", "label_name", "network", "shape") if k in self.attrs}
        return {**info, "interpolated_map": self.attrs.get("fingerprint", "unknown"), "space": self.space.to_dict()}


def interpolate(data: xr.Dataset | xr.DataArray, space: Space | None = None) -> MapFunction:
    """The map ``data`` as a function of points [B, n] (see :class:`MapFunction`)."""
    return MapFunction(data, space)
