"""glTF 2.0 and coloured meshes: base colours, textures (UV sets, wraps), vertex colours, alpha masks, node transforms.

The files are written here, byte by byte (a small glTF writer below), and every backend that runs here
(:meth:`Renderer.backends`) draws them; each backend must match embree's images.
"""

from __future__ import annotations

import io
import json
import struct
import warnings

import numpy as np
import pytest
from PIL import Image

from semkit import Renderer
from semkit.scene import MaterialWarning, MeshError, load_mesh

BACKENDS = Renderer.backends()
VIEWS = {"azimuth": [30.0, 200.0], "elevation": [20.0, -35.0]}


class GLTF:
    """A glTF 2.0 asset under construction: arrays and images in one binary buffer."""

    def __init__(self) -> None:
        self.json: dict = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": []}], "nodes": [], "meshes": [],
                           "accessors": [], "bufferViews": [], "materials": []}
        self.blob = bytearray()

    def _view(self, data: bytes) -> int:
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.json["bufferViews"].append({"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)})
        self.blob += data
        return len(self.json["bufferViews"]) - 1

    def accessor(self, array, kind: str, normalized: bool = False) -> int:
        array = np.ascontiguousarray(array)
        codes = {np.float32: 5126, np.uint8: 5121, np.uint16: 5123, np.uint32: 5125}
        entry = {"bufferView": self._view(array.tobytes()), "componentType": codes[array.dtype.type],
                 "count": len(array), "type": kind}
        if normalized:
            entry["normalized"] = True
        if kind == "VEC3" and array.dtype == np.float32:
            entry.update(min=array.min(0).tolist(), max=array.max(0).tolist())
        self.json["accessors"].append(entry)
        return len(self.json["accessors"]) - 1

    def texture(self, rgba: np.ndarray, wrap: tuple[int, int] = (10497, 10497)) -> int:
        png = io.BytesIO()
        Image.fromarray(rgba).save(png, format="PNG")
        self.json.setdefault("images", []).append({"bufferView": self._view(png.getvalue()), "mimeType": "image/png"})
        self.json.setdefault("samplers", []).append({"wrapS": wrap[0], "wrapT": wrap[1]})
        n = len(self.json["images"]) - 1
        self.json.setdefault("textures", []).append({"source": n, "sampler": n})
        return n

    def material(self, **entry) -> int:
        entry.setdefault("pbrMetallicRoughness", {}).setdefault("metallicFactor", 0.0)
        self.json["materials"].append(entry)
        return len(self.json["materials"]) - 1

    def mesh(self, vertices, faces, material: int | None = None, **attributes) -> int:
        primitive = {"attributes": {"POSITION": self.accessor(np.float32(vertices), "VEC3"), **attributes},
                     "indices": self.accessor(np.uint16(faces).ravel(), "SCALAR")}
        if material is not None:
            primitive["material"] = material
        self.json["meshes"].append({"primitives": [primitive]})
        return len(self.json["meshes"]) - 1

    def node(self, root: bool = True, **entry) -> int:
        self.json["nodes"].append(entry)
        index = len(self.json["nodes"]) - 1
        if root:
            self.json["scenes"][0]["nodes"].append(index)
        return index

    def save_glb(self, path):
        self.json["buffers"] = [{"byteLength": len(self.blob)}]
        text = json.dumps(self.json).encode()
        text += b" " * (-len(text) % 4)
        blob = bytes(self.blob) + b"\0" * (-len(self.blob) % 4)
        body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(blob), 0x004E4942) + blob
        path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body)
        return path

    def save_gltf(self, path):
        """A .gltf with its buffer in a .bin beside it."""
        path.with_suffix(".bin").write_bytes(bytes(self.blob))
        self.json["buffers"] = [{"byteLength": len(self.blob), "uri": path.with_suffix(".bin").name}]
        path.write_text(json.dumps(self.json))
        return path


def cube() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A unit cube with four corners per side: vertices [24, 3], faces [12, 3], uv [24, 2] (0..1 on each side)."""
    vertices, faces, uv = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_axis, v_axis = [a for a in range(3) if a != axis]
            base = len(vertices)
            for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                p = np.zeros(3)
                p[axis], p[u_axis], p[v_axis] = sign * 0.5, du - 0.5, dv - 0.5
                vertices.append(p)
                uv.append((du, dv))
            faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    return np.array(vertices), np.array(faces), np.array(uv)


def red_green(alpha_left: int = 255) -> np.ndarray:
    """An 8 x 8 RGBA texture: the left half red (with ``alpha_left``), the right half green."""
    image = np.zeros((8, 8, 4), np.uint8)
    image[:, :4] = (255, 0, 0, alpha_left)
    image[:, 4:] = (0, 255, 0, 255)
    return image


def render_all(path, **views):
    """{backend: images} for every backend here, materials on, at 48 px."""
    mesh = load_mesh(path)
    return {b: Renderer(b, image_size=48, materials=True).render(mesh, **(views or VIEWS)).numpy() for b in BACKENDS}


def assert_backends_match(images: dict) -> None:
    reference = images["embree"]
    for backend, other in images.items():
        a, b = reference.max(axis=1) > 0, other.max(axis=1) > 0
        iou = (a & b).sum() / max((a | b).sum(), 1)
        assert iou >= 0.99, f"{backend}: silhouette IoU {iou:.3f} with embree"
        assert np.abs(other - reference).mean() <= 0.01, f"{backend}: mean difference {np.abs(other - reference).mean()}"


def colour_share(images: np.ndarray, channel: int) -> float:
    """The share of object pixels whose strongest channel is ``channel`` (clearly so)."""
    pixels = images.transpose(0, 2, 3, 1).reshape(-1, 3)
    pixels = pixels[pixels.max(axis=1) > 0.05]
    others = np.delete(pixels, channel, axis=1).max(axis=1)
    return float((pixels[:, channel] > 2 * others + 0.05).mean())


def textured_cube(tmp_path, texcoord: int = 0, wrap=(10497, 10497), uv_scale: float = 1.0, suffix: str = ".glb"):
    vertices, faces, uv = cube()
    asset = GLTF()
    attributes = {"TEXCOORD_0": asset.accessor(np.float32(uv * uv_scale), "VEC2")}
    if texcoord == 1:  # the texture reads the second UV set; the first points at red only
        attributes = {"TEXCOORD_0": asset.accessor(np.full((24, 2), 0.1, np.float32), "VEC2"),
                      "TEXCOORD_1": asset.accessor(np.float32(uv * uv_scale), "VEC2")}
    texture = asset.texture(red_green(), wrap)
    material = asset.material(pbrMetallicRoughness={"baseColorTexture": {"index": texture, "texCoord": texcoord}})
    asset.node(mesh=asset.mesh(vertices, faces, material, **attributes))
    path = tmp_path / f"cube{suffix}"
    return asset.save_glb(path) if suffix == ".glb" else asset.save_gltf(path)


@pytest.mark.parametrize("suffix", [".glb", ".gltf"])
def test_textured_cube_is_half_red_half_green_on_every_backend(tmp_path, suffix):
    images = render_all(textured_cube(tmp_path, suffix=suffix))
    assert_backends_match(images)
    red, green = colour_share(images["embree"], 0), colour_share(images["embree"], 1)
    assert red > 0.35 and green > 0.35, (red, green)
    grey = Renderer("embree", image_size=48).render(load_mesh(tmp_path / f"cube{suffix}"), **VIEWS).numpy()
    assert colour_share(grey, 0) == colour_share(grey, 1) == 0.0  # materials off: white


def test_texture_reads_its_own_uv_set(tmp_path):
    images = render_all(textured_cube(tmp_path, texcoord=1))
    assert_backends_match(images)
    assert colour_share(images["embree"], 1) > 0.35  # TEXCOORD_0 alone would show only red


def test_sampler_wrap_modes(tmp_path):
    """UVs over 0..2: repeat shows red-green-red-green, clamp red then all green, mirror red-green-green-red."""
    shares, digests = {}, set()
    for name, code in (("repeat", 10497), ("clamp", 33071), ("mirror", 33648)):
        folder = tmp_path / name
        folder.mkdir()
        mesh = load_mesh(textured_cube(folder, wrap=(code, code), uv_scale=2.0))
        assert mesh.materials.wrap == [(name, name)]
        digests.add(mesh.fingerprint())
        images = render_all(folder / "cube.glb")
        assert_backends_match(images)
        shares[name] = colour_share(images["embree"], 1)
    assert shares["clamp"] > shares["repeat"] + 0.2 and shares["clamp"] > shares["mirror"] + 0.2
    assert abs(shares["repeat"] - shares["mirror"]) < 0.25
    assert len(digests) == 3  # stores tell the looks apart


def test_base_colour_factor_and_vertex_colours(tmp_path):
    vertices, faces, _ = cube()
    asset = GLTF()
    blue = asset.material(pbrMetallicRoughness={"baseColorFactor": [0.1, 0.2, 0.9, 1.0]})
    colours = np.tile(np.uint8([255, 230, 0, 255]), (24, 1))  # yellow, normalized bytes
    asset.node(mesh=asset.mesh(vertices, faces, blue), translation=[-1.5, 0, 0])
    asset.node(mesh=asset.mesh(vertices, faces, COLOR_0=asset.accessor(colours, "VEC4", normalized=True)),
               translation=[1.5, 0, 0])
    path = asset.save_glb(tmp_path / "two.glb")
    mesh = load_mesh(path)
    assert np.allclose(mesh.materials.kd[:12], [0.1, 0.2, 0.9], atol=1e-6)
    assert np.allclose(mesh.materials.vertex_rgb[12:], [1.0, 230 / 255, 0.0], atol=1e-6)
    images = render_all(path, azimuth=[0.0], elevation=[10.0])
    assert_backends_match(images)
    left, right = images["embree"][0, :, :, :24], images["embree"][0, :, :, 24:]
    assert colour_share(left[None], 2) > 0.95
    rgb = right.reshape(3, -1)[:, right.max(axis=0).ravel() > 0.05]
    assert (rgb[2] < 0.01).all() and (rgb[0] > 0.2).all() and np.allclose(rgb[1] / rgb[0], 230 / 255, atol=0.02)


def test_nodes_place_their_meshes_by_their_transforms(tmp_path):
    vertices, faces, _ = cube()
    asset = GLTF()
    box = asset.mesh(vertices, faces)
    child = asset.node(root=False, mesh=box, translation=[0, 4, 0], scale=[1, 2, 1])
    turn = np.sin(np.pi / 4)  # 90 degrees about z: the child's +y offset goes to -x
    asset.node(children=[child], rotation=[0, 0, turn, turn])
    matrix = np.eye(4)
    matrix[:3, 3] = [0, 0, 10]
    asset.node(mesh=box, matrix=matrix.T.ravel().tolist())  # column-major
    mesh = load_mesh(asset.save_glb(tmp_path / "nodes.glb"), normalize=False)
    assert len(mesh.faces) == 24
    first, second = mesh.vertices[:24], mesh.vertices[24:]
    assert np.allclose(first.min(0), [-5.0, -0.5, -0.5]) and np.allclose(first.max(0), [-3.0, 0.5, 0.5])
    assert np.allclose(second.min(0), [-0.5, -0.5, 9.5]) and np.allclose(second.max(0), [0.5, 0.5, 10.5])
    normalized = load_mesh(tmp_path / "nodes.glb")
    assert np.isclose(np.ptp(normalized.vertices, axis=0).max(), 2.0)


def test_alpha_mask_makes_holes(tmp_path):
    """A textured quad whose red half is transparent (alphaMode MASK) in front of a blue quad: the blue shows through."""
    quad = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.float32([[0, 1], [1, 1], [1, 0], [0, 0]])  # glTF UVs: v down
    asset = GLTF()
    texture = asset.texture(red_green(alpha_left=0))
    masked = asset.material(pbrMetallicRoughness={"baseColorTexture": {"index": texture}}, alphaMode="MASK",
                            doubleSided=True)
    blue = asset.material(pbrMetallicRoughness={"baseColorFactor": [0, 0, 1, 1]})
    asset.node(mesh=asset.mesh(quad, faces, masked, TEXCOORD_0=asset.accessor(uv, "VEC2")), translation=[0, 0, 0.5])
    asset.node(mesh=asset.mesh(quad, faces, blue), translation=[0, 0, -0.5])
    path = asset.save_glb(tmp_path / "mask.glb")
    images = render_all(path, azimuth=[180.0, 200.0], elevation=[0.0, 10.0])
    assert_backends_match(images)
    front = images["embree"][:1]
    # seen from behind (azimuth 180), the quad's red half is on the right
    assert colour_share(front[:, :, :, 28:], 2) > 0.9  # the transparent red half shows the blue quad
    assert colour_share(front[:, :, :, :20], 1) > 0.9  # the opaque green half hides it
    assert colour_share(front, 0) == 0.0  # no red: its texels are holes
    mesh = load_mesh(path)
    assert mesh.materials.cutoff is not None and np.allclose(mesh.materials.cutoff[:2], 0.5)


def test_what_is_not_drawn_warns_once_naming_it(tmp_path):
    vertices, faces, _ = cube()
    asset = GLTF()
    shiny = asset.material(pbrMetallicRoughness={"metallicFactor": 1.0}, emissiveFactor=[1, 0, 0],
                           extensions={"KHR_materials_transmission": {"transmissionFactor": 1.0}})
    asset.node(mesh=asset.mesh(vertices, faces, shiny))
    with pytest.warns(MaterialWarning) as caught:
        load_mesh(asset.save_glb(tmp_path / "shiny.glb"))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "emission" in message and "metallic shading" in message and "transmission" in message


def test_plain_gltf_loads_without_warnings_and_bad_files_are_named(tmp_path):
    vertices, faces, _ = cube()
    asset = GLTF()
    asset.node(mesh=asset.mesh(vertices, faces))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_mesh(asset.save_glb(tmp_path / "plain.glb")).n_faces == 12
    asset.json["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    with pytest.raises(MeshError, match="KHR_draco_mesh_compression"):
        load_mesh(asset.save_glb(tmp_path / "draco.glb"))
    (tmp_path / "broken.glb").write_bytes(b"glTF\x02\0\0\0garbage")
    with pytest.raises(MeshError, match="broken.glb"):
        load_mesh(tmp_path / "broken.glb")
    missing = tmp_path / "lost.gltf"
    asset.json.pop("extensionsRequired")
    asset.save_gltf(missing)
    missing.with_suffix(".bin").unlink()
    with pytest.raises(MeshError, match="lost.bin"):
        load_mesh(missing)


def test_vertex_colours_of_ply_off_and_obj(tmp_path):
    import trimesh

    box = trimesh.creation.box()
    box.visual.vertex_colors = np.tile([255, 255, 0, 255], (8, 1))
    box.export(tmp_path / "yellow.ply")
    v, f = box.vertices, box.faces
    lines = ["COFF", f"{len(v)} {len(f)} 0"] + [f"{x} {y} {z} 255 255 0 255" for x, y, z in v]
    (tmp_path / "yellow.off").write_text("\n".join(lines + [f"3 {a} {b} {c}" for a, b, c in f]) + "\n")
    lines = [f"v {x} {y} {z} 1.0 1.0 0.0" for x, y, z in v] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f]
    (tmp_path / "yellow.obj").write_text("\n".join(lines) + "\n")
    lines = ["OFF", f"{len(v)} {len(f)} 0"] + [f"{x} {y} {z}" for x, y, z in v]
    (tmp_path / "faces.off").write_text("\n".join(lines + [f"3 {a} {b} {c} 0 0 255" for a, b, c in f]) + "\n")
    for name in ("yellow.ply", "yellow.off", "yellow.obj"):
        mesh = load_mesh(tmp_path / name)
        assert np.allclose(mesh.materials.vertex_rgb, [1, 1, 0]), name
        images = render_all(tmp_path / name)
        assert_backends_match(images)
        rgb = images["embree"].transpose(0, 2, 3, 1).reshape(-1, 3)
        rgb = rgb[rgb.max(axis=1) > 0.05]
        assert (rgb[:, 2] < 0.01).all() and np.allclose(rgb[:, 0], rgb[:, 1], atol=0.01), name
    assert np.allclose(load_mesh(tmp_path / "faces.off").materials.kd, [0, 0, 1])


def test_geometry_equals_trimeshs_for_a_scene_trimesh_wrote(tmp_path):
    """Another writer's file (trimesh: a textured sphere, a vertex-coloured rotated cylinder): the same world vertices."""
    import trimesh

    scene = trimesh.Scene()
    sphere = trimesh.creation.icosphere(2)
    rng = np.random.default_rng(0)
    sphere.visual = trimesh.visual.TextureVisuals(uv=rng.random((len(sphere.vertices), 2)),
                                                  image=Image.fromarray(np.uint8(rng.random((8, 8, 3)) * 255)))
    cylinder = trimesh.creation.cylinder(0.3, 2.0)
    cylinder.visual.vertex_colors = [255, 0, 0, 255]
    turn = trimesh.transformations.rotation_matrix(0.7, [1, 1, 0])
    turn[:3, 3] = [2, 0, 1]
    scene.add_geometry(sphere)
    scene.add_geometry(cylinder, transform=turn)
    scene.export(tmp_path / "scene.glb")
    with pytest.warns(MaterialWarning, match="metallic shading"):  # glTF's default metallicFactor is 1
        mesh = load_mesh(tmp_path / "scene.glb", normalize=False)
    reference = trimesh.load(tmp_path / "scene.glb", force="scene").to_geometry()
    assert mesh.faces.shape == reference.faces.shape
    np.testing.assert_allclose(np.sort(mesh.vertices, axis=0), np.sort(reference.vertices, axis=0), atol=1e-6)
    assert mesh.materials.textured and np.allclose(mesh.materials.vertex_rgb[-1], [1, 0, 0])


def test_strips_fans_and_an_image_file_beside_the_gltf(tmp_path):
    """Triangle strips and fans give the list's triangles (same winding); a .gltf's image may be a file of its own."""
    quad = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    normals = {}
    for mode, order in ((4, [0, 1, 2, 0, 2, 3]), (5, [0, 1, 3, 2]), (6, [0, 1, 2, 3])):
        asset = GLTF()
        asset.node(mesh=asset.mesh(quad, np.array(order)))
        asset.json["meshes"][0]["primitives"][0]["mode"] = mode
        mesh = load_mesh(asset.save_glb(tmp_path / f"mode{mode}.glb"), normalize=False)
        assert mesh.n_faces == 2, mode
        normals[mode] = mesh.face_normals
    np.testing.assert_allclose(normals[5], normals[4])
    np.testing.assert_allclose(normals[6], normals[4])

    path = textured_cube(tmp_path, suffix=".gltf")
    gltf = json.loads(path.read_text())
    view = gltf["bufferViews"][gltf["images"][0]["bufferView"]]
    blob = path.with_suffix(".bin").read_bytes()
    (tmp_path / "red green.png").write_bytes(blob[view["byteOffset"]:view["byteOffset"] + view["byteLength"]])
    gltf["images"][0] = {"uri": "red%20green.png"}
    path.write_text(json.dumps(gltf))
    images = render_all(path)
    assert_backends_match(images)
    assert colour_share(images["embree"], 0) > 0.35 and colour_share(images["embree"], 1) > 0.35


def test_a_node_holding_a_camera_keeps_its_mesh(tmp_path):
    """trimesh's scene graph drops the mesh of the node that holds the first camera; semkit draws it."""
    vertices, faces, _ = cube()
    asset = GLTF()
    asset.json["cameras"] = [{"type": "perspective", "perspective": {"yfov": 0.8, "znear": 0.1}}]
    asset.node(mesh=asset.mesh(vertices, faces), camera=0, translation=[0, 0, 3])
    mesh = load_mesh(asset.save_glb(tmp_path / "camera.glb"), normalize=False)
    assert mesh.n_faces == 12 and np.allclose(mesh.vertices.mean(0), [0, 0, 3])
