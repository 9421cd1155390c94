"""Resolving a shape by any of its names: a Mesh, a gallery name, a mesh file, or a ShapeNet model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from . import gallery
from .mesh import Mesh
from .shapenet import PAPER_CLASSES, ShapeNet, load_file

__all__ = ["load_shape", "load_shapes"]


def load_shape(shape: Any, shapenet: str | os.PathLike | None = None) -> Mesh:
    """A shape by any of its names.

    Parameters
    ----------
    shape : Mesh, str or path
        A [`Mesh`][semkit.Mesh] (returned as it is), a gallery name, a mesh file (ShapeNet files are labelled by their
        class), or with ``shapenet`` a ShapeNet model (``class/model_id``, or a model id).
    shapenet : str or path, optional
        A ShapeNetCore folder to look models up in.

    Raises
    ------
    FileNotFoundError
        No gallery shape or file of that name.
    KeyError
        No such model in ``shapenet``.
    """
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
        if Path(text).suffix or "/" in text or os.sep in text:
            raise FileNotFoundError(f"mesh file not found: {text} (a shape is a gallery name {gallery.names()}, a mesh "
                                    "file, a ShapeNet entry with shapenet=, or a Mesh)")
        raise FileNotFoundError(f"no shape {text!r}: not a gallery shape ({gallery.names()}) nor a mesh file")
    return load_file(text)


def load_shapes(
    shapes: Sequence[Any] | None = None,
    shapenet: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    per_class: int = 2,
) -> list[Mesh]:
    """Meshes for a study: named shapes, or models of ShapeNet classes.

    Entries without a mesh are skipped with a warning.

    Parameters
    ----------
    shapes : sequence of Mesh, str or path, optional
        The shapes (see [`load_shape`][semkit.load_shape]); None without ``shapenet``: the gallery. With ``shapenet`` and
        ``classes``, the model ids to pick.
    shapenet : str or path, optional
        A ShapeNetCore folder; without ``shapes``, the models come from its classes.
    classes : sequence of str, optional
        The ShapeNet classes to take models of; None: the paper's classes found there (else all).
    per_class : int, default 2
        How many models of each class, when ``shapes`` picks none.

    Raises
    ------
    ValueError
        Nothing selected.
    """
    if shapenet is None:
        return [load_shape(s) for s in (shapes or gallery.names())]
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
