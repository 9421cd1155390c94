"""Running a study: maps or robust regions over shapes x networks, serially or on Dask, as one Dataset.

``study(shapes, networks, kind="map" | "regions")`` runs one task per
shape for maps (each view rendered once and classified by every network,
[`SemanticFunctions`][semkit.SemanticFunctions]) and one per (network, shape) for
[`find_regions`][semkit.find_regions], in this process (``scheduler=None``) or on a
Dask cluster (``"local"``: a LocalCluster; an address; a Client), and
returns one Dataset with ``network`` and ``shape`` dims, stacked by
[`stack`][semkit.studies.stack] from the tasks' own results, so a study holds exactly what a
single map or search holds. With ``store`` (a ``.zarr`` folder) each task
writes its own regions of one store (one per network), each ``done`` flag last (the store's
layout is the stack of one task's result, so it cannot drift from it):
rerunning computes only unfinished tasks, and a worker that dies loses no
finished task. Dask tasks load their mesh and network on the worker
(cached per worker process). What a study computes is a
[`StudySpec`][semkit.StudySpec] (`.spec`); its tasks and store layout are in
`.tasks`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import xarray as xr

from ..classify import Classifier
from ..scene import load_shape
from ..store import check_format, claimed, fingerprint, locked, open_result
from ..validation import check_count
from .devices import local_cluster
from .spec import Maps, Regions, StudySpec, cached_classifier
from .stacking import stack
from .tasks import compute, done_flags, run_task, tasks_of, write_result


def study(
    shapes: "StudySpec | Sequence[Any]",
    networks: Sequence[Any] | None = None,
    kind: "str | Maps | Regions" = "map",
    *,
    space: Any = None,
    image_size: int | None = None,
    store: str | os.PathLike | None = None,
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Maps or region searches of every shape under every network, as one Dataset with ``network`` and ``shape`` dims.

    What to compute is a [`StudySpec`][semkit.StudySpec]: pass one, or its fields. Maps run one task per shape (each view
    rendered once for all networks), region searches one per (network, shape); the result holds exactly what a
    single map or search holds, stacked. With ``store`` each task writes its own part, its ``done`` flag last:
    rerunning computes only what is missing, a worker that dies loses no finished task, a store made with other
    settings (shapes, weights, grid, ...) is refused, and processes sharing a store share its tasks.

    Parameters
    ----------
    shapes : StudySpec or sequence
        A whole spec (then pass none of ``networks``, ``kind``, ``space``, ``image_size``), or the shapes: anything
        [`load_shape`][semkit.load_shape] takes, one item per shape.
    networks : sequence of str or Classifier, optional
        Network names (or [`Classifier`][semkit.Classifier] objects when run here); required without a spec.
    kind : str, Maps or Regions, default "map"
        What to compute for each pair: [`Maps`][semkit.Maps] or [`Regions`][semkit.Regions] with their options, or "map", "regions".
    space : Space, optional
        The semantic Space; None: [`Space.paper`][semkit.Space.paper].
    image_size : int, optional
        The render size in pixels; None: maps at the networks' largest input size, searches at each network's own.
    store : str or path, optional
        A ``.zarr`` folder to keep the results in, task by task; required on Dask. None: nothing is saved.
    scheduler : str or dask.distributed.Client, optional
        Where the tasks run: None, in this process; ``"local"``, a Dask LocalCluster of ``workers`` processes; an
        address (``"tcp://host:8786"``) or a Client, on that cluster (workers load shapes and networks by name).
    workers : int, optional
        Processes of a ``"local"`` cluster; None: one per GPU, each pinned to its device
        (`semkit.studies.devices`), or 2 on a machine without one.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    Dataset
        The maps (``score``, ``top1``, ``correct``, ...) or the regions (``lower``, ``upper``, ...) with ``network``
        and ``shape`` dims added; attr ``computed`` counts the (network, shape) results this call computed.

    Raises
    ------
    ValueError
        A spec together with its fields, no networks, a bad spec (see [`StudySpec`][semkit.StudySpec]), Dask without a store or
        with objects instead of names.
    StoreError
        The store was made with other settings.
    ConnectionError
        No Dask scheduler answers at the address.
    """
    if isinstance(shapes, StudySpec):
        if networks is not None or kind != "map" or space is not None or image_size is not None:
            raise ValueError("pass a StudySpec alone, or its fields (shapes, networks, kind, space, image_size); not both")
        spec = shapes
    else:
        if networks is None:
            raise ValueError("a study needs networks (or a StudySpec)")
        spec = StudySpec(shapes, networks, kind, space=space, image_size=image_size)
    if workers is not None:
        workers = check_count(workers, "workers", what="Dask worker processes")
    if store is not None:
        check_format(Path(store), (".zarr",), "study's store")
    if scheduler is not None and store is None:
        raise ValueError("a study on Dask needs a store (a .zarr folder) for the workers to write to")
    if scheduler is not None and not all(isinstance(n, str) for n in spec.networks):
        raise ValueError("on Dask, networks are given by name (the workers load them)")
    if scheduler is not None and not all(isinstance(s, str) for s in spec.shapes):
        raise ValueError("on Dask, shapes are given as names or files (gallery names, mesh paths, ShapeNet ids): the workers load them")
    meshes = [load_shape(s) for s in spec.shapes]
    classifiers = [n if isinstance(n, Classifier) else cached_classifier(str(n), spec.precision) for n in spec.networks]
    # files by absolute path, so that workers (started elsewhere) read the same ones
    names = [_loadable(s, m) for s, m in zip(spec.shapes, meshes)]
    settings = spec.settings(meshes, classifiers, names)
    settings["label_names"] = [_label_name(classifiers[0], m.label) for m in meshes]
    spec = dataclasses.replace(spec, image_size=settings["image_size"])  # one render size for every task
    from tqdm.auto import tqdm

    pairs = [(i, j) for i in range(len(classifiers)) for j in range(len(meshes))]
    desc = f"study ({spec.kind.kind})"
    if store is None:
        results = [[None] * len(meshes) for _ in classifiers]
        for networks_, j in tqdm(tasks_of(spec, pairs), desc=desc, unit="task", disable=not progress):
            for i, result in zip(networks_, compute(spec, classifiers, meshes[j], networks_)):
                results[i][j] = result
        out = stack(results, settings["networks"], [m.name for m in meshes])
        out.attrs.update(settings=json.dumps(settings), fingerprint=fingerprint(settings), computed=len(pairs))
        return out

    store = Path(store)
    done = done_flags(store, settings)
    todo = [(i, j) for i, j in pairs if int(done[i, j]) == 0]
    if todo and scheduler is None:
        computed = _here(store, spec, settings, classifiers, meshes, todo, tqdm(desc=desc, unit="task", disable=not progress))
    elif todo:
        computed = _on_dask(store, spec, settings, todo, scheduler, workers, progress)
    else:
        computed = 0
    result = open_result(store)
    result.attrs["computed"] = computed
    return result


def _loadable(shape: Any, mesh: Any) -> str:
    """How a worker (or a later session) loads ``shape`` again: a file by its absolute path, else its name."""
    for candidate in (shape if isinstance(shape, str) else None, mesh.source):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    return shape if isinstance(shape, str) else mesh.name


def _label_name(classifier: Any, label: int) -> str:
    labels = classifier.labels
    return str(labels[label]) if 0 <= label < len(labels) else str(label)


def _here(store: Path, spec: StudySpec, settings: dict[str, Any], classifiers, meshes, todo, bar) -> int:
    """Run the tasks in this process. A task is claimed while it runs, so processes sharing a store share its
    tasks: one claimed by another process is left to it and met again at the end (then waited for, and done
    here only if that process stopped without finishing it)."""
    computed = 0
    tasks = tasks_of(spec, todo)
    bar.reset(total=len(tasks))
    deferred = []
    for networks, j in tasks:
        claim = store.with_name(f"{store.name}.task-{j}" + ("" if isinstance(spec.kind, Maps) else f"-{networks[0]}"))
        with claimed(claim) as mine:
            if mine:
                computed += _task(store, spec, settings, classifiers, meshes[j], networks, j)
                bar.update()
            else:
                deferred.append((claim, networks, j))
    for claim, networks, j in deferred:
        with locked(claim):  # waits until the other process is done with it (or gone)
            computed += _task(store, spec, settings, classifiers, meshes[j], networks, j)
        bar.update()
    bar.close()
    return computed


def _task(store: Path, spec: StudySpec, settings, classifiers, mesh, networks: list[int], j: int) -> int:
    """Compute and write the networks of one task that the store does not hold yet; how many it computed."""
    done = done_flags(store, settings)
    todo = [i for i in networks if int(done[i, j]) == 0]
    if not todo:
        return 0
    for i, result in zip(todo, compute(spec, classifiers, mesh, todo)):
        write_result(store, result, settings, i, j)
    return len(todo)


#: How long a study waits for a scheduler at an address to answer.
SCHEDULER_TIMEOUT = "5s"


def _on_dask(store: Path, spec: StudySpec, settings: dict[str, Any], todo, scheduler: Any, workers: int | None,
             progress: bool) -> int:
    from dask.distributed import Client, as_completed
    from tqdm.auto import tqdm

    own = None
    if isinstance(scheduler, Client):
        client = scheduler
    elif scheduler == "local":
        own, client = local_cluster(workers)
    else:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"no Dask scheduler answered at {scheduler!r} within {SCHEDULER_TIMEOUT} ({e}): start "
                                  "`dask scheduler` there, check the address, or pass scheduler='local'") from None
    computed = 0
    try:
        key = fingerprint(settings)
        futures = [client.submit(run_task, str(store.resolve()), spec, settings, networks, j, retries=2,
                                 key=f"semkit-{key}-{'.'.join(map(str, networks))}-{j}")
                   for networks, j in tasks_of(spec, todo)]
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
