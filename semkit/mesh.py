"""Triangle meshes: loading, the paper's normalization, and per-face data.

OBJ files are read by a small parser of our own, because the paper's
renderer (the Neural Mesh Renderer) normalizes over *every* vertex of the
file and fan-triangulates polygons; general loaders may merge, drop or
split geometry. Other formats (OFF, PLY, GLB, STL, ...) go through trimesh.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np


class MeshError(ValueError):
    """A mesh file exists but cannot be used (empty, corrupt, degenerate)."""


@dataclass(eq=False)
class Mesh:
    """A triangle mesh, usually normalized as in the paper.

    ``vertices`` [V, 3] float64, ``faces`` [F, 3] int64. ``label`` is the
    ImageNet class index of the object when known (gallery and ShapeNet
    meshes carry it), ``name`` identifies the shape in results.
    Meshes compare by identity, so renderers can cache per-mesh structures.
    """

    vertices: np.ndarray
    faces: np.ndarray
    name: str = "mesh"
    label: int | None = None
    source: str | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        where = f" ({self.source})" if self.source else ""
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise MeshError(f"vertices must be [V, 3], got {self.vertices.shape}{where}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise MeshError(f"faces must be [F, 3] triangles, got {self.faces.shape}{where}")
        if len(self.faces) == 0:
            raise MeshError(f"mesh {self.name!r} has no faces{where}")
        if not np.isfinite(self.vertices).all():
            raise MeshError(f"mesh {self.name!r} has NaN or infinite vertex coordinates{where}")
        if self.faces.min() < 0 or self.faces.max() >= len(self.vertices):
            raise MeshError(f"mesh {self.name!r} has face indices outside its {len(self.vertices)} vertices{where}")

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    @cached_property
    def triangles(self) -> np.ndarray:
        """Corner positions [F, 3 corners, 3 xyz] (float32, as renderers use them)."""
        return self.vertices[self.faces].astype(np.float32)

    @cached_property
    def face_normals(self) -> np.ndarray:
        """Unit normals [F, 3] (float32) from the winding; zero for degenerate faces."""
        tri = self.vertices[self.faces]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        norm = np.linalg.norm(n, axis=1, keepdims=True)
        return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0).astype(np.float32)

    @property
    def bounds(self) -> np.ndarray:
        """[[xmin, ymin, zmin], [xmax, ymax, zmax]]."""
        return np.stack([self.vertices.min(0), self.vertices.max(0)])

    def fingerprint(self) -> str:
        """A digest of the geometry (vertices and faces): what the renders depend on."""
        digest = hashlib.sha256(self.vertices.tobytes())
        digest.update(self.faces.tobytes())
        return digest.hexdigest()[:16]

    def normalized(self) -> "Mesh":
        """A copy normalized as in the paper (see :func:`normalize_vertices`)."""
        return Mesh(normalize_vertices(self.vertices), self.faces, self.name, self.label, self.source, dict(self.metadata))

    def __repr__(self) -> str:
        label = f", label={self.label}" if self.label is not None else ""
        return f"Mesh({self.name!r}, {len(self.vertices)} vertices, {self.n_faces} faces{label})"


def normalize_vertices(vertices: np.ndarray) -> np.ndarray:
    """The Neural Mesh Renderer's normalization used by the paper.

    Shift so the minimum corner is 0, divide by the largest absolute
    coordinate, multiply by 2, subtract half the per-axis maximum: the
    object is centred and its longest bounding-box side is 2.
    """
    v = np.array(vertices, dtype=np.float64, copy=True)
    v -= v.min(axis=0)
    scale = np.abs(v).max()
    if not scale > 0:
        raise MeshError("cannot normalize a mesh whose vertices all coincide")
    v /= scale
    v *= 2.0
    v -= v.max(axis=0) / 2.0
    return v


def load_mesh(
    path: str | os.PathLike,
    *,
    normalize: bool = True,
    name: str | None = None,
    label: int | None = None,
) -> Mesh:
    """Load a mesh file and normalize it as the paper does.

    OBJ polygons are fan-triangulated; materials, textures, normals, lines
    and points are ignored. Other formats load through trimesh (scenes are
    concatenated). Missing files raise ``FileNotFoundError``; empty or
    corrupt ones raise :class:`MeshError`; both name the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mesh file not found: {path}")
    if path.is_dir():
        raise MeshError(f"{path} is a folder, not a mesh file")
    if path.stat().st_size == 0:
        raise MeshError(f"mesh file is empty: {path}")
    if path.suffix.lower() == ".obj":
        vertices, faces = _read_obj(path)
    else:
        vertices, faces = _read_with_trimesh(path)
    if len(faces) == 0:
        raise MeshError(f"mesh file has no faces: {path}")
    if normalize:
        vertices = normalize_vertices(vertices)
    return Mesh(vertices, faces, name=name or _default_name(path), label=label, source=str(path))


def _default_name(path: Path) -> str:
    """The file's stem, or the model id for ShapeNet's <model_id>/models/model_normalized.obj."""
    if path.parent.name == "models" and path.parent.parent.name:
        return path.parent.parent.name
    return path.stem


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and fan-triangulated faces of an OBJ file (1-based and negative indices)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise MeshError(f"cannot read mesh file {path}: {e}") from e
    vertex_rows: list[str] = []
    corners: list[list[int]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("v "):
            vertex_rows.append(line[2:])
        elif line.startswith("f "):
            try:
                idx = [int(tok.split("/", 1)[0]) for tok in line[2:].split()]
            except ValueError:
                raise MeshError(f"corrupt face on line {lineno} of {path}: {line.strip()!r}") from None
            if len(idx) < 3:
                raise MeshError(f"face with fewer than 3 vertices on line {lineno} of {path}")
            n_seen = len(vertex_rows)
            idx = [i - 1 if i > 0 else n_seen + i for i in idx]
            corners.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    if not vertex_rows:
        raise MeshError(f"mesh file has no vertices: {path}")
    try:
        values = np.array(" ".join(_first3(r) for r in vertex_rows).split(), dtype=np.float64)
        vertices = values.reshape(len(vertex_rows), 3)
    except ValueError:
        raise MeshError(f"corrupt vertex coordinates in {path}") from None
    faces = np.array(corners, dtype=np.int64).reshape(-1, 3)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise MeshError(f"face index out of range in {path} ({len(vertices)} vertices)")
    return vertices, faces


def _first3(row: str) -> str:
    """The x y z of a 'v' line (drops optional w or colour values)."""
    parts = row.split()
    if len(parts) < 3:
        raise ValueError(row)
    return " ".join(parts[:3])


def _read_with_trimesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    try:
        loaded = trimesh.load(str(path), force="mesh", process=False, skip_materials=True)
    except Exception as e:  # trimesh raises many kinds of errors on corrupt files
        raise MeshError(f"cannot read mesh file {path}: {e}") from e
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise MeshError(f"mesh file has no triangle faces: {path}")
    return np.asarray(loaded.vertices, dtype=np.float64), np.asarray(loaded.faces, dtype=np.int64)
