"""Running a study: maps or robust regions over shapes x networks, serially or on Dask, as one Dataset.

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
(cached per worker process). What a study computes is a
:class:`~semkit.StudySpec` (:mod:`.spec`); its tasks and store layout are in
:mod:`.tasks`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import xarray as xr

from ..classify import Classifier
from ..scene import load_shape
from ..store import check_format, fingerprint, open_result
from .spec import StudySpec
from .stacking import stack
from .tasks import cached_classifier, compute, open_or_create, run_task, task_part, tasks_of, write_part


def study(
    shapes: "StudySpec | Sequence[Any]",
    networks: Sequence[Any] | None = None,
    kind: str = "map",
    *,
    store: str | os.PathLike | None = None,
    scheduler: Any = None,
    workers: int = 2,
    progress: bool = True,
    **options: Any,
) -> xr.Dataset:
    """Maps (``kind="map"``) or region searches (``"regions"``) of every shape under every network, as one Dataset.

    What to compute is a :class:`StudySpec`: pass one, or its ``shapes``,
    ``networks``, ``kind`` and ``options`` (its other fields: ``space``,
    ``step``, ``starts``, ``algorithms``, ``iterations``, ``step_rule``,
    ``image_size``, ``adaptive``, ``tolerance``, ``criterion``). How to
    compute it: ``scheduler`` None runs the tasks in this process;
    ``"local"`` on a LocalCluster of ``workers`` processes; an address
    (``"tcp://host:8786"``) or a ``dask.distributed.Client`` on that cluster
    (workers load networks by name). ``store`` (a ``.zarr`` folder,
    required on Dask): each task writes its region; rerunning computes only
    what is missing; a store made with other settings (shapes, weights,
    grid, ...) is refused. ``attrs["computed"]`` counts the (network,
    shape) results this call computed. Maps run one task per shape (each
    view rendered once for all networks), region searches one per
    (network, shape).
    """
    if isinstance(shapes, StudySpec):
        if networks is not None or options or kind != "map":
            raise ValueError("pass a StudySpec alone, or shapes, networks and options; not both")
        spec = shapes
    else:
        if networks is None:
            raise ValueError("a study needs networks (or a StudySpec)")
        spec = StudySpec(shapes, networks, kind, **options)
    if store is not None:
        check_format(Path(store), (".zarr",), "study's store")
    if scheduler is not None and store is None:
        raise ValueError("a study on Dask needs a store (a .zarr folder) for the workers to write to")
    if scheduler is not None and not all(isinstance(n, str) for n in spec.networks):
        raise ValueError("on Dask, networks are given by name (the workers load them)")
    if scheduler is not None and not all(isinstance(s, str) for s in spec.shapes):
        raise ValueError("on Dask, shapes are given as names or files (gallery names, mesh paths, ShapeNet ids): the workers load them")
    kind = spec.kind
    meshes = [load_shape(s) for s in spec.shapes]
    classifiers = [n if isinstance(n, Classifier) else cached_classifier(str(n)) for n in spec.networks]
    # files by absolute path, so that workers (started elsewhere) read the same ones
    names = [(str(Path(s).resolve()) if Path(s).is_file() else s) if isinstance(s, str) else m.name
             for s, m in zip(spec.shapes, meshes)]
    settings = spec.settings(meshes, classifiers, names)
    from tqdm.auto import tqdm

    pairs = [(i, j) for i in range(len(classifiers)) for j in range(len(meshes))]
    if store is None:
        results = [[None] * len(meshes) for _ in classifiers]
        for networks, j in tqdm(tasks_of(settings, pairs), desc=f"study ({kind})", unit="task", disable=not progress):
            for i, result in zip(networks, compute(settings, classifiers, meshes[j], networks)):
                results[i][j] = result
        out = stack(results, settings["networks"], [m.name for m in meshes])
        out.attrs.update(settings=json.dumps(settings), fingerprint=fingerprint(settings), computed=len(pairs))
        return out

    store = Path(store)
    done = open_or_create(store, settings)
    todo = [(i, j) for i, j in pairs if int(done[i, j]) == 0]
    computed = 0
    if todo and scheduler is None:
        for networks, j in tqdm(tasks_of(settings, todo), desc=f"study ({kind})", unit="task", disable=not progress):
            for i, result in zip(networks, compute(settings, classifiers, meshes[j], networks)):
                write_part(store, task_part(result, settings), i, j)
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
        futures = [client.submit(run_task, str(store.resolve()), settings_json, networks, j, retries=2,
                                 key=f"semkit-{key}-{'.'.join(map(str, networks))}-{j}")
                   for networks, j in tasks_of(settings, todo)]
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
    return open_result(store, "study")


# ------------------------------------------------------------ comparisons


