"""``semkit.open``: any result semkit stored, or the paper's released maps, as one Dataset."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from .files import StoreError, read_dataset
from .paper import holds_paper_maps, read_paper_maps


def open_result(path: str | os.PathLike) -> xr.Dataset:
    """Any result semkit stored (a map, a region search, a study), or the paper's released maps, as one Dataset; its
    ``title`` attr says which.

    Unfinished tasks of a study are NaN (``done`` 0). A folder that is not a ``.zarr`` store and holds
    ``<Network>/<class>/<object>/map.pt`` is the paper's ``checkpoint/`` folder: it reads as a map study of the
    paper's numbers (see `semkit.store.paper.read_paper_maps`; no top-1, so judge it with
    ``criterion="score >= t"``).

    Parameters
    ----------
    path : str or path
        The result's ``.nc`` file or ``.zarr`` folder, or the paper's ``checkpoint/`` folder.

    Returns
    -------
    Dataset
        The result as it was stored, or the paper's maps as a study with ``network`` and ``shape`` dims.

    Raises
    ------
    FileNotFoundError
        Nothing stored there (naming an unfinished computation kept beside it, if any).
    StoreError
        A file semkit did not write, or a paper map it cannot read (named, with what is wrong).
    """
    path = Path(path)
    if not path.exists():
        partial = [p.name for p in path.parent.glob(path.name + ".*") if ".partial" in p.name or ".journal" in p.name]
        hint = f" (an unfinished computation is kept in {partial[0]}: rerun the call that made it)" if partial else ""
        raise FileNotFoundError(f"no stored result at {path}{hint}")
    if holds_paper_maps(path):
        return read_paper_maps(path)
    if path.is_dir() and path.suffix.lower() != ".zarr":
        raise StoreError(f"{path} is a folder, but neither a .zarr store nor the paper's checkpoint/ folder (no "
                         "<Network>/<class>/<object>/map.pt in it): pass a result's .nc file or .zarr folder, or the "
                         "paper's checkpoint/ folder")
    return read_dataset(path)
