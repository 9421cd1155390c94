"""A study's tasks and its store: what one task computes (by the same code as a single map or search), and
writing a task's region of the store (the first task to finish lays the store out as the stack of its own
result, so the layout cannot drift from the results)."""


from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from ..scene import Mesh, load_shape
from ..store import StoreError, fingerprint, locked, read_dataset, refuse, settings_of, writing
from .spec import Maps, StudySpec, cached_classifier
from .stacking import stack


@lru_cache(maxsize=32)
def cached_shape(shape: str) -> Mesh:
    """A shape, loaded once per (worker) process."""
    try:
        return load_shape(shape)
    except FileNotFoundError as e:
        import socket

        raise FileNotFoundError(f"{e} on {socket.gethostname()} (a Dask worker): the workers read mesh files and the "
                                "store at the paths the client gave, so a cluster needs a shared file system that "
                                "holds them at those paths") from None


def compute(spec: StudySpec, classifiers: Sequence[Any], mesh: Mesh, todo: Sequence[int]) -> list[xr.Dataset]:
    """The results of the networks ``todo`` (indices into ``classifiers``, the study's networks) on one shape,
    by the same code as a single map or search (traces padded to ``iterations``).

    Maps render each view once for all the networks ([`SemanticFunctions`][semkit.SemanticFunctions], at the
    spec's ``image_size`` or the networks' largest input size); an adaptive map is refined where its own
    network needs it, so only the networks still to do take part.
    """
    from ..function import SemanticFunction, SemanticFunctions
    from ..maps import network_maps
    from ..regions import find_regions
    from ..render import Renderer

    space, kind = spec.space, spec.kind
    if isinstance(kind, Maps):
        size = spec.image_size  # resolved by study(): the same for every task
        renderer = Renderer(image_size=size)  # closed after the task; the networks stay ready for the next one
        try:
            f = SemanticFunctions(mesh, [classifiers[i] for i in todo], renderer=renderer, space=space)
            return network_maps(f, space.grid(kind.step), [None] * len(todo), space=space, progress=False,
                                adaptive=kind.adaptive, max_error=kind.max_error)
        finally:
            renderer.close()
    out = []
    for i in todo:
        classifier = classifiers[i]
        renderer = Renderer(image_size=spec.image_size or classifier.input_size)
        try:
            f = SemanticFunction(mesh, classifier, renderer=renderer, space=space)
            result = find_regions(f, kind.starts, kind.algorithms, space=space, iterations=kind.iterations,
                                  step_rule=kind.step_rule, criterion=kind.criterion, progress=False)
        finally:
            renderer.close()
        out.append(result.reindex(iteration=np.arange(kind.iterations)))
    return out


def done_flags(store: Path, settings: dict[str, Any]) -> np.ndarray:
    """Which (network, shape) results the store holds (none where there is no store yet; refused where it differs)."""
    if not store.exists():
        return np.zeros((len(settings["networks"]), len(settings["shapes"])), np.int8)
    with read_dataset(store, load=False) as existing:
        if existing.attrs.get("fingerprint") != fingerprint(settings):
            refuse(store, settings_of(existing), settings)
        return existing["done"].values


def _layout(result: xr.Dataset, settings: dict[str, Any]) -> xr.Dataset:
    """The whole study's store, unfilled: the stack of one task's result for every pair (NaN, -1, False)."""
    networks, shapes = settings["networks"], settings["shape_names"]
    ds = stack([[result] * len(shapes)] * len(networks), networks, shapes)
    ds = ds.drop_vars([n for n in ds.coords if n in settings["space"].get("fixed", {})], errors="ignore")
    ds = ds.assign_coords(label=("shape", settings["labels"]), label_name=("shape", settings["label_names"]))
    for name, var in ds.data_vars.items():
        fill = {"f": np.nan, "i": -1, "b": False}[var.dtype.kind]
        ds[name] = var.copy(data=np.full(var.shape, fill, var.dtype))
    ds["done"] = (("network", "shape"), np.zeros((len(networks), len(shapes)), np.int8),
                  {"long_name": "1 when the task's results are written"})
    ds.attrs.update(title=f"semkit study ({settings['kind']})", settings=json.dumps(settings),
                    fingerprint=fingerprint(settings), space=json.dumps(settings["space"]))
    return ds


def write_result(store: Path, result: xr.Dataset, settings: dict[str, Any], i: int, j: int) -> None:
    """Write one task's result into its region of the store (laid out first where there is none), its done flag
    last; idempotent: equal settings give equal values."""
    with locked(store):
        if not store.exists():
            layout = _layout(result, settings)
            encoding = {name: {"chunks": tuple(1 if d in ("network", "shape") else layout.sizes[d] for d in var.dims)}
                        for name, var in layout.data_vars.items()}
            with writing(store) as tmp:
                layout.to_zarr(tmp, mode="w", encoding=encoding, consolidated=False, zarr_format=2)
    fixed = list(settings["space"].get("fixed", {}))
    part = result.drop_vars(fixed, errors="ignore")
    part = part.drop_vars(list(part.coords)).drop_attrs().expand_dims(network=1, shape=1)
    region = {"network": slice(i, i + 1), "shape": slice(j, j + 1)}
    part.to_zarr(store, region={**region, **{d: slice(None) for d in part.dims if d not in region}}, consolidated=False)
    xr.Dataset({"done": (("network", "shape"), np.ones((1, 1), np.int8))}).to_zarr(store, region=region, consolidated=False)


def run_task(store: str, spec: StudySpec, settings: dict[str, Any], networks: list[int], j: int) -> int:
    """A Dask task: compute the networks ``networks`` on shape j and write their regions of the store (those
    not done yet); returns how many it computed."""
    todo = [i for i in networks if int(done_flags(Path(store), settings)[i, j]) == 0]
    if not todo:
        return 0
    classifiers = {i: cached_classifier(settings["networks"][i], spec.precision) for i in todo}
    mesh = cached_shape(settings["shapes"][j])
    for i in todo:
        if classifiers[i].fingerprint() != settings["network_digests"][i] or mesh.fingerprint() != settings["mesh_digests"][j]:
            raise StoreError(f"this worker's {settings['networks'][i]} or {settings['shapes'][j]} differs from the client's "
                             f"(other weights or mesh file): workers must load the same networks and meshes")
    ordered = [classifiers.get(i) for i in range(len(spec.networks))]
    for i, result in zip(todo, compute(spec, ordered, mesh, todo)):
        write_result(Path(store), result, settings, i, j)
    return len(todo)


def tasks_of(spec: StudySpec, pairs: Sequence[tuple[int, int]]) -> list[tuple[list[int], int]]:
    """The (networks, shape) pairs as tasks: one per shape for maps (its views rendered once for all networks),
    one per pair for region searches."""
    if not isinstance(spec.kind, Maps):
        return [([i], j) for i, j in pairs]
    shapes = sorted({j for _, j in pairs})
    return [([i for i, k in pairs if k == j], j) for j in shapes]
