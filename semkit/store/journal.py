"""A map's store and its journal of finished chunks: an interrupted map loses no finished chunk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import xarray as xr

import contextlib
from typing import Iterator

from .files import (StoreError, check_format, claimed, fingerprint, locked, matching, not_a_store, read_arrays, refuse,
                    remove, write_arrays, write_bytes, write_dataset)


class Journal:
    """A map's store and its journal of finished chunks (``<store>.partial/``), shared by concurrent writers.

    Chunks are written atomically under unique names; one that cannot be
    read (truncated, damaged) is dropped and computed again; a chunk or the
    whole map that another process finished is used instead of recomputed.
    """

    def __init__(self, path: Path, settings: Mapping[str, Any]) -> None:
        check_format(path)
        self.path = path
        self.folder = path.with_name(path.name + ".partial")
        self.settings = dict(settings)
        self.fingerprint = fingerprint(self.settings)

    def complete_map(self) -> xr.Dataset | None:
        ds = matching(self.path, self.settings)
        if ds is not None and not np.isfinite(ds["score"].values).all():
            raise not_a_store(self.path, "its map has missing or damaged scores")
        return ds

    def chunks(self) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
        settings_file = self.folder / "settings.json"
        with locked(self.path):
            if settings_file.exists():
                try:
                    theirs = json.loads(settings_file.read_text())
                except ValueError:
                    chunks = len(list(self.folder.glob("chunk-*.npz")))
                    raise StoreError(f"{settings_file} is damaged (not readable JSON), so the {chunks} finished chunk(s) "
                                     f"in {self.folder} cannot be matched to this map; delete {self.folder} to compute "
                                     "them again (nothing else is affected)") from None
                if fingerprint(theirs) != self.fingerprint:
                    refuse(self.folder, theirs, self.settings)
            else:
                write_bytes(settings_file, json.dumps(self.settings, indent=1).encode())
        for file in sorted(self.folder.glob("chunk-*.npz")):
            chunk = self._load(file)
            if chunk is not None:
                yield int(file.stem.split("-")[1]), chunk

    def chunk(self, start: int, size: int) -> dict[str, np.ndarray] | None:
        """The chunk at ``start`` when another process saved it (and it holds ``size`` points)."""
        chunk = self._load(self.folder / f"chunk-{start:09d}.npz")
        return chunk if chunk is not None and len(chunk["score"]) == size else None

    def claim(self, start: int) -> contextlib.AbstractContextManager[bool]:
        """Claim the chunk at ``start`` while computing it (True), or learn that another process computes it (False)."""
        return claimed(self.folder / f"chunk-{start:09d}")

    def wait(self, start: int) -> contextlib.AbstractContextManager[None]:
        """Wait until no process computes the chunk at ``start`` (then hold it)."""
        return locked(self.folder / f"chunk-{start:09d}")

    @staticmethod
    @contextlib.contextmanager
    def computing(journals: Iterable["Journal"]) -> Iterator[None]:
        """Hold the whole maps of ``journals`` for the block (in one order, so processes never wait on each other in
        a circle): another process that computes them waits, then reads them back."""
        with contextlib.ExitStack() as stack:
            for path in sorted({j.path for j in journals}, key=str):
                stack.enter_context(locked(path.with_name(path.name + ".computing")))
            yield

    @staticmethod
    def _load(file: Path) -> dict[str, np.ndarray] | None:
        try:
            chunk = read_arrays(file)
        except FileNotFoundError:
            return None  # not there (yet), or removed by a process that finished the map
        except ValueError:  # truncated or damaged: computed again
            file.unlink(missing_ok=True)
            return None
        if "score" not in chunk or not np.isfinite(chunk["score"]).all():
            file.unlink(missing_ok=True)
            return None
        return chunk

    def save(self, start: int, result: Mapping[str, np.ndarray]) -> None:
        if self.path.exists():  # another process finished the map: its journal is gone, and stays gone
            return
        write_arrays(self.folder / f"chunk-{start:09d}.npz", result)

    def finish(self, ds: xr.Dataset | None) -> xr.Dataset:
        """Write the complete map ``ds`` (unless another process did), then drop the journal; returns the stored map."""
        with locked(self.path):
            theirs = self.complete_map()
            if theirs is None:
                assert ds is not None, "no map to write"
                write_dataset(ds, self.path)
            remove(self.folder)
        return ds if theirs is None else theirs
