"""A study's tasks and its store: what one task computes (by the same code as a single map or search), the
store's layout (the stack of blank task results, so it cannot drift from them) and writing a task's region."""


from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from ..classify import load_classifier
from ..criterion import Criterion
from ..function import Evaluation
from ..maps import semantic_map
from ..regions import find_regions
from ..scene import Mesh, load_shape
from ..space import Space
from ..store import StoreError, fingerprint, locked, read_dataset, refuse, settings_of, writing
from .stacking import stack


@lru_cache(maxsize=8)
def cached_classifier(name: str):
    """A network by name, loaded once per (worker) process (the 8 most recently used)."""
    return load_classifier(name)


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


def compute(settings: dict[str, Any], classifiers: Sequence[Any], mesh: Mesh, todo: Sequence[int],
             progress: bool = False) -> list[xr.Dataset]:
    """The results of the networks ``todo`` (indices into ``classifiers``, the study's networks) on one shape,
    by the same code as a single map or search (traces padded to ``iterations``).

    Maps render each view once for all the networks (:class:`~semkit.SemanticFunctions`, at the
    settings' ``image_size``); an adaptive map refines where any of the study's networks needs it, so
    all of them take part whichever are still to do.
    """
    from ..function import SemanticFunction, SemanticFunctions
    from ..maps import network_maps
    from ..render import Renderer

    space = Space.from_dict(settings["space"])
    if settings["kind"] == "map":
        adaptive = settings.get("adaptive")
        chosen = list(range(len(classifiers))) if adaptive else list(todo)
        f = SemanticFunctions(mesh, [classifiers[i] for i in chosen], renderer=Renderer(image_size=settings["image_size"]), space=space)
        grid = {k: np.asarray(v) for k, v in settings["grid"].items()}
        maps = network_maps(f, grid, [None] * len(chosen), space=space, progress=progress, adaptive=adaptive is not None,
                            tolerance=adaptive and adaptive["tolerance"])
        return [maps[chosen.index(i)] for i in todo]
    criterion = settings.get("criterion")
    out = []
    for i in todo:
        classifier = classifiers[i]
        renderer = Renderer(image_size=settings["image_size"] or classifier.input_size)
        f = SemanticFunction(mesh, classifier, renderer=renderer, space=space)
        result = find_regions(f, settings["starts"], settings["algorithms"], space=space, iterations=settings["iterations"],
                              step_rule=settings["step_rule"], progress=progress,
                              criterion=None if criterion is None else Criterion(**criterion))
        out.append(result.reindex(iteration=np.arange(settings["iterations"])))
    return out


def task_part(result: xr.Dataset, settings: dict[str, Any]) -> xr.Dataset:
    """A task's result as it is written into its region of the store."""
    part = result.drop_vars(list(Space.from_dict(settings["space"]).fixed), errors="ignore")
    return part.drop_vars(list(part.coords)).drop_attrs().expand_dims(network=1, shape=1)


class _Blank:
    """A stand-in f (zeros, and the label as prediction) to lay a store out by the real code of a task."""

    def __init__(self, space: Space, label: int) -> None:
        self.space, self.label, self.queries, self.gradient_method = space, label, 0, "none"

    def __call__(self, points: Any) -> np.ndarray:
        return np.zeros(len(points))

    def evaluate(self, points: Any, k: int = 1) -> Evaluation:
        n = len(points)
        return Evaluation(np.zeros(n), np.full(n, self.label), np.full((n, k), self.label), np.zeros((n, k)))

    def gradient(self, points: Any) -> np.ndarray:
        return np.zeros(np.shape(points))

    def describe(self) -> dict[str, Any]:
        from ..classify import imagenet_labels

        return {"label": self.label, "label_name": imagenet_labels()[self.label]}


def _layout(settings: dict[str, Any]) -> xr.Dataset:
    """The whole study's store, unfilled: the stack of blank task results (NaN, -1, False)."""
    space = Space.from_dict(settings["space"])
    rows = []
    for _ in settings["networks"]:
        row = []
        for label in settings["labels"]:
            blank = _Blank(space, label)
            if settings["kind"] == "map":
                adaptive = settings.get("adaptive")
                result = semantic_map(blank, space=space, coords=settings["grid"], progress=False, adaptive=adaptive is not None,
                                      tolerance=adaptive and adaptive["tolerance"])
            else:
                result = find_regions(blank, settings["starts"], settings["algorithms"], space=space, iterations=1,
                                      step_rule=settings["step_rule"], progress=False)
                result = result.reindex(iteration=np.arange(settings["iterations"]))
            row.append(result)
        rows.append(row)
    ds = stack(rows, settings["networks"], settings["shape_names"]).drop_vars(list(space.fixed), errors="ignore")
    for name, var in ds.data_vars.items():
        fill = {"f": np.nan, "i": -1, "b": False}[var.dtype.kind]
        ds[name] = var.copy(data=np.full(var.shape, fill, var.dtype))
    ds["done"] = (("network", "shape"), np.zeros((len(settings["networks"]), len(settings["shapes"])), np.int8),
                  {"long_name": "1 when the task's results are written"})
    ds.attrs.update(title=f"semkit study ({settings['kind']})", settings=json.dumps(settings),
                    fingerprint=fingerprint(settings), space=json.dumps(settings["space"]))
    return ds


def open_or_create(store: Path, settings: dict[str, Any]) -> np.ndarray:
    """The store's ``done`` flags; the store laid out first where there is none (refused where it differs)."""
    with locked(store):
        if store.exists():
            existing = read_dataset(store, load=False)
            with existing:
                if existing.attrs.get("fingerprint") != fingerprint(settings):
                    refuse(store, settings_of(existing), settings)
                return existing["done"].values
        layout = _layout(settings)
        encoding = {name: {"chunks": tuple(1 if d in ("network", "shape") else layout.sizes[d] for d in var.dims)}
                    for name, var in layout.data_vars.items()}
        with writing(store) as tmp:
            layout.to_zarr(tmp, mode="w", encoding=encoding, consolidated=False, zarr_format=2)
        return layout["done"].values


def write_part(store: Path, part: xr.Dataset, i: int, j: int) -> None:
    """Write one task's region (idempotent: equal settings give equal values), its done flag last."""
    region = {"network": slice(i, i + 1), "shape": slice(j, j + 1)}
    part.to_zarr(store, region={**region, **{d: slice(None) for d in part.dims if d not in region}}, consolidated=False)
    xr.Dataset({"done": (("network", "shape"), np.ones((1, 1), np.int8))}).to_zarr(store, region=region, consolidated=False)


def run_task(store: str, settings_json: str, networks: list[int], j: int) -> int:
    """A Dask task: compute the networks ``networks`` on shape j and write their regions of the store (those
    not done yet); returns how many it computed."""
    settings = json.loads(settings_json)
    with xr.open_zarr(store, consolidated=False, chunks=None) as ds:
        todo = [i for i in networks if int(ds.done.isel(network=i, shape=j)) == 0]
    if not todo:
        return 0
    needed = range(len(settings["networks"])) if settings.get("adaptive") else todo  # adaptive maps refine with all
    classifiers = {i: cached_classifier(settings["networks"][i]) for i in needed}
    mesh = cached_shape(settings["shapes"][j])
    for i in todo:
        if classifiers[i].fingerprint() != settings["network_digests"][i] or mesh.fingerprint() != settings["mesh_digests"][j]:
            raise StoreError(f"this worker's {settings['networks'][i]} or {settings['shapes'][j]} differs from the client's "
                             f"(other weights or mesh file): workers must load the same networks and meshes")
    for i, result in zip(todo, compute(settings, classifiers, mesh, todo)):
        write_part(Path(store), task_part(result, settings), i, j)
    return len(todo)


def tasks_of(settings: dict[str, Any], pairs: Sequence[tuple[int, int]]) -> list[tuple[list[int], int]]:
    """The (networks, shape) pairs as tasks: one per shape for maps (its views rendered once for all networks),
    one per pair for region searches."""
    if settings["kind"] != "map":
        return [([i], j) for i, j in pairs]
    shapes = sorted({j for _, j in pairs})
    return [([i for i, k in pairs if k == j], j) for j in shapes]
