import numpy as np
import pytest
import trimesh

import semkit
from semkit import Mesh
from semkit.scene import MeshError, load_mesh
from semkit.scene.mesh import normalize_vertices


def test_normalization_matches_the_paper():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 3)) * [3, 1, 2] + [5, -2, 1]
    n = normalize_vertices(v)
    extent = n.max(0) - n.min(0)
    assert extent.max() == pytest.approx(2.0)
    # NMR: shift min to 0, divide by max |coordinate|, *2, subtract half the per-axis max.
    expected = (v - v.min(0)) / np.abs(v - v.min(0)).max() * 2
    expected -= expected.max(0) / 2
    np.testing.assert_allclose(n, expected)
    np.testing.assert_allclose(n.max(0), -n.min(0))  # centred


def test_obj_polygons_are_fan_triangulated(tmp_path):
    path = tmp_path / "quad.obj"
    path.write_text(
        "# a quad and a pentagon, with texture/normal indices and a negative index\n"
        "mtllib x.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0 1.0\nv 0.5 1.5 0\nvt 0 0\nvn 0 0 1\n"
        "usemtl a\nf 1/1/1 2/1/1 3/1/1 4/1/1\nf -5 -4 -3 -1 -2\nl 1 2\n"
    )
    with pytest.warns(semkit.scene.mesh.MaterialWarning, match="x.mtl"):  # no such material file: drawn white
        mesh = load_mesh(path, normalize=False)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [0, 1, 2], [0, 2, 4], [0, 4, 3]])
    assert mesh.vertices.shape == (5, 3)
    assert mesh.name == "quad" and mesh.source == str(path)


def test_obj_normalization_uses_every_vertex(tmp_path):
    """As NMR's loader: an unreferenced vertex still counts for the bounding box."""
    path = tmp_path / "t.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 4 0 0\nf 1 2 3\n")
    mesh = load_mesh(path)
    assert mesh.vertices[:, 0].max() - mesh.vertices[:, 0].min() == pytest.approx(2.0)
    assert mesh.vertices[1, 0] == pytest.approx(-0.5)


@pytest.mark.parametrize("suffix", [".ply", ".off", ".stl", ".glb"])
def test_other_formats_load_through_trimesh(tmp_path, suffix):
    box = trimesh.creation.box((1, 2, 3))
    path = tmp_path / f"box{suffix}"
    box.export(path)
    mesh = load_mesh(path)
    assert mesh.n_faces == 12
    assert (mesh.vertices.max(0) - mesh.vertices.min(0)).max() == pytest.approx(2.0)


def test_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="mesh file not found: .*nope.obj"):
        load_mesh(tmp_path / "nope.obj")
    empty = tmp_path / "empty.obj"
    empty.write_text("")
    with pytest.raises(MeshError, match="empty.*empty.obj"):
        load_mesh(empty)
    no_faces = tmp_path / "points.obj"
    no_faces.write_text("v 0 0 0\nv 1 0 0\n")
    with pytest.raises(MeshError, match="no faces.*points.obj"):
        load_mesh(no_faces)
    bad_face = tmp_path / "bad.obj"
    bad_face.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 two 3\n")
    with pytest.raises(MeshError, match="corrupt face on line 4 of .*bad.obj"):
        load_mesh(bad_face)
    bad_index = tmp_path / "index.obj"
    bad_index.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    with pytest.raises(MeshError, match="face on line 4 of .*index.obj names a vertex not yet defined"):
        load_mesh(bad_index)
    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"\x00\x01not a mesh at all")
    with pytest.raises(MeshError, match="garbage.ply"):
        load_mesh(garbage)
    with pytest.raises(MeshError, match="is a folder"):
        load_mesh(tmp_path)


def test_mesh_validation():
    with pytest.raises(MeshError, match="no faces"):
        Mesh(np.zeros((3, 3)), np.zeros((0, 3), int))
    with pytest.raises(MeshError, match="outside its 3 vertices"):
        Mesh(np.eye(3), [[0, 1, 3]])
    with pytest.raises(MeshError, match="NaN"):
        Mesh([[0, 0, np.nan], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])


def test_face_normals_are_unit_or_zero():
    mesh = Mesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0]], [[0, 1, 2], [0, 1, 3]])
    np.testing.assert_allclose(mesh.face_normals, [[0, 0, 1], [0, 0, 0]])


def test_shapenet_meshes_load_named_by_model(shapenet_root):
    path = shapenet_root / "bench" / "c069553c08631597cb2a965e75be701c" / "models" / "model_normalized.obj"
    mesh = semkit.scene.load_mesh(path)
    assert mesh.name == "c069553c08631597cb2a965e75be701c"
    assert mesh.n_faces == 4720
    assert (mesh.vertices.max(0) - mesh.vertices.min(0)).max() == pytest.approx(2.0)
