"""Scenes: meshes (OBJ/MTL reading, materials, normalization), the built-in gallery, ShapeNet, and naming a shape.

* `.mesh`: [`Mesh`][semkit.Mesh] and [`load_mesh`][semkit.scene.load_mesh];
* `.materials`: [`Materials`][semkit.scene.Materials] (colours, textures, vertex colours, alpha masks) and texture lookup;
* `.gltf`, `.off`: glTF 2.0 and coloured OFF files;
* `.gallery`: eight procedural objects with their ImageNet labels;
* `.shapenet`: ShapeNet folders and the paper's classes;
* `.shapes`: [`load_shape`][semkit.load_shape], one shape by any of its names.
"""

from . import gallery, shapenet
from .materials import WRAP_MODES, Materials, MaterialWarning, MeshError, MeshWarning, front_twins, sample_texture
from .mesh import Mesh, load_mesh, normalize_vertices
from .shapenet import PAPER_CLASSES, ShapeNet
from .shapes import load_shape, load_shapes

__all__ = [
    "MaterialWarning", "Materials", "WRAP_MODES", "Mesh", "MeshError", "MeshWarning", "PAPER_CLASSES", "ShapeNet", "gallery",
    "front_twins", "load_mesh", "load_shape", "load_shapes", "normalize_vertices", "sample_texture", "shapenet",
]
