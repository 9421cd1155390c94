"""OFF files (Princeton's Object File Format, ModelNet's), with their vertex and face colours.

A small reader of our own: trimesh drops OFF colours. Polygons are
fan-triangulated; a vertex line's values after x y z (after its normal in
an ``NOFF``/``CNOFF`` file) are its colour, a face line's values after its
corner indices the face's colour, as 0-255 integers or floats in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .materials import Materials, MeshError, with_vertex_colors


def read_off(path: Path) -> tuple[np.ndarray, np.ndarray, Materials | None]:
    """Vertices [V, 3], triangles [F, 3] and colours (None if the file has none) of an OFF file."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise MeshError(f"cannot read mesh file {path}: {e}") from e
    lines = [line.split("#", 1)[0].split() for line in text.splitlines()]
    rows = [tokens for tokens in lines if tokens]
    if not rows or not rows[0][0].upper().endswith("OFF"):
        raise MeshError(f"{path} is not an OFF file (its first line is not OFF, COFF, NOFF, ...)")
    header = rows[0][0].upper()
    skip = 3 if header.startswith(("N", "CN")) or "N" in header[:-3] else 0  # normals before the colour
    counts, body = (rows[0][1:], rows[1:]) if len(rows[0]) > 1 else (rows[1], rows[2:])
    try:
        n_vertices, n_faces = int(counts[0]), int(counts[1])
        vertex_rows, face_rows = body[:n_vertices], body[n_vertices:n_vertices + n_faces]
        if len(vertex_rows) < n_vertices or len(face_rows) < n_faces:
            raise ValueError("fewer lines than the header's counts")
        vertices = np.array([r[:3] for r in vertex_rows], dtype=np.float64).reshape(-1, 3)
        corners, face_rgb = [], []
        for r in face_rows:
            n = int(r[0])
            idx = [int(i) for i in r[1:n + 1]]
            if len(idx) != n or n < 3:
                raise ValueError(f"face line {' '.join(r)!r}")
            corners.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, n - 1))
            face_rgb.extend([r[n + 1:n + 4]] * (n - 2))
        vertex_rgb = [r[3 + skip:6 + skip] for r in vertex_rows]
        faces = np.array(corners, dtype=np.int64).reshape(-1, 3)
        vertex_colors = _colors(vertex_rgb) if vertex_rgb else None
        face_colors = _colors(face_rgb) if face_rgb else None
    except (ValueError, IndexError) as e:
        raise MeshError(f"corrupt OFF file {path}: {e}") from None
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise MeshError(f"face index out of range in {path} ({len(vertices)} vertices)")
    materials = Materials.colors(face_colors) if face_colors is not None else None
    if vertex_colors is not None:
        materials = with_vertex_colors(materials, vertex_colors[faces], len(faces))
    return vertices, faces, materials


def _colors(rows: list[list[str]]) -> np.ndarray | None:
    """Colours [N, 3] in [0, 1] when every row has three values (0-255 integers scaled), else None."""
    if any(len(r) < 3 for r in rows):
        return None
    rgb = np.array(rows, dtype=np.float64)
    integers = all("." not in v and "e" not in v.lower() for r in rows for v in r)
    return rgb / 255.0 if integers or rgb.max() > 1.0 else rgb
