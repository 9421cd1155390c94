"""Triangle meshes: loading, the paper's normalization, per-face data and materials.

OBJ files are read by a small parser of our own, because the paper's
renderer (the Neural Mesh Renderer) normalizes over *every* vertex of the
file and fan-triangulates polygons; general loaders may merge, drop or
split geometry. The same parser reads the OBJ's materials (``mtllib``,
``usemtl``, the ``.mtl``'s ``Kd`` and ``map_Kd``), texture coordinates and
vertex colours (``v x y z r g b``). glTF (`.gltf`) and OFF (`.off`)
have readers of their own, with their colours and textures; other formats
(PLY, STL, ...) go through trimesh, with a PLY's vertex or face colours.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .gltf import read_gltf
from .materials import MaterialWarning, Materials, MeshError, MeshWarning, with_vertex_colors
from .off import read_off


@dataclass(eq=False)
class Mesh:
    """A triangle mesh, usually normalized as in the paper.

    Meshes compare by identity, so renderers can cache per-mesh structures.

    Parameters
    ----------
    vertices : array_like [V, 3]
        Vertex positions (stored float64).
    faces : array_like of int [F, 3]
        Triangles as vertex indices (stored int64).
    name : str, default "mesh"
        Identifies the shape in results.
    label : int, optional
        The ImageNet class index of the object when known (gallery and ShapeNet meshes carry it).
    source : str, optional
        The file it was loaded from, named in errors.
    metadata : dict, default {}
        Free-form facts about the mesh, kept by `normalized`.
    materials : Materials, optional
        Per-face colours and textures (see [`Materials`][semkit.scene.Materials]); None for a mesh without any, which renderers
        draw white.

    Raises
    ------
    MeshError
        Wrong shapes, no faces, NaN or infinite vertices, face indices out of range, or materials for another
        number of faces.
    """

    vertices: np.ndarray
    faces: np.ndarray
    name: str = "mesh"
    label: int | None = None
    source: str | None = None
    metadata: dict = field(default_factory=dict)
    materials: Materials | None = None

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
        if self.materials is not None and len(self.materials) != len(self.faces):
            raise MeshError(
                f"mesh {self.name!r} has {len(self.faces)} faces but materials for {len(self.materials)}{where}"
            )

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

    @cached_property
    def twins(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Coincident faces: the same three corner positions, in any order or winding.

        Modelled meshes (ShapeNet) repeat a thin surface once per side, each
        copy with its own material, and a renderer shows the copy that faces
        the camera ([`front_twins`][semkit.scene.front_twins]). Returns (group [F], shared by
        coincident faces; rank [F, 3], each corner's place among its
        group's sorted corners, to carry barycentric weights from one twin
        to another), or None when no two faces coincide.
        """
        _, merged = np.unique(self.vertices, axis=0, return_inverse=True)
        corners = merged.reshape(-1)[self.faces]
        order = np.argsort(corners, axis=1, kind="stable")
        _, group = np.unique(np.take_along_axis(corners, order, axis=1), axis=0, return_inverse=True)
        group = group.reshape(-1)
        if group.max() + 1 == len(group):
            return None
        return group, np.argsort(order, axis=1)

    @property
    def bounds(self) -> np.ndarray:
        """[[xmin, ymin, zmin], [xmax, ymax, zmax]]."""
        return np.stack([self.vertices.min(0), self.vertices.max(0)])

    def fingerprint(self) -> str:
        """A digest of what the renders depend on: the geometry (vertices and faces) and the materials."""
        digest = hashlib.sha256(self.vertices.tobytes())
        digest.update(self.faces.tobytes())
        if self.materials is not None:
            m = self.materials
            for array in (m.kd, m.texture, m.uv, *m.images, m.vertex_rgb, m.cutoff):
                if array is not None:
                    digest.update(np.ascontiguousarray(array).tobytes())
            if any(w != ("repeat", "repeat") for w in m.wrap):  # (meshes of before wrap modes keep their digests)
                digest.update(repr(m.wrap).encode())
        return digest.hexdigest()[:16]

    def normalized(self) -> "Mesh":
        """A copy normalized as in the paper (see [`normalize_vertices`][semkit.scene.mesh.normalize_vertices])."""
        return Mesh(
            normalize_vertices(self.vertices), self.faces, self.name, self.label, self.source, dict(self.metadata),
            self.materials,
        )

    def __repr__(self) -> str:
        label = f", label={self.label}" if self.label is not None else ""
        return f"Mesh({self.name!r}, {len(self.vertices)} vertices, {self.n_faces} faces{label})"


def normalize_vertices(vertices: np.ndarray) -> np.ndarray:
    """The Neural Mesh Renderer's normalization used by the paper.

    Shift so the minimum corner is 0, divide by the largest absolute
    coordinate, multiply by 2, subtract half the per-axis maximum: the
    object is centred and its longest bounding-box side is 2.

    Parameters
    ----------
    vertices : array_like [V, 3]
        Vertex positions; they are copied, not changed.

    Raises
    ------
    MeshError
        NaN or infinite coordinates, or vertices that all coincide.
    """
    v = np.array(vertices, dtype=np.float64, copy=True)
    if not np.isfinite(v).all():
        raise MeshError("cannot normalize a mesh with NaN or infinite vertex coordinates")
    magnitude = np.abs(v).max()
    if magnitude > 1e300:  # scale down first, so that the shift cannot overflow (coordinates near 1.8e308)
        v /= magnitude
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

    OBJ polygons are fan-triangulated and every vertex counts for the
    normalization. An OBJ's materials are kept ([`Materials`][semkit.scene.Materials]): each
    face's ``Kd`` from the ``.mtl`` its ``mtllib`` names, and the
    ``map_Kd`` texture with the faces' ``vt`` coordinates where the file
    exists, and vertex colours (``v x y z r g b``); transparency (``d``,
    ``map_d``) and specular terms are ignored. A missing or unreadable
    ``.mtl`` or texture warns ([`MaterialWarning`][semkit.scene.MaterialWarning], naming the file)
    and the faces fall back to Kd, or white. Normals, lines and points are
    ignored. glTF 2.0 (``.glb``, ``.gltf``) loads every primitive of every
    node with its transform and base colours (`semkit.scene.gltf.read_gltf`);
    OFF and PLY keep their vertex and face colours; other formats
    load through trimesh (scenes are concatenated), without materials. Missing
    files raise ``FileNotFoundError``; empty, corrupt or non-finite ones
    raise [`MeshError`][semkit.scene.MeshError]; both name the file.

    Parameters
    ----------
    path : str or path
        The mesh file: OBJ, glTF (``.glb``, ``.gltf``), OFF, PLY, or another format trimesh reads.
    normalize : bool, default True
        Apply [`normalize_vertices`][semkit.scene.mesh.normalize_vertices] (centred, longest bounding-box side 2), as the paper does.
    name : str, optional
        The shape's name in results; None: taken from the path.
    label : int, optional
        The ImageNet class index of the object, when known.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mesh file not found: {path}")
    if path.is_dir():
        raise MeshError(f"{path} is a folder, not a mesh file")
    if path.stat().st_size == 0:
        raise MeshError(f"mesh file is empty: {path}")
    suffix = path.suffix.lower()
    if suffix == ".obj":
        vertices, faces, materials = _read_obj(path)
    elif suffix in (".glb", ".gltf"):
        vertices, faces, materials = read_gltf(path)
    elif suffix == ".off":
        vertices, faces, materials = read_off(path)
    else:
        vertices, faces, materials = _read_with_trimesh(path)
    if len(faces) == 0:
        raise MeshError(f"mesh file has no faces: {path}")
    if not np.isfinite(vertices).all():
        raise MeshError(f"mesh file has NaN or infinite vertex coordinates: {path}")
    if normalize:
        vertices = normalize_vertices(vertices)
    _warn_if_unrenderable(vertices, faces, path)
    return Mesh(
        vertices, faces, name=name or _default_name(path), label=label, source=str(path), materials=materials
    )


def _warn_if_unrenderable(vertices: np.ndarray, faces: np.ndarray, path: Path) -> None:
    """Warn about meshes that load but render as (almost) nothing: only degenerate faces, or a far outlier vertex."""
    corners = vertices[faces]
    areas = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    extent = np.ptp(vertices, axis=0).max()
    if not (areas > 1e-12 * max(extent, 1e-300) ** 2).any():
        warnings.warn(f"every face of {path} is degenerate (zero area): it renders as nothing (an all-background "
                      "image); check the file's faces", MeshWarning, stacklevel=3)
        return
    used = vertices[np.unique(faces)]
    body = np.percentile(used, 99, axis=0) - np.percentile(used, 1, axis=0)
    if extent > 0 and body.max() < 0.02 * extent:
        far = vertices[np.argmax(np.abs(vertices - np.median(used, axis=0)).max(axis=1))]
        warnings.warn(f"{path}: most of the mesh spans {body.max() / extent:.2%} of its bounding box; a far outlier "
                      f"vertex (at {far.round(3).tolist()}) sets the normalization, so renders show a speck. Remove "
                      "stray vertices from the file", MeshWarning, stacklevel=3)


def _default_name(path: Path) -> str:
    """The file's stem, or the model id for ShapeNet's <model_id>/models/model_normalized.obj."""
    if path.parent.name == "models" and path.parent.parent.name:
        return path.parent.parent.name
    return path.stem


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, Materials | None]:
    """Vertices, fan-triangulated faces (1-based and negative indices) and materials of an OBJ file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise MeshError(f"cannot read mesh file {path}: {e}") from e
    vertex_rows: list[str] = []
    uv_rows: list[str] = []
    corners: list[list[int]] = []
    corner_uvs: list[list[int]] = []  # vt index per corner, -1 where the face has none
    face_material: list[str | None] = []
    libraries: list[str] = []
    material: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("v "):
            vertex_rows.append(line[2:])
        elif line.startswith("vt "):
            uv_rows.append(line[3:])
        elif line.startswith("f "):
            try:
                refs = [tok.split("/") for tok in line[2:].split()]
                idx = [int(ref[0]) for ref in refs]
                tex = [int(ref[1]) if len(ref) > 1 and ref[1] else 0 for ref in refs]
            except ValueError:
                raise MeshError(f"corrupt face on line {lineno} of {path}: {line.strip()!r}") from None
            if len(idx) < 3:
                raise MeshError(f"face with fewer than 3 vertices on line {lineno} of {path}")
            n_seen, n_uv = len(vertex_rows), len(uv_rows)
            if 0 in idx:
                raise MeshError(f"the face on line {lineno} of {path} names vertex 0: OBJ counts vertices from 1 "
                                f"(negative indices count back from the last vertex defined): {line.strip()!r}")
            if any(i > n_seen or i < -n_seen for i in idx):
                raise MeshError(f"the face on line {lineno} of {path} names a vertex not yet defined (only {n_seen} "
                                f"'v' lines come before it): {line.strip()!r}; OBJ faces name vertices defined above them")
            idx = [i - 1 if i > 0 else n_seen + i for i in idx]
            tex = [t - 1 if t > 0 else (n_uv + t if t < 0 else -1) for t in tex]
            fan = range(1, len(idx) - 1)
            corners.extend([idx[0], idx[k], idx[k + 1]] for k in fan)
            corner_uvs.extend([tex[0], tex[k], tex[k + 1]] for k in fan)
            face_material.extend([material] * len(fan))
        elif line.startswith("usemtl"):
            material = line[6:].strip() or None
        elif line.startswith("mtllib"):
            libraries.append(line[6:].strip())
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
    materials = None
    if libraries and len(faces):
        materials = _obj_materials(path, libraries, face_material, np.array(corner_uvs, np.int64).reshape(-1, 3), uv_rows)
    rgb = _obj_vertex_colors(vertex_rows, path)
    if rgb is not None and len(faces):
        materials = with_vertex_colors(materials, rgb[faces], len(faces))
    return vertices, faces, materials


def _obj_vertex_colors(vertex_rows: list[str], path: Path) -> np.ndarray | None:
    """The r g b [V, 3] of ``v x y z r g b`` lines (0-255 values scaled to [0, 1]), or None unless every vertex has one."""
    if not vertex_rows or any(len(r.split()) < 6 for r in vertex_rows):
        return None
    try:
        rgb = np.array([r.split()[3:6] for r in vertex_rows], dtype=np.float64)
    except ValueError:
        raise MeshError(f"corrupt vertex colours in {path}") from None
    return rgb / 255.0 if rgb.max() > 1.0 else rgb


def _obj_materials(
    path: Path, libraries: list[str], face_material: list[str | None], corner_uvs: np.ndarray, uv_rows: list[str]
) -> Materials | None:
    """Per-face Kd, texture and corner UVs from the OBJ's material libraries; None if none could be read."""
    library: dict[str, tuple[tuple[float, float, float], Path | None]] = {}
    for name in libraries:
        mtl = path.parent / name.replace("\\", "/")
        try:
            library.update(_read_mtl(mtl))
        except (OSError, ValueError) as e:
            warnings.warn(f"cannot read the material file {mtl} of {path} ({e}); using white", MaterialWarning, stacklevel=4)
    if not library:
        return None
    uv_table = _uv_table(uv_rows, path)
    F = len(face_material)
    kd = np.ones((F, 3), np.float32)
    texture = np.full(F, -1, np.int64)
    images: list[np.ndarray] = []
    image_index: dict[Path, int] = {}
    names = np.array([m or "" for m in face_material])
    uv_ok = ((corner_uvs >= 0) & (corner_uvs < len(uv_table))).all(axis=1)  # faces without vt keep Kd only
    for name in np.unique(names):
        if name not in library:
            if name:
                warnings.warn(f"material {name!r} of {path} is not in its .mtl; using white", MaterialWarning, stacklevel=4)
            continue
        where = names == name
        color, image_path = library[name]
        kd[where] = color
        if image_path is None:
            continue
        if image_path not in image_index:
            image = _read_texture(image_path, path)
            image_index[image_path] = -1 if image is None else len(images)
            if image is not None:
                images.append(image)
        texture[where & uv_ok] = image_index[image_path]
    uv = np.zeros((F, 3, 2), np.float32)
    textured = texture >= 0
    uv[textured] = uv_table[corner_uvs[textured]]
    return Materials(kd, texture, uv, images)


def _uv_table(uv_rows: list[str], path: Path) -> np.ndarray:
    """The u, v of every ``vt`` line [T, 2] (a missing v reads 0)."""
    try:
        pairs = [(r.split() + ["0", "0"])[:2] for r in uv_rows]
        table = np.array(pairs, dtype=np.float64).reshape(-1, 2)
    except ValueError:
        raise MeshError(f"corrupt texture coordinates (vt) in {path}") from None
    if not np.isfinite(table).all():
        raise MeshError(f"NaN or infinite texture coordinates (vt) in {path}")
    return table.astype(np.float32)


def _read_mtl(path: Path) -> dict[str, tuple[tuple[float, float, float], Path | None]]:
    """Material name -> (Kd, map_Kd path or None) of a .mtl file (Kd defaults to white)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out: dict[str, tuple[tuple[float, float, float], Path | None]] = {}
    name = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        key, _, rest = line.partition(" ")
        rest = rest.strip()
        if key == "newmtl":
            name = rest
            out[name] = ((1.0, 1.0, 1.0), None)
        elif name is None:
            continue
        elif key == "Kd":
            parts = rest.split()
            try:
                rgb = tuple(float(p) for p in (parts * 3 if len(parts) == 1 else parts)[:3])
            except ValueError:
                raise ValueError(f"corrupt Kd on line {lineno}: {line!r}") from None
            if len(rgb) != 3 or not np.isfinite(rgb).all():
                raise ValueError(f"corrupt Kd on line {lineno}: {line!r}")
            out[name] = (rgb, out[name][1])  # type: ignore[assignment]
        elif key == "map_Kd" and rest:
            tokens = rest.split()
            # options (-s 1 1 1, -o ..., -clamp on) come first; the file name is last
            file = tokens[-1] if any(t.startswith("-") for t in tokens) else rest
            out[name] = (out[name][0], path.parent / file.replace("\\", "/"))
    return out


def _read_texture(image_path: Path, mesh_path: Path) -> np.ndarray | None:
    """A texture image as [H, W, 3] float32 in [0, 1] (alpha dropped); None with a warning if unreadable."""
    from PIL import Image

    try:
        with Image.open(image_path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as e:
        reason = "not found" if not image_path.exists() else f"unreadable: {e}"
        warnings.warn(
            f"texture {image_path} of {mesh_path} is {reason}; its faces use their Kd colour", MaterialWarning, stacklevel=5
        )
        return None


def _first3(row: str) -> str:
    """The x y z of a 'v' line (drops optional w or colour values)."""
    parts = row.split()
    if len(parts) < 3:
        raise ValueError(row)
    return " ".join(parts[:3])


def _read_with_trimesh(path: Path) -> tuple[np.ndarray, np.ndarray, Materials | None]:
    """Vertices, faces and the vertex or face colours (a PLY's) of a file trimesh reads."""
    import trimesh

    try:
        loaded = trimesh.load(str(path), force="mesh", process=False, skip_materials=True)
    except Exception as e:  # trimesh raises many kinds of errors on corrupt files
        raise MeshError(f"cannot read mesh file {path}: {e}") from e
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise MeshError(f"mesh file has no triangle faces: {path}")
    faces = np.asarray(loaded.faces, dtype=np.int64)
    materials = None
    if getattr(loaded.visual, "kind", None) == "vertex":
        rgb = np.asarray(loaded.visual.vertex_colors, dtype=np.float64)[:, :3] / 255.0
        materials = with_vertex_colors(None, rgb[faces], len(faces))
    elif getattr(loaded.visual, "kind", None) == "face":
        materials = Materials.colors(np.asarray(loaded.visual.face_colors, dtype=np.float64)[:, :3] / 255.0)
    return np.asarray(loaded.vertices, dtype=np.float64), faces, materials
