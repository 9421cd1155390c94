"""Reading a ShapeNetCore folder: classes, models, and the paper's ten classes.

Layout: ``<root>/<synset id or class name>/<model id>/models/model_normalized.obj``.
Real ShapeNet copies have entries without a mesh file; those are reported
([`ShapeNet.missing`][semkit.scene.shapenet.ShapeNet.missing], a warning when iterating) instead of crashing.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .mesh import Mesh, load_mesh


@dataclass(frozen=True)
class PaperClass:
    """One of the paper's ten classes: its ShapeNet synset and ImageNet label."""

    name: str
    synset: str | None
    imagenet: int


#: The paper's classes (class -> ImageNet index), with their ShapeNetCore synsets
#: where ShapeNetCore has one (toilet is not among its 55 categories).
PAPER_CLASSES: dict[str, PaperClass] = {
    c.name: c
    for c in (
        PaperClass("aeroplane", "02691156", 404),  # airliner
        PaperClass("bathtub", "02808440", 435),
        PaperClass("bench", "02828884", 703),  # park bench
        PaperClass("bottle", "02876657", 898),  # water bottle
        PaperClass("chair", "03001627", 559),  # folding chair
        PaperClass("cup", "03797390", 968),  # ShapeNet "mug"
        PaperClass("piano", "03928116", 579),  # grand piano
        PaperClass("rifle", "04090263", 413),  # assault rifle
        PaperClass("vase", "03593526", 883),  # ShapeNet "jar"
        PaperClass("toilet", None, 861),  # toilet seat
    )
}
_BY_SYNSET = {c.synset: c for c in PAPER_CLASSES.values() if c.synset}
MESH_FILE = Path("models") / "model_normalized.obj"


def class_name(folder: str) -> str:
    """A class folder's name: the paper's class name for a known synset id, else the folder's own."""
    known = _BY_SYNSET.get(folder)
    return known.name if known else folder


def load_file(path: str | os.PathLike) -> Mesh:
    """A mesh file; one inside a ShapeNetCore layout is named ``class/model_id`` and labelled by its class."""
    path = Path(path)
    if path.as_posix().endswith(MESH_FILE.as_posix()):  # <root>/<synset or class>/<model id>/models/model_normalized.obj
        cls = class_name(path.parents[2].name)
        known = PAPER_CLASSES.get(cls)
        return load_mesh(path, name=f"{cls}/{path.parents[1].name}", label=known.imagenet if known else None)
    return load_mesh(path)


@dataclass(frozen=True)
class Entry:
    """One model folder of a ShapeNet copy."""

    cls: str  #: class name (the paper's name when known, else the folder name)
    model_id: str
    path: Path  #: the mesh file (may not exist, see `available`)
    label: int | None  #: ImageNet class index, when the class is one of the paper's

    @property
    def available(self) -> bool:
        return self.path.is_file()

    @property
    def name(self) -> str:
        return f"{self.cls}/{self.model_id}"


class ShapeNet:
    """A ShapeNetCore folder.

    Parameters
    ----------
    root : str or path
        The folder, laid out ``<root>/<synset id or class name>/<model id>/models/model_normalized.obj``.

    Raises
    ------
    FileNotFoundError
        No such folder.
    ValueError
        A folder without class folders.

    Examples
    --------
    >>> data = ShapeNet("../shared/data/shapenet-sample")  # doctest: +SKIP
    >>> data.classes  # doctest: +SKIP
    ['aeroplane', 'bathtub', 'bench', 'bottle', 'chair']
    >>> mesh = data.load("chair", data.models("chair")[0])  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ShapeNet folder not found: {self.root}")
        self._folders: dict[str, Path] = {}
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            self._folders[class_name(folder.name)] = folder
        if not self._folders:
            raise ValueError(f"{self.root} has no class folders (<synset or class>/<model id>/models/...)")

    def __repr__(self) -> str:
        return f"ShapeNet({str(self.root)!r}, classes={self.classes})"

    @property
    def classes(self) -> list[str]:
        """Class names present (the paper's names for known synsets)."""
        return list(self._folders)

    def label(self, cls: str) -> int | None:
        """The ImageNet label of a class, when it is one of the paper's."""
        known = PAPER_CLASSES.get(cls)
        return known.imagenet if known else None

    def _folder(self, cls: str) -> Path:
        try:
            return self._folders[cls]
        except KeyError:
            raise KeyError(f"no class {cls!r} in {self.root}; classes: {self.classes}") from None

    def models(self, cls: str) -> list[str]:
        """Model ids of a class (all folders, with or without a mesh)."""
        return sorted(p.name for p in self._folder(cls).iterdir() if p.is_dir())

    def entries(self, cls: str | None = None) -> list[Entry]:
        """All model folders, of one class or of all."""
        classes = [cls] if cls is not None else self.classes
        return [
            Entry(c, m, self._folder(c) / m / MESH_FILE, self.label(c)) for c in classes for m in self.models(c)
        ]

    @property
    def missing(self) -> list[Entry]:
        """Model folders without a mesh file."""
        return [e for e in self.entries() if not e.available]

    def load(self, cls: str, model_id: str) -> Mesh:
        """Load one model of class ``cls``, normalized, named ``class/model_id`` and labelled.

        Parameters
        ----------
        model_id : str
            The model's folder name (see `models`).

        Raises
        ------
        KeyError
            No such class or model.
        FileNotFoundError
            The model's folder has no mesh file.
        """
        entry = Entry(cls, model_id, self._folder(cls) / model_id / MESH_FILE, self.label(cls))
        if not entry.path.parent.parent.is_dir():
            raise KeyError(f"no model {model_id!r} in class {cls!r} of {self.root}")
        if not entry.available:
            raise FileNotFoundError(f"ShapeNet entry {entry.name} has no mesh: {entry.path} is missing")
        return load_mesh(entry.path, name=entry.name, label=entry.label)

    def meshes(self, cls: str | None = None, limit: int | None = None) -> Iterator[Mesh]:
        """Load the available models of class ``cls`` (None: of all classes) in order, warning about entries
        without a mesh.

        Parameters
        ----------
        limit : int, optional
            The most meshes to load; None: all.
        """
        count = 0
        for entry in self.entries(cls):
            if limit is not None and count >= limit:
                return
            if not entry.available:
                warnings.warn(f"skipping ShapeNet entry {entry.name}: no mesh at {entry.path}", stacklevel=2)
                continue
            yield load_mesh(entry.path, name=entry.name, label=entry.label)
            count += 1
