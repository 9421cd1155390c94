"""Sweeps: studies of maps or robust regions over shapes x networks on dask.distributed.

``sweep(...)`` is :func:`semkit.study.study` on a Dask cluster (a
LocalCluster by default, or a scheduler address) with a ``.zarr`` store:
one task per shape for maps (its views rendered once for every network)
and per (network, shape) for regions, each writing its own regions of the
store, each ``done`` flag last. Rerunning a sweep computes only the unfinished
tasks, and a worker that dies mid-sweep loses no finished task (Dask
reruns its unfinished ones elsewhere).

    semkit sweep CONFIG.yaml [--scheduler ADDRESS]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import xarray as xr

from .space import Space
from .study import KINDS, open_study, study

__all__ = ["KINDS", "open_sweep", "sweep"]


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
    """Run a study of maps or regions over shapes x networks on Dask and return it as one Dataset.

    ``shapes``: gallery names or mesh paths (with a label the mesh carries:
    gallery and ShapeNet meshes do); ``networks``: classifier names. The
    results go to ``store`` (a ``.zarr`` folder) with ``network`` and
    ``shape`` dims; ``done`` says which tasks finished. ``scheduler``: a
    ``dask.distributed.Client``, a scheduler address (``"tcp://host:8786"``),
    or None for a LocalCluster of ``workers`` processes. Rerunning the same
    call computes only what is missing; a store made with other settings
    is refused. ``attrs["computed"]`` counts the tasks this call computed.
    ``adaptive``/``tolerance``: adaptive maps (see :func:`~semkit.semantic_map`).
    """
    if Path(store).suffix != ".zarr":
        raise ValueError(f"a sweep's store is a .zarr folder, got {store}")
    return study(shapes, networks, kind, store=store, scheduler=scheduler if scheduler is not None else "local",
                 workers=workers, space=space, step=step, starts=starts, algorithms=algorithms, iterations=iterations,
                 step_rule=step_rule, image_size=image_size, adaptive=adaptive, tolerance=tolerance, progress=progress)


def open_sweep(store: str | os.PathLike) -> xr.Dataset:
    """A sweep's store as one Dataset (labels as a ``shape`` coordinate); unfinished tasks are NaN."""
    if not Path(store).exists():
        raise FileNotFoundError(f"no sweep at {store}")
    return open_study(store)
