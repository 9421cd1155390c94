"""Scenes: materials and textures, backgrounds, and roll / light intensity / ambient as parameters."""

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

import semkit
from semkit import Renderer, Space, gallery
from semkit.scene import load_mesh
from semkit.app import Explorer
from semkit.scene.mesh import MaterialWarning, MeshError


TEXTURED_CHAIR = ("chair", "341fcdd8a40a2612456cbf78e1e89022")  # wood texture on the seat and back, black frame
MANY_COLOURS = ("aeroplane", "4de653411d132abdf1e2558bb9cfc329")  # nine Kd colours, no texture


def _sample(root, entry):
    return load_mesh(root / entry[0] / entry[1] / "models" / "model_normalized.obj")


# ----------------------------------------------------------------- loading


def test_sample_meshes_keep_their_materials(shapenet_root):
    chair = _sample(shapenet_root, TEXTURED_CHAIR)
    m = chair.materials
    assert m is not None and m.textured and len(m) == chair.n_faces
    assert m.kd.shape == (chair.n_faces, 3) and m.uv.shape == (chair.n_faces, 3, 2)
    assert len(m.images) == 1 and m.images[0].ndim == 3 and m.images[0].shape[2] == 3
    textured = m.texture >= 0
    assert 0 < textured.sum() < chair.n_faces  # the frame has no texture
    assert np.isfinite(m.uv[textured]).all() and np.ptp(m.uv[textured]) > 0
    # every vertex of the file is kept, as the paper's loader does
    obj = (shapenet_root / TEXTURED_CHAIR[0] / TEXTURED_CHAIR[1] / "models" / "model_normalized.obj").read_text()
    assert len(chair.vertices) == sum(line.startswith("v ") for line in obj.splitlines())

    plane = _sample(shapenet_root, MANY_COLOURS)
    assert not plane.materials.textured
    assert len(np.unique(plane.materials.kd, axis=0)) >= 5


def _obj(tmp_path, mtl: str | None, texture: bytes | None = None):
    """A unit square with texture coordinates, its .mtl and texture written beside it."""
    (tmp_path / "images").mkdir(exist_ok=True)
    if mtl is not None:
        (tmp_path / "sq.mtl").write_text(mtl)
    if texture is not None:
        (tmp_path / "images" / "tex.png").write_bytes(texture)
    path = tmp_path / "sq.obj"
    path.write_text(
        "mtllib sq.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
        "usemtl red\nf 1/1 2/2 3/3 4/4\nusemtl wood\nf 1/1 3/3 4/4\n"
    )
    return path


MTL = "newmtl red\nKd 1 0 0\nd 0.5\nnewmtl wood\nKd 0.5 0.5 0.5\nmap_Kd ../sq/images/tex.png\n"


def test_kd_texture_and_uv_of_a_written_obj(tmp_path):
    folder = tmp_path / "sq"
    folder.mkdir()
    png = tmp_path / "t.png"
    Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)).save(png)
    mesh = load_mesh(_obj(folder, MTL, png.read_bytes()), normalize=False)
    m = mesh.materials
    np.testing.assert_allclose(m.kd, [[1, 0, 0], [1, 0, 0], [0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(m.texture, [-1, -1, 0])
    np.testing.assert_allclose(m.uv[2], [[0, 0], [1, 1], [0, 1]])
    np.testing.assert_allclose(m.images[0][0, 0], [1, 0, 0])  # top-left texel as stored
    # v grows upward: the texel centre at the bottom-left of the image is uv (0.25, 0.25)
    np.testing.assert_allclose(semkit.scene.sample_texture(m.images[0], np.array([[0.25, 0.25], [1.25, -0.75]])), [[0, 0, 1]] * 2)


def test_missing_or_unreadable_material_files_warn_and_fall_back(tmp_path):
    with pytest.warns(MaterialWarning, match=r"material file .*sq\.mtl"):
        mesh = load_mesh(_obj(tmp_path, None))
    assert mesh.materials is None  # drawn white
    with pytest.warns(MaterialWarning, match=r"texture .*tex\.png .* not found"):
        mesh = load_mesh(_obj(tmp_path, MTL.replace("../sq/", "")))
    np.testing.assert_array_equal(mesh.materials.texture, [-1, -1, -1])
    np.testing.assert_allclose(mesh.materials.kd[2], [0.5, 0.5, 0.5])  # falls back to Kd
    with pytest.warns(MaterialWarning, match=r"texture .*tex\.png .* unreadable"):
        mesh = load_mesh(_obj(tmp_path, MTL.replace("../sq/", ""), b"not a png"))
    assert not mesh.materials.textured


def test_nan_vertices_are_reported_as_such(tmp_path):
    path = tmp_path / "nan.obj"
    path.write_text("v 0 0 0\nv 1 0 nan\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(MeshError, match=r"NaN or infinite vertex coordinates: .*nan\.obj"):
        load_mesh(path)
    path.write_text("v 0 0 0\nv 1 0 inf\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(MeshError, match="NaN or infinite"):
        load_mesh(path)


def test_gallery_shapes_have_colours():
    for mesh in gallery.meshes():
        assert mesh.materials is not None and not mesh.materials.textured
    bench = gallery.load("park_bench").materials.kd
    assert len(np.unique(bench, axis=0)) == 2  # wooden slats, iron legs


# ----------------------------------------------------------- the parameters


@pytest.mark.parametrize("materials", [False, True])
def test_roll_90_turns_the_image_a_quarter_turn(materials):
    mesh = gallery.load("park_bench")
    r = Renderer(image_size=40, materials=materials)
    images = r.render(mesh, azimuth=30, elevation=20, roll=[0, 90, 180, -90, 360])
    rot = lambda image, k: torch.rot90(image, k, dims=(-2, -1))  # noqa: E731  counter-clockwise
    torch.testing.assert_close(images[1], rot(images[0], 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(images[2], rot(images[0], 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(images[3], rot(images[0], -1), atol=1e-5, rtol=0)
    torch.testing.assert_close(images[4], images[0], atol=1e-5, rtol=0)
    assert not torch.allclose(r.render(mesh, azimuth=30, elevation=20, roll=30)[0], images[0])


def test_light_intensity_zero_leaves_the_ambient_light():
    mesh = gallery.load("table_lamp")
    r = Renderer(image_size=48, supersample=1)
    lit = r.render(mesh, azimuth=40, elevation=30)[0]
    dark = r.render(mesh, azimuth=40, elevation=30, light_intensity=0)[0]
    on_object = lit.sum(0) > 0
    assert on_object.sum() > 100
    torch.testing.assert_close(dark[:, on_object], torch.full_like(dark[:, on_object], 0.5))
    assert (dark[:, ~on_object] == 0).all()
    # both lights scale the image linearly, per view in one batch
    batch = r.render(mesh, azimuth=40, elevation=30, light_intensity=[0.0, 1.0], ambient=[0.2, 0.0])
    torch.testing.assert_close(batch[0][:, on_object], torch.full_like(dark[:, on_object], 0.2))
    torch.testing.assert_close(batch[1], (lit - dark) * 2)
    with pytest.raises(ValueError, match="light_intensity must be at least 0"):
        r.render(mesh, azimuth=40, light_intensity=-0.1)


def test_space_knows_the_new_parameters():
    space = Space.of("azimuth", "roll", "light_intensity", "ambient")
    assert space.units == {"azimuth": "deg", "roll": "deg", "light_intensity": "", "ambient": ""}
    assert space.periodic.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(space.lower, [0, -180, 0, 0])
    np.testing.assert_array_equal(space.upper, [360, 180, 1, 1])
    assert space.points([[0, 190, 0.5, 0.5]])[0, 1] == -170  # roll wraps
    assert not Space.of(roll=(-30, 30))["roll"].periodic  # only the whole turn is periodic
    assert Space({"roll": (-180, 180)}, periodic=["roll"]).units["roll"] == "deg"
    with pytest.raises(ValueError, match="outside its range"):
        space.points([[0, 0, 1.5, 0.5]])
    with pytest.raises(ValueError, match="unknown parameter 'zoom'"):
        Space.of("zoom")
    # the renderer takes points of such a Space
    mesh = gallery.load("vase")
    r = Renderer(image_size=32)
    torch.testing.assert_close(
        r.render(mesh, [[30, 90, 0.0, 0.5]], space=space),
        r.render(mesh, azimuth=30, roll=90, light_intensity=0.0, ambient=0.5),
    )


def test_maps_regions_and_the_explorer_over_the_new_parameters(lite0):
    space = Space.of("roll", "light_intensity", fixed={"azimuth": 30, "elevation": 20})
    f = semkit.SemanticFunction(gallery.load("coffee_mug"), lite0, renderer=Renderer(image_size=64), space=space)
    assert f.fd_step.tolist() == [1.0, 0.01]
    m = semkit.semantic_map(f, step={"roll": 90, "light_intensity": 0.5}, progress=False)
    assert m.score.shape == (4, 3) and m["roll"].attrs["units"] == "deg"
    regions = semkit.find_regions(semkit.interpolate(m, space=space), [[0.0, 0.5]], ("naive",), space=space, iterations=20, progress=False)
    assert regions.lower.shape[-1] == 2
    explorer = Explorer(["coffee_mug"], [lite0], space=Space.of("azimuth", "roll"), step=(90, 90), image_size=48,
                        renderer_options={"materials": True})
    assert explorer.point == {"azimuth": 30.0, "roll": 0.0}
    before = explorer.image.copy()
    explorer.set(roll=90)
    np.testing.assert_allclose(explorer.image, np.rot90(before), atol=1e-5)
    assert explorer.map().score.shape == (4, 4)


# ------------------------------------------------------------- backgrounds


def test_background_image_shows_exactly_where_the_object_is_absent(tmp_path):
    mesh = gallery.load("folding_chair")
    size = 48
    picture = np.random.default_rng(1).uniform(size=(size, size, 3)).astype(np.float32)
    black = Renderer(image_size=size, materials=True).render(mesh, azimuth=30, elevation=20)[0]
    white = Renderer(image_size=size, materials=True, background=1.0).render(mesh, azimuth=30, elevation=20)[0]
    missed = (white - black)[0]  # the fraction of each pixel's samples that miss the object
    shown = Renderer(image_size=size, materials=True, background=picture).render(mesh, azimuth=30, elevation=20)[0]
    expected = black + torch.from_numpy(picture).permute(2, 0, 1) * missed
    torch.testing.assert_close(shown, expected, atol=1e-5, rtol=0)
    assert (missed == 1).sum() > 100 and (missed == 0).sum() > 20
    # a file works as well and is resized (stretched) to the output size
    ramp = np.linspace(0, 1, 97)[None, :, None] * [1.0, 0.5, 0.0] + np.linspace(0, 0.5, 61)[:, None, None] * [0, 0, 1]
    Image.fromarray((ramp * 255).round().astype(np.uint8)).save(tmp_path / "bg.png")
    from_file = Renderer(image_size=size, background=tmp_path / "bg.png").render(mesh, azimuth=30, elevation=20)[0]
    assert from_file.shape == (3, size, size)
    c = (np.arange(size) + 0.5) / size  # pixel centres, as fractions of the frame
    expected = torch.tensor(c[None, :, None] * [1.0, 0.5, 0.0] + (c * 0.5)[:, None, None] * [0, 0, 1]).permute(2, 0, 1)
    away = missed == 1
    assert (from_file[:, away] - expected[:, away]).abs().max() < 0.02


def test_bad_backgrounds_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"background must be .*shape \[10, 10\]"):
        Renderer(background=np.zeros((10, 10)))
    with pytest.raises(ValueError, match=r"finite values in \[0, 1\]"):
        Renderer(background=np.full((4, 4, 3), 255.0))
    (tmp_path / "bad.png").write_bytes(b"no image")
    with pytest.raises(ValueError, match="cannot read the background image .*bad.png"):
        Renderer(background=tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="background image not found"):
        Renderer(background=str(tmp_path / "none.jpg"))
    with pytest.raises(ValueError, match="background must be a grey level, an RGB triple"):
        Renderer(background=(0.1, 0.2))


def test_renderer_settings_describe_the_look(tmp_path):
    picture = np.zeros((8, 8, 3))
    described = Renderer(image_size=32, materials=True, background=picture).describe()
    assert described["materials"] is True and described["background_image"].startswith("[8, 8, 3] sha256:")
    assert described["background_source"] == "array"
    other = Renderer(image_size=32, materials=True, background=picture + 0.5).describe()
    assert other["background_image"] != described["background_image"]
    assert Renderer(image_size=32, materials=True, background=picture).resized(16).render(
        gallery.load("vase"), azimuth=0
    ).shape == (1, 3, 16, 16)


# ------------------------------------------------ against an independent renderer


def _reference(mesh: semkit.Mesh, azimuth: float, elevation: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Kd x texture(uv) x (0.5 + 0.5 max(0, n.l)), two-sided and flat, light from +y, by trimesh ray casting.

    One ray through each pixel centre, its own camera (NMR's look_at), barycentrics from trimesh and
    a bilinear texture lookup with wrap-around written here. Where faces coincide (ShapeNet models
    each side of a thin surface as its own face with its own material), the one whose winding faces
    the camera shows (the first such in the file). Returns the image [H, W, 3] on black and the mask
    [H, W] of the pixels that see the object.
    """
    az, el, d = np.radians(azimuth), np.radians(elevation), 2.732
    eye = d * np.array([np.cos(el) * np.sin(az), np.sin(el), -np.cos(el) * np.cos(az)])
    z = -eye / np.linalg.norm(eye)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.tan(np.radians(30))
    c = (2 * np.arange(size) + 1 - size) / size * t
    cols, rows = np.meshgrid(c, -c)
    dirs = cols.reshape(-1, 1) * x + rows.reshape(-1, 1) * y + z
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    tri, ray, where = tm.ray.intersects_id(np.tile(eye, (len(dirs), 1)), dirs, multiple_hits=False, return_locations=True)
    image = np.zeros((size * size, 3))
    winding = np.cross(*(mesh.vertices[mesh.faces[:, k]] - mesh.vertices[mesh.faces[:, 0]] for k in (1, 2)))
    front = np.einsum("ij,ij->i", winding, eye - mesh.vertices[mesh.faces[:, 0]]) > 0
    same_place: dict = {}
    for face, corner_ids in enumerate(mesh.faces):
        same_place.setdefault(tuple(sorted(map(tuple, mesh.vertices[corner_ids]))), []).append(face)
    for i, face in enumerate(tri):
        twins = same_place[tuple(sorted(map(tuple, mesh.vertices[mesh.faces[face]])))]
        tri[i] = next((t for t in twins if front[t]), twins[0])
    corners = mesh.vertices[mesh.faces[tri]]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    normal *= np.sign(np.einsum("ij,ij->i", normal, eye - corners[:, 0]))[:, None]
    color = mesh.materials.kd[tri].astype(float)
    textured = mesh.materials.texture[tri] >= 0
    if textured.any():
        bary = trimesh.triangles.points_to_barycentric(corners[textured], where[textured])
        uv = np.einsum("ic,icj->ij", bary, mesh.materials.uv[tri[textured]])
        for k in np.unique(mesh.materials.texture[tri[textured]]):
            pick = mesh.materials.texture[tri[textured]] == k
            img = mesh.materials.images[k]
            h, w = img.shape[:2]
            px, py = uv[pick, 0] * w - 0.5, (1 - uv[pick, 1]) * h - 0.5
            ix, iy = np.floor(px).astype(int), np.floor(py).astype(int)
            ax, ay = (px - ix)[:, None], (py - iy)[:, None]
            texel = lambda i, j: img[np.mod(j, h), np.mod(i, w)]  # noqa: E731
            value = (1 - ay) * ((1 - ax) * texel(ix, iy) + ax * texel(ix + 1, iy)) + ay * (
                (1 - ax) * texel(ix, iy + 1) + ax * texel(ix + 1, iy + 1)
            )
            sel = np.nonzero(textured)[0][pick]
            color[sel] *= value
    image[ray] = color * (0.5 + 0.5 * np.maximum(normal[:, 1], 0))[:, None]
    mask = np.zeros(size * size, bool)
    mask[ray] = True
    return image.reshape(size, size, 3), mask.reshape(size, size)


@pytest.mark.parametrize(
    "entry,az,el,tolerance",
    [(MANY_COLOURS, 40, 30, 0.03), (TEXTURED_CHAIR, 120, 30, 0.06), (TEXTURED_CHAIR, 200, 15, 0.06), (None, 30, 25, 0.03)],
)
def test_materials_match_an_independent_renderer(shapenet_root, entry, az, el, tolerance):
    mesh = _sample(shapenet_root, entry) if entry else gallery.load("park_bench")
    size = 64
    ours = Renderer(image_size=size, supersample=1, materials=True).render(mesh, azimuth=az, elevation=el)[0].numpy()
    on_white = Renderer(image_size=size, supersample=1, materials=True, background=1.0).render(mesh, azimuth=az, elevation=el)
    covered = (on_white[0].numpy() - ours)[0] < 0.5  # the background does not show there
    reference, mask = _reference(mesh, az, el, size)
    assert (covered & mask).sum() / (covered | mask).sum() >= 0.97
    on = covered & mask
    assert np.abs(ours.transpose(1, 2, 0)[on] - reference[on]).mean() <= tolerance
