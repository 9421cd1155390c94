"""Studies: maps or robust regions over shapes x networks, serially or on Dask, as one Dataset; comparisons.

``study(shapes, networks, kind="map" | "regions")`` runs one task per
shape for maps (each view rendered once and classified by every network,
:class:`~semkit.SemanticFunctions`) and one per (network, shape) for
:func:`~semkit.find_regions`, in this process (``scheduler=None``) or on a
Dask cluster (``"local"``: a LocalCluster; an address; a Client), and
returns one Dataset with ``network`` and ``shape`` dims, stacked by
:func:`stack` from the tasks' own results, so a study holds exactly what a
single map or search holds. With ``store`` (a ``.zarr`` folder) each task
writes its own regions of one store (one per network), each ``done`` flag last (the store's
layout is the stack of one task's result, so it cannot drift from it):
rerunning computes only unfinished tasks, and a worker that dies loses no
finished task. Dask tasks load their mesh and network on the worker
(cached per worker process).

Also here: :func:`load_shape`, the one way to name a shape (a gallery name,
a mesh file, a ShapeNet model); :func:`map_regions`, regions over a stack
of maps; :func:`average` over shapes; :func:`compare_networks`, networks
compared with confidence (per-shape metrics under an explicit criterion,
bootstrap intervals over shapes, paired sign-flip tests, flips across
criteria), :func:`comparison_table` and :func:`findings` to read it.
"""

from __future__ import annotations

import itertools
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from ._store import StoreError, check_format, fingerprint, locked, read_dataset, refuse, settings_of, versioned, writing
from .adaptive import resolve_tolerance
from .maps import grid_coords, interpolate, semantic_map
from .mesh import Mesh
from .regions import box_iou, find_regions, method, srvr, style, volume_ratio
from .semantic import Evaluation
from .space import Space, recorded_space
from .criterion import Criterion
from .trust import robust_accuracy

KINDS = ("map", "regions")
#: Per-task attrs that become coordinates or are dropped when results are stacked.
PER_TASK = ("label", "label_name", "network", "shape", "fingerprint", "settings", "created", "function")


# ------------------------------------------------------------------ shapes
def load_shape(shape: Any, shapenet: str | os.PathLike | None = None) -> Mesh:
    """A shape by any of its names: a :class:`Mesh`, a gallery name, a mesh file (ShapeNet files are
    labelled by their class), or a ShapeNet model (``class/model_id``, or a model id) of the folder ``shapenet``."""
    from . import gallery
    from .shapenet import ShapeNet, load_file

    if isinstance(shape, Mesh):
        return shape
    text = str(shape)
    if shapenet is not None and not Path(text).is_file():
        data = ShapeNet(shapenet)
        if "/" in text:
            cls, model = text.split("/", 1)
            return data.load(cls, model)
        for entry in data.entries():
            if entry.model_id == text:
                return data.load(entry.cls, entry.model_id)
        raise KeyError(f"no model {text!r} in {shapenet}")
    if text in gallery.names():
        return gallery.load(text)
    if not Path(text).exists():
        raise FileNotFoundError(f"no shape {text!r}: not a gallery shape ({gallery.names()}) nor a mesh file")
    return load_file(text)


def load_shapes(
    shapes: Sequence[Any] | None = None,
    shapenet: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    per_class: int = 2,
) -> list[Mesh]:
    """Meshes for a study: ``shapes`` (see :func:`load_shape`; default: the gallery), or, with ``shapenet``
    and no ``shapes``, ``per_class`` models of each of ``classes`` (default: the paper's classes found there).

    With ``shapenet`` and ``classes``, ``shapes`` may name model ids to pick.
    Entries without a mesh are skipped with a warning.
    """
    from . import gallery

    if shapenet is None:
        return [load_shape(s) for s in (shapes or gallery.names())]
    from .shapenet import PAPER_CLASSES, ShapeNet

    data = ShapeNet(shapenet)
    if shapes and not classes:
        return [load_shape(s, shapenet) for s in shapes]
    chosen = list(classes) if classes else [c for c in data.classes if c in PAPER_CLASSES] or data.classes
    meshes = []
    for cls in chosen:
        if shapes:
            meshes += [data.load(cls, m) for m in data.models(cls) if m in set(shapes)]
        else:
            meshes += list(data.meshes(cls, limit=per_class))
    if not meshes:
        raise ValueError(f"no meshes selected from {shapenet} (classes {chosen}, shapes {shapes})")
    return meshes


# ------------------------------------------------------------------- stack
def stack(results: Sequence[Sequence[xr.Dataset]], networks: Sequence[str], shapes: Sequence[str]) -> xr.Dataset:
    """Results of :func:`semantic_map` or :func:`find_regions`, one per (network, shape) (rows: networks),
    as one Dataset with ``network`` and ``shape`` dims.

    Labels become coordinates along ``shape`` (``label``, ``label_name``);
    the attrs the results share are kept; traces of different lengths are
    padded with NaN.
    """
    first = results[0][0]
    per_shape = [row for row in zip(*results)]  # [shape][network]
    label = [r[0].attrs.get("label", -1) for r in per_shape]
    label_name = [r[0].attrs.get("label_name", "") for r in per_shape]
    stacked = xr.concat(
        [xr.concat([r.drop_attrs() for r in row], dim="shape", join="outer") for row in results],
        dim="network", join="outer", combine_attrs="drop",
    )
    stacked = stacked.assign_coords(network=("network", list(networks)), shape=("shape", list(shapes)),
                                    label=("shape", label), label_name=("shape", label_name))
    for name, coord in first.coords.items():  # concat dropped the coordinates' attrs
        stacked[name].attrs = dict(coord.attrs)
    for name, var in first.data_vars.items():  # attrs that name one shape's class name the true class in a stack
        attrs = dict(var.attrs)
        if len(set(label_name)) > 1 and "long_name" in attrs:
            attrs["long_name"] = attrs["long_name"].replace(str(label_name[0]), "true class")
        stacked[name].attrs = attrs
    stacked.attrs = {k: v for k, v in first.attrs.items() if k not in PER_TASK}
    return stacked


def average(data: xr.Dataset | xr.DataArray, dim: str = "shape") -> xr.Dataset | xr.DataArray:
    """The mean over ``dim`` (default: shapes), with attrs that say so (``mean_over_<dim>``, the class name)."""
    names = np.unique(np.atleast_1d(data["label_name"].values)) if "label_name" in data.coords else []
    if isinstance(data, xr.Dataset):
        data = data.drop_vars(["top1"], errors="ignore")  # a mean class index means nothing
    out = data.mean(dim, keep_attrs=True)
    out.attrs[f"mean_over_{dim}"] = int(data.sizes[dim])
    if dim == "shape" or "label_name" in data.coords:
        out.attrs["label_name"] = str(names[0]) if len(names) == 1 else "true class"
    return out


def looks(
    shape: Any,
    network: Any,
    looks: Mapping[str, Mapping[str, Any]],
    space: Space | None = None,
    *,
    image_size: int | None = None,
) -> dict[str, Any]:
    """One SemanticFunction per look: the same shape and network rendered with each look's Renderer options
    (e.g. ``{"white on black": {}, "materials on grey": {"materials": True, "background": 0.5}}``)."""
    from .classifier import Classifier, load_classifier
    from .renderer import Renderer
    from .semantic import SemanticFunction

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


# ------------------------------------------------------------------ tasks
@lru_cache(maxsize=8)
def _classifier(name: str):
    from .classifier import load_classifier

    return load_classifier(name)


@lru_cache(maxsize=32)
def _mesh(shape: str) -> Mesh:
    """A shape, loaded once per (worker) process."""
    try:
        return load_shape(shape)
    except FileNotFoundError as e:
        import socket

        raise FileNotFoundError(f"{e} on {socket.gethostname()} (a Dask worker): the workers read mesh files and the "
                                "store at the paths the client gave, so a cluster needs a shared file system that "
                                "holds them at those paths") from None


def _compute(settings: dict[str, Any], classifiers: Sequence[Any], mesh: Mesh, todo: Sequence[int],
             progress: bool = False) -> list[xr.Dataset]:
    """The results of the networks ``todo`` (indices into ``classifiers``, the study's networks) on one shape,
    by the same code as a single map or search (traces padded to ``iterations``).

    Maps render each view once for all the networks (:class:`~semkit.SemanticFunctions`, at the
    settings' ``image_size``); an adaptive map refines where any of the study's networks needs it, so
    all of them take part whichever are still to do.
    """
    from .maps import network_maps
    from .renderer import Renderer
    from .semantic import SemanticFunction, SemanticFunctions

    space = Space.from_dict(settings["space"])
    if settings["kind"] == "map":
        adaptive = settings.get("adaptive")
        chosen = list(range(len(classifiers))) if adaptive else list(todo)
        f = SemanticFunctions(mesh, [classifiers[i] for i in chosen], renderer=Renderer(image_size=settings["image_size"]), space=space)
        grid = {k: np.asarray(v) for k, v in settings["grid"].items()}
        maps = network_maps(f, space, grid, [None] * len(chosen), progress=progress, adaptive=adaptive is not None,
                            tolerance=adaptive and adaptive["tolerance"])
        return [maps[chosen.index(i)] for i in todo]
    criterion = settings.get("criterion")
    out = []
    for i in todo:
        classifier = classifiers[i]
        renderer = Renderer(image_size=settings["image_size"] or classifier.input_size)
        f = SemanticFunction(mesh, classifier, renderer=renderer, space=space)
        result = find_regions(f, settings["starts"], settings["algorithms"], space, settings["iterations"],
                              step_rule=settings["step_rule"], progress=progress,
                              criterion=None if criterion is None else Criterion(**criterion))
        out.append(result.reindex(iteration=np.arange(settings["iterations"])))
    return out


def _part(result: xr.Dataset, settings: dict[str, Any]) -> xr.Dataset:
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
        from .classifier import imagenet_labels

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
                result = semantic_map(blank, space, coords=settings["grid"], progress=False, adaptive=adaptive is not None,
                                      tolerance=adaptive and adaptive["tolerance"])
            else:
                result = find_regions(blank, settings["starts"], settings["algorithms"], space, 1,
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


def _open_or_create(store: Path, settings: dict[str, Any]) -> np.ndarray:
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


def _write(store: Path, part: xr.Dataset, i: int, j: int) -> None:
    """Write one task's region (idempotent: equal settings give equal values), its done flag last."""
    region = {"network": slice(i, i + 1), "shape": slice(j, j + 1)}
    part.to_zarr(store, region={**region, **{d: slice(None) for d in part.dims if d not in region}}, consolidated=False)
    xr.Dataset({"done": (("network", "shape"), np.ones((1, 1), np.int8))}).to_zarr(store, region=region, consolidated=False)


def _run_task(store: str, settings_json: str, networks: list[int], j: int) -> int:
    """A Dask task: compute the networks ``networks`` on shape j and write their regions of the store (those
    not done yet); returns how many it computed."""
    settings = json.loads(settings_json)
    with xr.open_zarr(store, consolidated=False, chunks=None) as ds:
        todo = [i for i in networks if int(ds.done.isel(network=i, shape=j)) == 0]
    if not todo:
        return 0
    needed = range(len(settings["networks"])) if settings.get("adaptive") else todo  # adaptive maps refine with all
    classifiers = {i: _classifier(settings["networks"][i]) for i in needed}
    mesh = _mesh(settings["shapes"][j])
    for i in todo:
        if classifiers[i].fingerprint() != settings["network_digests"][i] or mesh.fingerprint() != settings["mesh_digests"][j]:
            raise StoreError(f"this worker's {settings['networks'][i]} or {settings['shapes'][j]} differs from the client's "
                             f"(other weights or mesh file): workers must load the same networks and meshes")
    for i, result in zip(todo, _compute(settings, classifiers, mesh, todo)):
        _write(Path(store), _part(result, settings), i, j)
    return len(todo)


def _tasks(settings: dict[str, Any], pairs: Sequence[tuple[int, int]]) -> list[tuple[list[int], int]]:
    """The (networks, shape) pairs as tasks: one per shape for maps (its views rendered once for all networks),
    one per pair for region searches."""
    if settings["kind"] != "map":
        return [([i], j) for i, j in pairs]
    shapes = sorted({j for _, j in pairs})
    return [([i for i, k in pairs if k == j], j) for j in shapes]


# ------------------------------------------------------------------ study
def _settings(kind, meshes, classifiers, shape_names, space, step, starts, algorithms, iterations, step_rule, image_size,
              adaptive=False, tolerance=None, criterion=None):
    if kind not in KINDS:
        raise ValueError(f"unknown study kind {kind!r}; choose from {KINDS}")
    if not meshes or not classifiers:
        raise ValueError("a study needs at least one shape and one network")
    networks = [c.name for c in classifiers]
    for what, names in (("shape", [m.name for m in meshes]), ("network", networks)):
        if len(set(names)) != len(names):
            raise ValueError(f"{what} names must be unique, got {names}")
    missing = [m.name for m in meshes if m.label is None]
    if missing:
        raise ValueError(f"shapes {missing} carry no ImageNet label: load them with a label (gallery, ShapeNet, load_mesh(label=))")
    settings: dict[str, Any] = {
        "kind": kind, "shapes": shape_names, "shape_names": [m.name for m in meshes], "labels": [int(m.label) for m in meshes],
        "mesh_digests": [m.fingerprint() for m in meshes], "networks": networks,
        "network_digests": [c.fingerprint() for c in classifiers], "space": space.to_dict(), "image_size": image_size,
    }
    if tolerance is not None and not adaptive:
        raise ValueError("tolerance= is for adaptive maps: pass adaptive=True as well")
    if kind == "map":  # one render per view for all networks: at the largest input size unless image_size is given
        settings["image_size"] = image_size or max(c.input_size for c in classifiers)
        settings["grid"] = {k: [float(x) for x in v] for k, v in grid_coords(space, step).items()}
        if adaptive:
            settings["adaptive"] = {"tolerance": resolve_tolerance(tolerance)}
    elif adaptive:
        raise ValueError("adaptive= is for map studies (kind='map')")
    else:
        for a in algorithms:
            method(a)  # unknown names are named here, before any work
        settings.update(starts=space.points(starts).tolist(), algorithms=[str(a) for a in algorithms],
                        iterations=int(iterations), step_rule=step_rule)
        if criterion is not None:  # judges the verified boxes; stored, so a store grown under another is refused
            settings["criterion"] = Criterion.resolve(criterion).spec()
    if criterion is not None and kind == "map":
        raise ValueError("criterion= is for region studies with verified boxes; maps hold scores and top-1 answers, "
                         "judge them afterwards (compare_networks(..., criterion=))")
    return versioned(settings)


def study(
    shapes: Sequence[Any],
    networks: Sequence[Any],
    kind: str = "map",
    *,
    store: str | os.PathLike | None = None,
    scheduler: Any = None,
    workers: int = 2,
    space: Space | None = None,
    step: Any = None,
    starts: Any = ((130, 30), (50, 20), (200, 15), (310, 50)),
    algorithms: Sequence[str] = ("naive", "oir_b"),
    iterations: int = 600,
    step_rule: str = "adaptive",
    image_size: int | None = None,
    adaptive: bool = False,
    tolerance: float | None = None,
    criterion: Criterion | str | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Maps (``kind="map"``) or region searches (``"regions"``) of every shape under every network, as one Dataset.

    ``shapes``: anything :func:`load_shape` takes; ``networks``: names (or
    :class:`~semkit.Classifier` objects when run here). ``scheduler``: None
    runs the tasks in this process; ``"local"`` on a LocalCluster of
    ``workers`` processes; an address (``"tcp://host:8786"``) or a
    ``dask.distributed.Client`` on that cluster (workers load networks by
    name). ``store`` (a ``.zarr`` folder, required on Dask): each task
    writes its region; rerunning computes only what is missing; a store
    made with other settings (shapes, weights, grid, ...) is refused.
    ``attrs["computed"]`` counts the (network, shape) results this call
    computed. Maps run one task per shape, each view rendered once for all
    networks at ``image_size`` (None: the networks' largest input size);
    region searches one per (network, shape), at ``image_size`` or each
    network's own. ``adaptive`` and ``tolerance``: adaptive maps (see
    :func:`~semkit.semantic_map`), refined where any network needs it.
    ``criterion``: what verified boxes are grown under (region studies).
    """
    from .classifier import Classifier

    if kind not in KINDS:
        raise ValueError(f"unknown study kind {kind!r}; choose from {KINDS}")
    if store is not None:
        check_format(Path(store), (".zarr",), "study's store")
    if scheduler is not None and store is None:
        raise ValueError("a study on Dask needs a store (a .zarr folder) for the workers to write to")
    if scheduler is not None and not all(isinstance(n, str) for n in networks):
        raise ValueError("on Dask, networks are given by name (the workers load them)")
    if scheduler is not None and not all(isinstance(s, str) for s in shapes):
        raise ValueError("on Dask, shapes are given as names or files (gallery names, mesh paths, ShapeNet ids): the workers load them")
    meshes = [load_shape(s) for s in shapes]
    classifiers = [n if isinstance(n, Classifier) else _classifier(str(n)) for n in networks]
    # files by absolute path, so that workers (started elsewhere) read the same ones
    names = [(str(Path(s).resolve()) if Path(s).is_file() else s) if isinstance(s, str) else m.name
             for s, m in zip(shapes, meshes)]
    space = space or Space.paper()
    settings = _settings(kind, meshes, classifiers, names, space, step, starts, algorithms, iterations, step_rule, image_size,
                         adaptive, tolerance, criterion)
    pairs = [(i, j) for i in range(len(classifiers)) for j in range(len(meshes))]
    from tqdm.auto import tqdm

    if store is None:
        results = [[None] * len(meshes) for _ in classifiers]
        for networks, j in tqdm(_tasks(settings, pairs), desc=f"study ({kind})", unit="task", disable=not progress):
            for i, result in zip(networks, _compute(settings, classifiers, meshes[j], networks)):
                results[i][j] = result
        out = stack(results, settings["networks"], [m.name for m in meshes])
        out.attrs.update(settings=json.dumps(settings), fingerprint=fingerprint(settings), computed=len(pairs))
        return out

    store = Path(store)
    done = _open_or_create(store, settings)
    todo = [(i, j) for i, j in pairs if int(done[i, j]) == 0]
    computed = 0
    if todo and scheduler is None:
        for networks, j in tqdm(_tasks(settings, todo), desc=f"study ({kind})", unit="task", disable=not progress):
            for i, result in zip(networks, _compute(settings, classifiers, meshes[j], networks)):
                _write(store, _part(result, settings), i, j)
                computed += 1
    elif todo:
        computed = _on_dask(store, settings, todo, scheduler, workers, progress)
    result = open_study(store)
    result.attrs["computed"] = computed
    return result


#: How long a study waits for a scheduler at an address to answer.
SCHEDULER_TIMEOUT = "5s"


def _on_dask(store: Path, settings: dict[str, Any], todo, scheduler: Any, workers: int, progress: bool) -> int:
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    own = None
    if isinstance(scheduler, Client):
        client = scheduler
    elif scheduler == "local":
        own = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(own)
    else:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"no Dask scheduler answered at {scheduler!r} within {SCHEDULER_TIMEOUT} ({e}): start "
                                  "`dask scheduler` there, check the address, or pass scheduler='local'") from None
    computed = 0
    try:
        settings_json = json.dumps(settings)
        key = fingerprint(settings)
        futures = [client.submit(_run_task, str(store.resolve()), settings_json, networks, j, retries=2,
                                 key=f"semkit-{key}-{'.'.join(map(str, networks))}-{j}")
                   for networks, j in _tasks(settings, todo)]
        with tqdm(total=len(futures), desc=f"study ({settings['kind']})", unit="task", disable=not progress) as bar:
            for future in as_completed(futures):
                computed += future.result()
                bar.update()
    finally:
        if client is not scheduler:
            client.close()
        if own is not None:
            own.close()
    return computed


def open_study(store: str | os.PathLike) -> xr.Dataset:
    """A study's store as one Dataset (labels as a ``shape`` coordinate); unfinished tasks are NaN, ``done`` 0."""
    store = Path(store)
    if not store.exists():
        raise FileNotFoundError(f"no study at {store}")
    return read_dataset(store)


# ------------------------------------------------------------ comparisons
def map_regions(
    maps: xr.Dataset,
    starts: Any,
    algorithms: Sequence[Any] = ("naive", "oir_b", "oir_w"),
    iterations: int = 600,
    space: Space | None = None,
    **options: Any,
) -> xr.Dataset:
    """Regions grown on every map of a stack (``network`` x ``shape``; interpolated, so no renders),
    as one Dataset with those dims. ``options`` go to :func:`find_regions`."""
    space = recorded_space(maps, space)
    rows = [[find_regions(interpolate(maps.sel(network=n, shape=s), space), starts, algorithms, space, iterations,
                          progress=False, **options) for s in maps.shape.values] for n in maps.network.values]
    out = stack(rows, list(maps.network.values), list(maps.shape.values))
    return out.assign_coords(label=maps.label, label_name=maps.label_name)


def _per_shape(maps: xr.Dataset, radii: Sequence[float], criterion: Criterion) -> dict[str, xr.DataArray]:
    """Metric name -> DataArray over (network, shape) under one criterion."""
    good = criterion.on_map(maps)
    params = [d for d in good.dims if d not in ("network", "shape")]
    out = {"accuracy over the space": good.mean(params).astype(float),
           "mean score": maps["score"].mean(params)}
    ra = robust_accuracy(maps, list(radii), criterion=criterion)
    for r in radii:
        out[f"robust accuracy r={r:g}"] = ra.sel(radius=r).drop_vars("radius")
    return out


def _region_metrics(regions: xr.Dataset) -> dict[str, xr.DataArray]:
    ratios = volume_ratio(regions).mean("start")
    return {f"SRVR {style(str(a))[0]}": ratios.sel(algorithm=a).drop_vars("algorithm") for a in regions.algorithm.values}


def _bootstrap(values: np.ndarray, rng: np.random.Generator, n_boot: int, confidence: float) -> tuple[float, float]:
    """Percentile interval of the mean over the last axis (shapes)."""
    k = values.shape[-1]
    idx = rng.integers(0, k, (n_boot, k))
    means = values[..., idx].mean(-1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def _paired_p(diff: np.ndarray, rng: np.random.Generator, n_perm: int) -> float:
    """Two-sided p-value of a zero mean difference, from sign flips of the per-shape differences."""
    observed = abs(diff.mean())
    if np.allclose(diff, 0):
        return 1.0
    if len(diff) <= 12:  # every sign pattern: exact (with k shapes the smallest p is 2 / 2^k)
        signs = np.array(list(itertools.product([-1.0, 1.0], repeat=len(diff))))
        return float((np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12).mean())
    signs = rng.choice([-1.0, 1.0], size=(n_perm, len(diff)))
    flipped = np.abs((signs * diff).mean(axis=1))
    return float((1 + (flipped >= observed - 1e-12).sum()) / (n_perm + 1))


def compare_networks(
    maps: xr.Dataset,
    regions: xr.Dataset | None = None,
    *,
    radii: Sequence[float] = (0, 6, 12),
    criterion: Criterion | str | Sequence[Criterion | str] | None = None,
    threshold: float | Sequence[float] | None = None,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> xr.Dataset:
    """Networks compared on the same shapes, with intervals and paired tests.

    ``maps``: stacked maps with ``network`` and ``shape`` dims (from
    ``semantic_maps`` or a sweep); ``regions``: region searches with the same
    dims (for SRVR per algorithm). ``criterion``: one criterion or a list
    to compare under several (a map judges top-1 and score >= t);
    ``threshold``: the shortcut, a number or a list of numbers (None in a
    list: top-1 correct). Default: top-1 correct.

    Returns a Dataset over (criterion, metric, network) with ``mean``,
    ``ci_low``, ``ci_high`` (bootstrap percentile interval over shapes) and
    over (criterion, metric, network, other) with ``difference`` (network
    minus other, mean over shapes), its interval, and ``p_value`` (paired
    sign-flip test). SRVR does not depend on the criterion and is repeated.
    """
    if not {"network", "shape"} <= set(maps.dims):
        raise ValueError("compare_networks needs maps with 'network' and 'shape' dims (semkit.semantic_maps, a sweep)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if criterion is not None and threshold is not None:
        raise ValueError("pass criterion= or threshold=, not both")
    if criterion is not None:
        criteria = [Criterion.resolve(c) for c in (criterion if isinstance(criterion, (list, tuple)) else [criterion])]
    else:
        thresholds = list(threshold) if isinstance(threshold, (list, tuple, np.ndarray)) else [threshold]
        criteria = [Criterion.resolve(None, None if t is None else float(t)) for t in thresholds]
    networks = [str(n) for n in maps.network.values]
    rng = np.random.default_rng(seed)
    tables = []
    for criterion in criteria:
        metrics = _per_shape(maps, radii, criterion)
        if regions is not None:
            metrics.update(_region_metrics(regions))
        names = list(metrics)
        order = {"network": maps.network.values, "shape": maps.shape.values}  # regions matched by name, not position
        values = np.stack([metrics[m].sel(order).transpose("network", "shape").values for m in names])  # [metric, network, shape]
        M, N, _ = values.shape
        mean, low, high = values.mean(-1), np.empty((M, N)), np.empty((M, N))
        diff, d_low, d_high, p = (np.full((M, N, N), np.nan) for _ in range(4))
        for m in range(M):
            for i in range(N):
                low[m, i], high[m, i] = _bootstrap(values[m, i], rng, n_boot, confidence)
            for i, j in itertools.permutations(range(N), 2):
                d = values[m, i] - values[m, j]
                diff[m, i, j] = d.mean()
                d_low[m, i, j], d_high[m, i, j] = _bootstrap(d, rng, n_boot, confidence)
                p[m, i, j] = _paired_p(d, rng, n_boot)
        tables.append(xr.Dataset(
            {
                "mean": (("metric", "network"), mean, {"long_name": "mean over shapes"}),
                "ci_low": (("metric", "network"), low),
                "ci_high": (("metric", "network"), high),
                "difference": (("metric", "network", "other"), diff, {"long_name": "network minus other, mean over shapes"}),
                "difference_low": (("metric", "network", "other"), d_low),
                "difference_high": (("metric", "network", "other"), d_high),
                "p_value": (("metric", "network", "other"), p, {"long_name": "paired sign-flip test, two-sided"}),
            },
            coords={"metric": names, "network": networks, "other": networks},
        ))
    out = xr.concat(tables, dim=xr.DataArray([c.name for c in criteria], dims="criterion", name="criterion"))
    out.attrs = {
        "title": "Networks compared with confidence",
        "shapes": int(maps.sizes["shape"]),
        "confidence": confidence,
        "bootstrap": int(n_boot),
        "radii": [float(r) for r in radii],
        "interval": f"{confidence:.0%} bootstrap percentile interval over shapes",
        "test": "paired sign-flip permutation test over shapes, two-sided",
    }
    return out


def findings(comparison: xr.Dataset, alpha: float = 0.05) -> list[str]:
    """Sentences on each pair of networks: significant or not, and whether the order flips across criteria."""
    lines = []
    networks = [str(n) for n in comparison.network.values]
    for metric in comparison.metric.values:
        for a, b in itertools.combinations(networks, 2):
            pair = comparison.sel(metric=metric, network=a, other=b)
            signs = set(np.sign(np.round(pair.difference.values, 12)).tolist()) - {0.0}
            parts = []
            for crit in comparison.criterion.values:
                row = pair.sel(criterion=crit)
                d, lo, hi, pv = (float(row[k]) for k in ("difference", "difference_low", "difference_high", "p_value"))
                verdict = "significant" if pv < alpha else "not significant"
                parts.append(f"{crit}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}], p = {pv:.3f} ({verdict})")
            flip = " The order flips across the criteria." if len(signs) > 1 else ""
            lines.append(f"{metric}, {a} minus {b}: " + "; ".join(parts) + "." + flip)
    return lines


def comparison_table(comparison: xr.Dataset, criterion: str | None = None):
    """A comparison as a table (pandas): per network, each metric's mean and interval over shapes, as text."""
    import pandas as pd

    c = comparison.sel(criterion=criterion) if criterion is not None else comparison.isel(criterion=0)
    cells = {
        str(m): [f"{c['mean'].sel(metric=m, network=n).item():.3f} [{c.ci_low.sel(metric=m, network=n).item():.3f}, "
                 f"{c.ci_high.sel(metric=m, network=n).item():.3f}]" for n in c.network.values]
        for m in c.metric.values
    }
    table = pd.DataFrame(cells, index=pd.Index([str(n) for n in c.network.values], name="network"))
    table.attrs.update(criterion=c.criterion.item(), interval=comparison.attrs["interval"])
    return table


def compare_searches(searches: dict[str, xr.Dataset]):
    """Region searches of the same starts and methods (say, faithful against adaptive steps) side by side: the
    queries and SRVR of each per method, and the mean IoU of the first two's boxes (a pandas DataFrame)."""
    import pandas as pd

    table = {f"queries, {name}": r.queries.sum("start").to_pandas() for name, r in searches.items()}
    results = list(searches.values())
    if len(results) > 1:
        table["mean IoU of the boxes"] = box_iou(results[0], results[1]).mean("start").to_pandas()
    table.update({f"SRVR, {name}": srvr(r).to_pandas() for name, r in searches.items()})
    return pd.DataFrame(table)
