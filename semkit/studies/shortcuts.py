"""Shortcuts over :func:`~semkit.study`: sweeps on Dask, maps of many shapes, maps of named functions, regions
on stacked maps, and one shape seen under several looks.

``sweep(...)`` is :func:`~semkit.study` on a Dask cluster (a LocalCluster by
default, or a scheduler address) with a ``.zarr`` store; rerunning it
computes only the unfinished tasks, and a worker that dies mid-sweep loses
no finished task.

    semkit sweep CONFIG.yaml [--scheduler ADDRESS]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import xarray as xr

from ..classify import Classifier, load_classifier
from ..criterion import Criterion
from ..deprecation import keyword_only
from ..function import SemanticFunctions
from ..maps import DEFAULT_CHUNK, interpolate, network_maps, semantic_map
from ..regions import find_regions
from ..scene import load_shape
from ..space import Space, recorded_space
from ..store import file_stem, open_result
from .run import study
from .stacking import stack


def sweep(
    shapes: Sequence[str],
    networks: Sequence[str],
    store: str | os.PathLike,
    kind: str = "map",
    *,
    scheduler: Any = None,
    workers: int = 2,
    progress: bool = True,
    **options: Any,
) -> xr.Dataset:
    """:func:`~semkit.study` on Dask with a ``.zarr`` store: a LocalCluster of ``workers`` processes by default,
    or ``scheduler`` (an address, a ``dask.distributed.Client``). ``options``: the other fields of a
    :class:`StudySpec` (``space``, ``step``, ``starts``, ...). Rerunning the same call computes only what is
    missing; a store made with other settings is refused. ``attrs["computed"]`` counts the tasks this call computed.
    """
    if Path(store).suffix != ".zarr":
        raise ValueError(f"a sweep's store is a .zarr folder, got {store}")
    return study(shapes, networks, kind, store=store, scheduler=scheduler if scheduler is not None else "local",
                 workers=workers, progress=progress, **options)


def open_sweep(store: str | os.PathLike) -> xr.Dataset:
    """A sweep's store as one Dataset (labels as a ``shape`` coordinate); unfinished tasks are NaN."""
    return open_result(store, "sweep")




@keyword_only(2, "space", "step")
def semantic_maps(
    shapes: Sequence[Any],
    networks: Sequence[Any],
    *,
    space: Space | None = None,
    step: float | Sequence[float] | Mapping[str, float] | None = None,
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

    meshes = [load_shape(s) for s in shapes]
    names = [m.name for m in meshes]
    if len(set(names)) != len(names):
        raise ValueError(f"shape names must be unique, got {names}")
    classifiers = [n if isinstance(n, Classifier) else load_classifier(n) for n in networks]
    space = space or Space.paper()
    grid = space.grid(step, coords)
    columns = []
    for mesh in tqdm(meshes, desc="semantic maps", unit="shape", disable=not progress):
        f = SemanticFunctions(mesh, classifiers, renderer=renderer, space=space)
        stores = [None if store is None else Path(store) / c.name / f"{file_stem(mesh.name)}.nc" for c in classifiers]
        columns.append(network_maps(f, grid, stores, space=space, chunk_size=chunk_size, progress=progress, adaptive=adaptive,
                                    tolerance=tolerance))
    rows = [list(row) for row in zip(*columns)]
    stacked = stack(rows, [c.name for c in classifiers], names)
    stacked.attrs["title"] = "Network semantic maps"
    return stacked


@keyword_only(3, "space")
def looks(
    shape: Any,
    network: Any,
    looks: Mapping[str, Mapping[str, Any]],
    *,
    space: Space | None = None,
    image_size: int | None = None,
) -> dict[str, Any]:
    """One SemanticFunction per look: the same shape and network rendered with each look's Renderer options
    (e.g. ``{"white on black": {}, "materials on grey": {"materials": True, "background": 0.5}}``)."""
    from ..classify import Classifier, load_classifier
    from ..function import SemanticFunction
    from ..render import Renderer

    mesh = load_shape(shape)
    classifier = network if isinstance(network, Classifier) else load_classifier(network)
    size = image_size or classifier.input_size
    return {name: SemanticFunction(mesh, classifier, space=space, renderer=Renderer(image_size=size, **dict(options)))
            for name, options in looks.items()}


def maps_of(functions: Mapping[str, Any], dim: str, **map_options: Any) -> xr.Dataset:
    """Maps of several functions on one grid, stacked along ``dim`` named by the mapping's keys."""
    maps = [semantic_map(f, **map_options) for f in functions.values()]
    out = xr.concat(maps, dim=xr.DataArray(list(functions), dims=dim, name=dim), combine_attrs="drop_conflicts")
    out.attrs[f"maps_over_{dim}"] = len(maps)
    return out


@keyword_only(3, "iterations", "space")
def map_regions(
    maps: xr.Dataset,
    starts: Any,
    algorithms: Sequence[Any] = ("naive", "oir_b", "oir_w"),
    *,
    iterations: int = 600,
    space: Space | None = None,
    criterion: Criterion | str | None = None,
    **options: Any,
) -> xr.Dataset:
    """Regions grown on every map of a stack (``network`` x ``shape``; interpolated, so no renders),
    as one Dataset with those dims. ``options`` go to :func:`find_regions`."""
    space = recorded_space(maps, space)
    rows = [[find_regions(interpolate(maps.sel(network=n, shape=s), space=space), starts, algorithms, space=space,
                          iterations=iterations, criterion=criterion,
                          progress=False, **options) for s in maps.shape.values] for n in maps.network.values]
    out = stack(rows, list(maps.network.values), list(maps.shape.values))
    return out.assign_coords(label=maps.label, label_name=maps.label_name)
