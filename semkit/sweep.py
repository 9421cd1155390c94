"""Sweeps: maps or robust regions over shapes x networks, as tasks on dask.distributed.

``sweep(...)`` lays out one zarr store for the whole study (dims
``network`` and ``shape`` plus the grid's or the regions'), then runs one
task per (network, shape) on a Dask cluster: a LocalCluster by default, or
a scheduler address. Each task loads its mesh and network on the worker
(cached per worker process), computes, and writes its own region of the
store, its ``done`` flag last; chunk writes are atomic. So rerunning a
sweep computes only the unfinished tasks, and a worker that dies mid-sweep
loses no finished task (Dask reruns its unfinished ones elsewhere).

    semkit sweep CONFIG.yaml [--scheduler ADDRESS]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .adaptive import resolve_tolerance
from .maps import grid_coords
from .regions import ALGORITHMS
from .space import Space

KINDS = ("map", "regions")


# ------------------------------------------------------------ the settings
def _settings(kind, shapes, networks, space, step, starts, algorithms, iterations, step_rule, image_size,
              adaptive=False, tolerance=None) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown sweep kind {kind!r}; choose from {KINDS}")
    if not shapes or not networks:
        raise ValueError("a sweep needs at least one shape and one network")
    shapes, networks = [str(s) for s in shapes], [str(n) for n in networks]
    for what, names in (("shape", shapes), ("network", networks)):
        if len(set(names)) != len(names):
            raise ValueError(f"{what} names must be unique, got {names}")
    labels = [_mesh(s).label for s in shapes]
    missing = [s for s, label in zip(shapes, labels) if label is None]
    if missing:
        raise ValueError(f"shapes {missing} carry no ImageNet label: load them with a label (gallery, ShapeNet, load_mesh(label=))")
    settings: dict[str, Any] = {
        "kind": kind, "shapes": shapes, "labels": labels, "networks": networks, "space": space.to_dict(), "image_size": image_size,
    }
    if tolerance is not None and not adaptive:
        raise ValueError("tolerance= is for adaptive maps: pass adaptive=True as well")
    if kind == "map":
        settings["grid"] = {k: [float(x) for x in v] for k, v in grid_coords(space, step).items()}
        if adaptive:
            settings["adaptive"] = {"tolerance": resolve_tolerance(tolerance)}
    elif adaptive:
        raise ValueError("adaptive= is for map sweeps (kind='map')")
    else:
        unknown = [a for a in algorithms if a not in ALGORITHMS]
        if unknown:
            raise ValueError(f"unknown algorithm(s) {unknown}; choose from {ALGORITHMS}")
        settings.update(
            starts=space.points(starts).tolist(), algorithms=list(algorithms), iterations=int(iterations), step_rule=step_rule
        )
    return settings


def _fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------- the store
def _template(settings: Mapping[str, Any]) -> xr.Dataset:
    """The whole sweep's dataset, unfilled: what the store is laid out from."""
    space = Space.from_dict(settings["space"])
    N, S = len(settings["networks"]), len(settings["shapes"])
    from .classifier import imagenet_labels

    coords: dict[str, Any] = {
        "network": settings["networks"],
        "shape": settings["shapes"],
        "label": ("shape", settings["labels"]),
        "label_name": ("shape", [imagenet_labels()[k] for k in settings["labels"]]),
    }
    data: dict[str, Any] = {
        "done": (("network", "shape"), np.zeros((N, S), np.int8), {"long_name": "1 when the task's results are written"}),
    }
    if settings["kind"] == "map":
        grid = settings["grid"]
        dims = ("network", "shape", *grid)
        shape = (N, S, *(len(v) for v in grid.values()))
        for name, values in grid.items():
            coords[name] = (name, np.asarray(values), {"units": space.units[name]})
        data["score"] = (dims, np.full(shape, np.nan), {"long_name": "P(true class)"})
        data["top1"] = (dims, np.full(shape, -1, np.int64), {"long_name": "predicted class (ImageNet index)"})
        if "adaptive" in settings:
            data["evaluated"] = (dims, np.zeros(shape, bool), {"long_name": "computed (else interpolated)"})
    else:
        A, P = len(settings["algorithms"]), space.n
        coords.update(start=np.arange(len(settings["starts"])), algorithm=settings["algorithms"], param=list(space.names))
        coords["start_point"] = (("start", "param"), np.asarray(settings["starts"]))
        dims = ("network", "shape", "start", "algorithm")
        shape = (N, S, len(settings["starts"]), A)
        data["lower"] = ((*dims, "param"), np.full((*shape, P), np.nan))
        data["upper"] = ((*dims, "param"), np.full((*shape, P), np.nan))
        data["queries"] = (dims, np.zeros(shape, np.int64))
        data["converged"] = (dims, np.zeros(shape, bool))
    attrs = {"title": f"semkit sweep ({settings['kind']})", "settings": json.dumps(settings),
             "fingerprint": _fingerprint(settings), "space": json.dumps(settings["space"])}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _chunks(ds: xr.Dataset) -> dict[str, dict]:
    """One chunk per (network, shape) in every variable: tasks never write the same chunk."""
    return {name: {"chunks": tuple(1 if d in ("network", "shape") else ds.sizes[d] for d in var.dims)} for name, var in ds.data_vars.items()}


def _open_or_create(store: Path, settings: Mapping[str, Any]) -> xr.Dataset:
    fingerprint = _fingerprint(settings)
    if store.exists():
        with xr.open_zarr(store, consolidated=False, chunks=None) as existing:
            if existing.attrs.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"{store} holds a sweep made with other settings; semkit will not mix them. "
                    f"Use another store, or delete {store} to start again."
                )
            return existing[["done"]].load()
    template = _template(settings)
    partial = store.with_name(f".{store.name}.{os.getpid()}.partial")  # laid out aside, then moved in whole
    shutil.rmtree(partial, ignore_errors=True)
    template.to_zarr(partial, mode="w", encoding=_chunks(template), consolidated=False, zarr_format=2)
    os.replace(partial, store)
    return template[["done"]]


# ---------------------------------------------------------------- the task
@lru_cache(maxsize=8)
def _classifier(name: str):
    from .classifier import load_classifier

    return load_classifier(name)


@lru_cache(maxsize=32)
def _mesh(shape: str):
    """A gallery shape or a mesh file, loaded once per worker process."""
    from .maps import _as_mesh

    return _as_mesh(shape)


def _run_task(store: str, settings_json: str, i: int, j: int) -> str:
    """Compute one (network i, shape j) and write its region of the store; skip it when already done."""
    from .maps import semantic_map
    from .regions import find_regions
    from .renderer import Renderer
    from .semantic import SemanticFunction

    settings = json.loads(settings_json)
    region = {"network": slice(i, i + 1), "shape": slice(j, j + 1)}
    with xr.open_zarr(store, consolidated=False, chunks=None) as ds:
        if int(ds.done.isel(network=i, shape=j)) == 1:
            return "skipped"
    space = Space.from_dict(settings["space"])
    classifier = _classifier(settings["networks"][i])
    mesh = _mesh(settings["shapes"][j])
    renderer = Renderer(image_size=settings["image_size"] or classifier.input_size)
    f = SemanticFunction(mesh, classifier, renderer=renderer, space=space)
    if settings["kind"] == "map":
        adaptive = settings.get("adaptive")
        result = semantic_map(f, space, coords=settings["grid"], progress=False, adaptive=adaptive is not None,
                              tolerance=adaptive and adaptive["tolerance"])
        names = ["score", "top1", "evaluated"] if adaptive else ["score", "top1"]
        part = result[names].drop_vars(list(space.fixed), errors="ignore")
    else:
        result = find_regions(f, settings["starts"], settings["algorithms"], space, settings["iterations"],
                              step_rule=settings["step_rule"], progress=False)
        part = result[["lower", "upper", "queries", "converged"]].drop_vars(["start_point", "units"])
    part = part.drop_vars([c for c in part.coords]).expand_dims(network=1, shape=1)
    part.to_zarr(store, region={**region, **{d: slice(None) for d in part.dims if d not in region}}, consolidated=False)
    xr.Dataset({"done": (("network", "shape"), np.ones((1, 1), np.int8))}).to_zarr(store, region=region, consolidated=False)
    return "computed"


# --------------------------------------------------------------- the sweep
def sweep(
    shapes: Sequence[str],
    networks: Sequence[str],
    store: str | os.PathLike,
    kind: str = "map",
    *,
    space: Space | None = None,
    step: Any = None,
    starts: Any = ((130, 30), (50, 20), (200, 15), (310, 50)),
    algorithms: Sequence[str] = ("naive", "oir_b"),
    iterations: int = 600,
    step_rule: str = "adaptive",
    image_size: int | None = None,
    adaptive: bool = False,
    tolerance: float | None = None,
    scheduler: Any = None,
    workers: int = 2,
    progress: bool = True,
) -> xr.Dataset:
    """Run a sweep of maps or regions over shapes x networks on Dask and return it as one Dataset.

    ``shapes``: gallery names or mesh paths (with a label the mesh carries:
    gallery and ShapeNet meshes do); ``networks``: classifier names. The
    results go to ``store`` (a ``.zarr`` folder) with ``network`` and
    ``shape`` dims; ``done`` says which tasks finished. ``scheduler``: a
    ``dask.distributed.Client``, a scheduler address (``"tcp://host:8786"``),
    or None for a LocalCluster of ``workers`` processes. Rerunning the same
    call computes only what is missing; a store made with other settings
    is refused. ``attrs["computed"]`` counts the tasks this call computed.
    ``adaptive`` and ``tolerance`` make adaptive maps (see
    :func:`~semkit.semantic_map`), with ``evaluated`` in the store.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    store = Path(store)
    if store.suffix != ".zarr":
        raise ValueError(f"a sweep's store is a .zarr folder, got {store}")
    space = space or Space.paper()
    settings = _settings(kind, shapes, networks, space, step, starts, algorithms, iterations, step_rule, image_size,
                         adaptive, tolerance)
    done = _open_or_create(store, settings)
    todo = [(i, j) for i in range(len(settings["networks"])) for j in range(len(settings["shapes"])) if int(done.done[i, j]) == 0]

    computed = 0
    if todo:
        own = None
        if isinstance(scheduler, Client):
            client = scheduler
        elif scheduler is None:
            own = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
            client = Client(own)
        else:
            client = Client(scheduler)
        try:
            settings_json = json.dumps(settings)
            futures = [
                client.submit(_run_task, str(store.resolve()), settings_json, i, j, key=f"semkit-{_fingerprint(settings)}-{i}-{j}", retries=2)
                for i, j in todo
            ]
            from tqdm.auto import tqdm

            with tqdm(total=len(futures), desc=f"sweep ({kind})", unit="task", disable=not progress) as bar:
                for future in as_completed(futures):
                    computed += future.result() == "computed"
                    bar.update()
        finally:
            if client is not scheduler:
                client.close()
            if own is not None:
                own.close()
    result = open_sweep(store)
    result.attrs["computed"] = computed
    return result


def open_sweep(store: str | os.PathLike) -> xr.Dataset:
    """A sweep's store as one Dataset (labels as a ``shape`` coordinate); unfinished tasks are NaN."""
    store = Path(store)
    if not store.exists():
        raise FileNotFoundError(f"no sweep at {store}")
    with xr.open_zarr(store, consolidated=False, chunks=None) as ds:
        return ds.load()
