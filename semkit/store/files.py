"""Persistence for maps, region searches, sweeps and caches: one way to write, match and refuse stores.

* Writes are atomic: data goes to a uniquely named temporary file or folder
  beside its target (process id + random suffix), then is renamed into
  place, so a reader never sees half a file and two writers never share a
  temporary name.
* Writers of one store take an OS file lock (``<store>.lock``, removed
  when released) for each write; a finished result written by another process is reused, never
  overwritten.
* A store is matched by a fingerprint of everything that determines its
  results (``settings``, plus `ALGORITHMS_VERSION`); a store made
  with other settings is refused with a message naming what differs.
* A path that holds something semkit cannot read (a damaged file, another
  program's data) is reported as such, with what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import xarray as xr

#: The version of semkit's algorithms that stores are matched against: raise it when results would change.
ALGORITHMS_VERSION = "2"
#: The store formats: a netCDF file or a zarr folder.
FORMATS = (".nc", ".zarr")


class StoreError(ValueError):
    """A store cannot be used: it holds other settings, another program's data, or damaged data."""


def fingerprint(settings: Mapping[str, Any]) -> str:
    """A short digest of JSON-able settings (key order does not matter)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def versioned(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with the version of semkit's algorithms, so that a store of older algorithms does not match."""
    return {**settings, "semkit_algorithms": ALGORITHMS_VERSION}


def _plain(value: Any) -> Any:
    """Settings as they read back from a store (tuples become lists), so equal values compare equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def differences(theirs: Mapping[str, Any], ours: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys where two settings differ (down to the first level that is not a mapping on both sides)."""
    if not prefix:
        theirs, ours = _plain(theirs), _plain(ours)
    out = []
    for key in sorted(set(theirs) | set(ours)):
        a, b = theirs.get(key), ours.get(key)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, f"{prefix}{key}.") or [prefix + key]
        elif _records(a) and _records(b) and len(a) == len(b):  # a list of settings (algorithms): name what differs
            out += [d for i, (x, y) in enumerate(zip(a, b)) if x != y
                    for d in differences(x, y, f"{prefix}{key}[{_entry(x, y, i)}].")] or [prefix + key]
        else:
            out.append(prefix + key)
    return out


def _records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)


def _entry(theirs: Mapping[str, Any], ours: Mapping[str, Any], index: int) -> str:
    """How a difference names one entry of a list of settings: its name when both sides share it, else its index."""
    return str(ours["name"]) if "name" in ours and theirs.get("name") == ours["name"] else str(index)


def refuse(where: Path, theirs: Mapping[str, Any] | None, ours: Mapping[str, Any]) -> None:
    """Raise the one refusal: ``where`` holds results made with other settings (named when known)."""
    differ = differences(theirs, ours) if theirs else []
    if len(differ) > 1:  # a canary holds values at the grid's points: with another grid it differs as well
        differ = [d for d in differ if ".canary" not in d]
    what = "differs in " + ", ".join(differ) if theirs else "its settings are not recorded"
    why = ""
    if any(".canary" in d for d in differ):
        why = (" A function without a description is recognised by its values at fixed probe points (and the "
               "map's grid points), and this function's values differ there: it is another function with the same "
               "name. Name each function with key=.")
    elif any(d.endswith(".key") or d == "function.key" for d in differ):
        why = " It was made under another key=."
    raise StoreError(
        f"{where} was made with other settings ({what}); semkit will not mix them.{why} "
        f"Use another store path, or delete {where} to recompute."
    )


def not_a_store(path: Path, why: str) -> StoreError:
    return StoreError(
        f"{path} is not a semkit store it can use ({why}): it may be damaged or hold another program's data. "
        f"Delete it to recompute, or choose another path."
    )


# ---------------------------------------------------------------- writing
def unwritable(path: Path, error: OSError) -> StoreError:
    """The error for a store path semkit cannot write at (a file where a folder should be, no permission, a
    read-only or virtual file system), naming the path and the problem."""
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        why = f"{blocking} is a file, not a folder"
    elif isinstance(error, PermissionError):
        why = f"no permission to write in {path.parent}"
    else:
        existing = next((p for p in path.parents if p.exists()), path.parent)
        why = f"{existing} cannot hold files or folders ({error.strerror or error})"
    return StoreError(f"cannot write the store {path}: {why}. Choose a store path in a folder you can write in.")


def folder_of(path: Path) -> Path:
    """Make the folder ``path`` goes in (and its parents); a [`StoreError`][semkit.store.files.StoreError] naming ``path`` where it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise unwritable(path, e) from None
    return path.parent


def temporary(path: Path) -> Path:
    """A unique temporary name beside ``path`` (hidden; process id and a random suffix)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file whole or not at all."""
    folder_of(path)
    tmp = temporary(path)
    try:
        try:
            tmp.write_bytes(data)
        except OSError as e:
            raise unwritable(path, e) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[Path]:
    """A temporary path to write a file or folder at; renamed to ``path`` when the block succeeds.

    Where ``path`` appeared meanwhile (another writer finished first), theirs
    is kept and ours dropped: results of equal settings are equal.
    """
    folder_of(path)
    tmp = temporary(path)
    try:
        yield tmp
        if not path.exists():
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the OS lock of ``path`` (a ``<path>.lock`` file beside it) for the block; waits while another holds it.

    The lock file is removed on release, so none is left behind: a waiter
    that then holds the lock of a removed file takes the new one instead.
    """
    import fcntl

    lock = path.with_name(path.name + ".lock")
    folder_of(path)
    while True:
        try:
            handle = open(lock, "a+b")
        except OSError as e:
            raise unwritable(path, e) from None
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            current = None
        if current is not None and current.st_ino == os.fstat(handle.fileno()).st_ino:
            break  # the lock file that is still in place: ours
        handle.close()  # it was removed by the holder before us: take the new one
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextlib.contextmanager
def claimed(path: Path) -> Iterator[bool]:
    """Try to claim the work named by ``path`` for the block: yields True when this process holds it, False when
    another process does (its claim ends when it finishes or dies). A claim is the OS lock of ``<path>.lock``."""
    import fcntl

    lock = path.with_name(path.name + ".lock")
    folder_of(path)
    try:
        handle = open(lock, "a+b")
    except OSError as e:
        raise unwritable(path, e) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        yield False
        return
    try:
        yield True
    finally:
        lock.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def remove(path: Path) -> None:
    """Remove a file or folder (and its lock file); missing is fine."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- reading
def check_format(path: Path, formats: tuple[str, ...] = FORMATS, what: str = "store") -> str:
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise ValueError(f"a {what} must be a {' or '.join(formats)} path, got {path}")
    return suffix


def read_dataset(path: Path, *, load: bool = True) -> xr.Dataset:
    """A netCDF file or zarr folder as a Dataset; a clear [`StoreError`][semkit.store.files.StoreError] when it is not one semkit wrote."""
    try:
        if path.suffix.lower() == ".zarr":
            opened = xr.open_zarr(path, consolidated=False, chunks=None)
        else:
            opened = xr.open_dataset(path)
    except Exception as e:  # the backends raise many kinds of errors on foreign or damaged data
        raise not_a_store(path, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None
    if "fingerprint" not in opened.attrs:
        opened.close()
        raise not_a_store(path, "it records no semkit fingerprint")
    if path.suffix.lower() == ".zarr" and "done" not in opened.data_vars:  # a study's unfinished tasks are unwritten
        damaged = missing_chunks(path)
        if damaged:
            opened.close()
            raise StoreError(
                f"{path} is damaged: chunks of {', '.join(damaged)} are missing (deleted or lost), so they would "
                f"read back as fill values. Delete {path} and rerun the call that made it to recompute it.")
    if not load:
        return opened
    try:
        with opened as ds:
            return ds.load()
    except Exception as e:
        raise not_a_store(path, f"a damaged chunk: {type(e).__name__}: {e}") from None


def missing_chunks(path: Path) -> list[str]:
    """The arrays of the zarr folder ``path`` that lack stored chunks, each as 'name (k of n)'.

    semkit writes every chunk of a result (fill values included), so a chunk
    that is not there was lost, and would silently read back as the fill value.
    """
    import math

    import zarr

    out = []
    group = zarr.open_group(str(path), mode="r")
    for name in sorted(group.array_keys()):
        array = group[name]
        grid = [math.ceil(n / c) if c else 1 for n, c in zip(array.shape, array.chunks)]
        absent = sum(not (path / name / array.metadata.encode_chunk_key(coords)).exists() for coords in np.ndindex(*grid))
        if absent:
            out.append(f"{name} ({absent} of {math.prod(grid)})")
    return out


def write_dataset(ds: xr.Dataset, path: Path) -> None:
    """Write a Dataset as a .nc file or .zarr folder, atomically (see `writing`); a zarr folder gets every
    chunk, fill values included, so that a missing chunk is known to be damage (`missing_chunks`)."""
    with writing(path) as tmp:
        if path.suffix.lower() == ".zarr":
            ds.to_zarr(tmp, mode="w", consolidated=False, write_empty_chunks=True)
        else:
            ds.to_netcdf(tmp)


def settings_of(ds: xr.Dataset) -> dict[str, Any] | None:
    """The settings a store records (None when it records none)."""
    try:
        return json.loads(ds.attrs["settings"])
    except (KeyError, ValueError, TypeError):
        return None


def matching(path: Path, settings: Mapping[str, Any]) -> xr.Dataset | None:
    """The finished store at ``path`` when it was made with ``settings``; None when there is none; refused otherwise."""
    if not path.exists():
        return None
    ds = read_dataset(path)
    if ds.attrs.get("fingerprint") != fingerprint(settings):
        refuse(path, settings_of(ds), settings)
    return ds


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file; FileNotFoundError where there is none, ValueError where it is damaged."""
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (FileNotFoundError, NotADirectoryError) as e:  # none there (a file in the way is met when writing)
        raise FileNotFoundError(str(e)) from None
    except Exception as e:  # truncated, not a zip, a bad member: damaged
        raise ValueError(f"{path} is damaged ({e})") from e


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays as an .npz file, whole or not at all."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def file_stem(name: str) -> str:
    """A name ('bench/1a2b') as a file name ('bench_1a2b')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
