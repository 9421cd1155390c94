"""Scenes: meshes (OBJ/MTL reading, materials, normalization), the built-in gallery, ShapeNet, and naming a shape.

* :mod:`.mesh`: :class:`Mesh` and :func:`load_mesh`;
* :mod:`.gallery`: eight procedural objects with their ImageNet labels;
* :mod:`.shapenet`: ShapeNet folders and the paper's classes;
* :mod:`.shapes`: :func:`load_shape`, one shape by any of its names.
"""

from . import gallery, shapenet
from .mesh import (Materials, MaterialWarning, Mesh, MeshError, MeshWarning, front_twins, load_mesh, normalize_vertices,
                   sample_texture)
from .shapenet import PAPER_CLASSES, ShapeNet
from .shapes import load_shape, load_shapes

__all__ = [
    "MaterialWarning", "Materials", "Mesh", "MeshError", "MeshWarning", "PAPER_CLASSES", "ShapeNet", "gallery",
    "front_twins", "load_mesh", "load_shape", "load_shapes", "normalize_vertices", "sample_texture", "shapenet",
]
