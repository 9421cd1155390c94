"""glTF 2.0 (.glb, and .gltf with its .bin and images): the geometry of every node, with its base colours.

trimesh's loader decodes the file: buffers (files, base64 data URIs),
accessors, triangle lists and strips, ``TEXCOORD_0``, ``COLOR_0``, the
images (also ``EXT_texture_webp``) and ``alphaMode``/``alphaCutoff``.
semkit keeps only what trimesh 5.2 lacks: reading the JSON (trimesh returns
none of it) to check it before trusting it (``extensionsRequired``, nodes
that are their own descendants, references out of range, sparse
accessors), with errors naming the file; triangle fans (trimesh skips
them); the texture's own UV set (``texCoord``: trimesh reads
``TEXCOORD_0`` only); normalized integer UVs and colours (trimesh keeps the
raw integers); the exact ``baseColorFactor`` (trimesh rounds it to bytes);
samplers' wrap modes (dropped); percent-encoded file names; node
transforms in the file's order (trimesh drops the mesh of a node that
holds a camera); a warning for a texture that cannot be read (trimesh
skips it silently); and the warning naming what is not drawn.

Of the metallic-roughness material, the base colour is drawn:
``baseColorFactor`` x ``baseColorTexture`` (its UV set and sampler wrap)
x ``COLOR_0``; ``alphaMode`` MASK makes texels below ``alphaCutoff``
holes. Colours are used as stored (sRGB textures are not linearized; the
renderers shade without gamma). What semkit does not draw (emission,
metallic shading, transmission, blending, normal and occlusion maps,
texture transforms, other material extensions) is named in one
[`MaterialWarning`][semkit.scene.MaterialWarning] per file.
"""

from __future__ import annotations

import binascii
import copy
import io
import json
import struct
import warnings
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from trimesh.exchange.gltf import load_glb, load_gltf
from trimesh.exchange.gltf.extensions import register_handler
from trimesh.resolvers import FilePathResolver

from .materials import MaterialWarning, Materials, MeshError

_COMPONENTS = (5120, 5121, 5122, 5123, 5125, 5126)
_TYPES = ("SCALAR", "VEC2", "VEC3", "VEC4", "MAT2", "MAT3", "MAT4")
#: (collection, key, the collection it names): the references checked before trimesh reads the file.
_REFERENCES = (("bufferViews", "buffer", "buffers"), ("accessors", "bufferView", "bufferViews"),
               ("images", "bufferView", "bufferViews"), ("textures", "source", "images"),
               ("textures", "sampler", "samplers"), ("nodes", "mesh", "meshes"))
_WRAPS = {10497: "repeat", 33071: "clamp", 33648: "mirror"}
#: Required extensions semkit honours: material extensions (drawn as their base colour, and named in a
#: MaterialWarning), lights and metadata (not drawn), WebP textures (trimesh decodes them).
SUPPORTED_EXTENSIONS = ("KHR_materials_*", "KHR_lights_punctual", "KHR_xmp_json_ld", "EXT_texture_webp")
#: The mark semkit puts on each primitive, so that trimesh's extension hooks hand it back per primitive.
_MARK = "SEMKIT_primitive"


def read_gltf(path: str | Path) -> tuple[np.ndarray, np.ndarray, Materials]:
    """Vertices [V, 3] (world coordinates), triangles [F, 3] and materials of a glTF 2.0 file."""
    path = Path(path)
    gltf, binary = _read_container(path)
    _check(gltf, path)
    instances = _instances(gltf, path)
    primitives = _decode(gltf, binary, path)
    reader = _Reader(gltf, path)
    parts = [reader.part(primitives[mesh, k], gltf["meshes"][mesh]["primitives"][k], matrix)
             for mesh, matrix in instances for k in range(len(gltf["meshes"][mesh]["primitives"]))
             if (mesh, k) in primitives]
    parts = [p for p in parts if p is not None]
    if not parts:
        raise MeshError(f"{path} has no triangles in its scene's nodes")
    offsets = np.cumsum([0] + [len(p["vertices"]) for p in parts])
    vertices = np.concatenate([p["vertices"] for p in parts])
    faces = np.concatenate([p["faces"] + o for p, o in zip(parts, offsets)])
    vertex_rgb = None
    if any(p["rgb"] is not None for p in parts):
        vertex_rgb = np.concatenate([p["rgb"] if p["rgb"] is not None else np.ones((len(p["faces"]), 3, 3)) for p in parts])
    materials = Materials(
        np.concatenate([p["kd"] for p in parts]), np.concatenate([p["texture"] for p in parts]),
        np.concatenate([p["uv"] for p in parts]), reader.images, reader.wraps, vertex_rgb,
        np.concatenate([p["cutoff"] for p in parts]),
    )
    if reader.ignored:
        warnings.warn(f"{path}: semkit does not draw {', '.join(sorted(reader.ignored))}; drawn with base colours only",
                      MaterialWarning, stacklevel=3)
    return vertices, faces, materials


def _read_container(path: Path) -> tuple[dict, bytes | None]:
    """The JSON and, for a .glb, its binary chunk."""
    data = path.read_bytes()
    try:
        if data[:4] != b"glTF":
            gltf, binary = json.loads(data.decode("utf-8")), None
        else:
            version, length = struct.unpack_from("<II", data, 4)
            if version != 2:
                raise MeshError(f"{path} is glTF version {version}; semkit reads glTF 2.0")
            gltf, binary, offset = None, None, 12
            while offset + 8 <= min(length, len(data)):
                size, kind = struct.unpack_from("<II", data, offset)
                chunk = data[offset + 8:offset + 8 + size]
                if kind == 0x4E4F534A:
                    gltf = json.loads(chunk.decode("utf-8"))
                elif kind == 0x004E4942:
                    binary = chunk
                offset += 8 + size
    except (ValueError, UnicodeDecodeError, struct.error) as e:
        raise MeshError(f"cannot read the glTF file {path}: {e}") from None
    if not isinstance(gltf, dict):
        raise MeshError(f"{path} has no glTF JSON object")
    return gltf, binary


def _check(gltf: dict, path: Path) -> None:
    """Refuse what semkit cannot read right: required extensions it lacks, references out of range, sparse data."""
    required = [e for e in gltf.get("extensionsRequired", []) if not _supported(e)]
    if required:
        hint = ""
        if {"KHR_draco_mesh_compression", "EXT_meshopt_compression"} & set(required):
            hint = "; export it without compression (e.g. gltf-transform copy --no-compression)"
        raise MeshError(f"{path} requires the glTF extension(s) {required}, which semkit does not support (it "
                        f"supports {', '.join(SUPPORTED_EXTENSIONS)}){hint}")

    def entries(kind: str) -> list:
        value = gltf.get(kind, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise MeshError(f"{path}: its glTF {kind!r} is not a list of objects")
        return value

    def refer(index, kind: str, where: str) -> None:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(gltf.get(kind, [])):
            raise MeshError(f"{path}: {where} names {kind[:-1]} {index!r}, but the file has "
                            f"{len(gltf.get(kind, []))} {kind}; the file is corrupt")

    for kind, key, target in _REFERENCES:
        for i, entry in enumerate(entries(kind)):
            if key in entry or key == "buffer":
                refer(entry.get(key), target, f"{kind[:-1]} {i}")
    entries("samplers")
    for i, accessor in enumerate(gltf.get("accessors", [])):
        if accessor.get("componentType") not in _COMPONENTS or accessor.get("type") not in _TYPES:
            raise MeshError(f"{path}: accessor {i} has componentType {accessor.get('componentType')!r} and type "
                            f"{accessor.get('type')!r}; glTF 2.0 allows {_COMPONENTS} and {_TYPES}")
    for i, material in enumerate(entries("materials")):
        info = material.get("pbrMetallicRoughness", {}).get("baseColorTexture")
        if info is not None:
            refer(info.get("index"), "textures", f"material {i}'s baseColorTexture")
    for m, mesh in enumerate(entries("meshes")):
        for k, primitive in enumerate(mesh.get("primitives", [])):
            where = f"primitive {k} of mesh {m}"
            for name, index in primitive.get("attributes", {}).items():
                refer(index, "accessors", f"{where}'s {name}")
                if "sparse" in gltf["accessors"][index]:
                    raise MeshError(f"{path}: sparse accessors are not supported (accessor {index}, {where}'s {name})")
            if "indices" in primitive:
                refer(primitive["indices"], "accessors", f"{where}'s indices")
            if "material" in primitive:
                refer(primitive["material"], "materials", where)
                info = gltf["materials"][primitive["material"]].get("pbrMetallicRoughness", {}).get("baseColorTexture")
                uv = f"TEXCOORD_{info.get('texCoord', 0)}" if info else None
                if primitive.get("mode", 4) in (4, 5, 6) and uv and uv not in primitive.get("attributes", {}):
                    raise MeshError(f"{path}: {where}'s base colour texture reads {uv}, which it does not have")
    for i, node in enumerate(gltf.get("nodes", [])):
        for child in node.get("children", []):
            refer(child, "nodes", f"node {i}'s children")
    scenes = entries("scenes")
    if scenes:
        refer(gltf.get("scene", 0), "scenes", "the file's default scene")
        for root in scenes[gltf.get("scene", 0)].get("nodes", []):
            refer(root, "nodes", "its scene")


def _supported(extension: str) -> bool:
    return any(extension == s or (s.endswith("*") and extension.startswith(s[:-1])) for s in SUPPORTED_EXTENSIONS)


def _instances(gltf: dict, path: Path) -> list[tuple[int, np.ndarray]]:
    """(mesh index, world matrix 4x4) of every node with a mesh in the default scene (all root nodes without one).

    Depth first, in the file's order; a node that is its own descendant is refused, naming the cycle.
    """
    nodes = gltf.get("nodes", [])
    scenes = gltf.get("scenes", [])
    if scenes:
        roots = scenes[gltf.get("scene", 0)].get("nodes", [])
    else:
        children = {c for n in nodes for c in n.get("children", [])}
        roots = [i for i in range(len(nodes)) if i not in children]
    out: list[tuple[int, np.ndarray]] = []
    stack = [(r, np.eye(4), ()) for r in reversed(roots)]
    while stack:
        index, parent, ancestors = stack.pop()
        if index in ancestors:
            cycle = " -> ".join(str(n) for n in (*ancestors[ancestors.index(index):], index))
            raise MeshError(f"{path}: node {index} is its own descendant (nodes {cycle}); glTF nodes must form trees")
        node = nodes[index]
        world = parent @ _local_matrix(node)
        if "mesh" in node:
            out.append((node["mesh"], world))
        stack.extend((c, world, (*ancestors, index)) for c in reversed(node.get("children", [])))
    return out


def _local_matrix(node: dict) -> np.ndarray:
    """A node's transform: its ``matrix`` (column-major), else translation x rotation x scale.

    Our own, not trimesh's ``quaternion_matrix``: that differs in the last bit, which would change the meshes'
    fingerprints and so orphan results already stored for them.
    """
    if "matrix" in node:
        return np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T
    x, y, z, w = node.get("rotation", (0.0, 0.0, 0.0, 1.0))
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.array(node.get("scale", (1.0, 1.0, 1.0)))[None, :]
    matrix[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    return matrix


def _decode(gltf: dict, binary: bytes | None, path: Path) -> dict[tuple[int, int], dict]:
    """trimesh's geometry of each triangle primitive, by (mesh index, primitive index)."""
    marked = copy.deepcopy(gltf)
    for m, mesh in enumerate(marked.get("meshes", [])):
        for k, primitive in enumerate(mesh.get("primitives", [])):
            attributes = primitive.get("attributes", {})
            info = None
            if "material" in primitive:
                info = marked["materials"][primitive["material"]].get("pbrMetallicRoughness", {}).get("baseColorTexture")
            uv = f"TEXCOORD_{info.get('texCoord', 0)}" if info else "TEXCOORD_0"
            if uv in attributes:  # trimesh reads TEXCOORD_0: give it the texture's own set
                attributes["TEXCOORD_0"] = attributes[uv]
            normalized = [attributes[a] for a in ("TEXCOORD_0", "COLOR_0")
                          if a in attributes and marked["accessors"][attributes[a]].get("normalized")]
            primitive.setdefault("extensions", {})[_MARK] = {"mesh": m, "primitive": k, "normalized": normalized}
        # triangles only (lists, strips, fans), and only with positions: trimesh is not asked to read the rest
        mesh["primitives"] = [p for p in mesh.get("primitives", [])
                              if p.get("mode", 4) in (4, 5, 6) and "POSITION" in p.get("attributes", {})]
    for entry in (*marked.get("buffers", []), *marked.get("images", [])):
        if isinstance(entry.get("uri"), str) and not entry["uri"].startswith("data:"):
            entry["uri"] = unquote(entry["uri"])
    resolver = FilePathResolver(str(path), allow_anywhere=True)
    try:
        if binary is None:
            loaded = load_gltf(io.BytesIO(json.dumps(marked).encode()), resolver=resolver)
        else:
            loaded = load_glb(io.BytesIO(_glb(marked, binary)), resolver=resolver)
    except FileNotFoundError as e:
        raise MeshError(f"{path}: cannot read its buffer {path.parent / str(e)}; keep it beside the .gltf") from None
    except binascii.Error as e:
        raise MeshError(f"{path}: a buffer's base64 data URI is corrupt ({e})") from None
    except Exception as e:  # trimesh raises bare IndexError, ValueError, AssertionError on data it cannot slice
        detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise MeshError(f"{path}: its buffers do not hold the data its bufferViews and accessors describe ({detail}); "
                        "the file is truncated or corrupt") from None
    return {(g["metadata"][_MARK]["mesh"], g["metadata"][_MARK]["primitive"]): g
            for g in loaded["geometry"].values() if _MARK in g.get("metadata", {})}


def _glb(gltf: dict, binary: bytes) -> bytes:
    """A .glb of ``gltf`` and its binary chunk."""
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    blob = binary + b"\0" * (-len(binary) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(blob), 0x004E4942) + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


@register_handler(_MARK, scope="primitive_preprocess")
def _prepare(context: dict) -> None:
    """Before trimesh reads a marked primitive: fans become triangle lists, normalized integers floats."""
    primitive, accessors, mark = context["primitive"], context["accessors"], context["data"]
    for index in mark["normalized"]:
        values = accessors[index]
        if values.dtype.kind in "iu":
            accessors[index] = np.maximum(values.astype(np.float64) / np.iinfo(values.dtype).max, -1.0)
    if primitive.get("mode") == 6:
        n = len(accessors[primitive["attributes"]["POSITION"]])
        indices = accessors[primitive["indices"]].reshape(-1) if "indices" in primitive else np.arange(n)
        k = np.arange(max(len(indices) - 2, 0))
        accessors.append(np.stack([np.full(len(k), indices[0] if len(k) else 0), indices[k + 1], indices[k + 2]], 1))
        primitive["indices"], primitive["mode"] = len(accessors) - 1, 4


@register_handler(_MARK, scope="primitive")
def _stamp(context: dict) -> dict:
    """After trimesh reads a marked primitive: its geometry carries the mark, to be found by (mesh, primitive)."""
    return {"metadata": {_MARK: context["data"]}}


class _Reader:
    """Per-primitive base colours from the JSON and trimesh's geometry; collects the textures used and what is not drawn."""

    def __init__(self, gltf: dict, path: Path) -> None:
        self.gltf, self.path = gltf, path
        self.images: list[np.ndarray] = []
        self.wraps: list[tuple[str, str]] = []
        self._textures: dict[tuple[int, str, str], int] = {}
        self.ignored: set[str] = set()

    def texture(self, info: dict, image) -> int:
        """The index into `images` of a texture reference (one per image and wrap), or -1 if unreadable."""
        texture = self.gltf["textures"][info["index"]]
        if "KHR_texture_transform" in info.get("extensions", {}):
            self.ignored.add("texture transforms (KHR_texture_transform)")
        if image is None:
            if "source" not in texture:
                self.ignored.add("textures in extension formats (e.g. KTX2)")
                return -1
            uri = self.gltf["images"][texture["source"]].get("uri", "")
            name = f"image {texture['source']} (embedded)"
            if uri and not uri.startswith("data:"):
                name = str(self.path.parent / unquote(uri))
            warnings.warn(f"{self.path}: its texture {name} is missing or unreadable; its faces use their base colour",
                          MaterialWarning, stacklevel=4)
            return -1
        sampler = self.gltf.get("samplers", [])[texture["sampler"]] if "sampler" in texture else {}
        key = (id(image), _WRAPS.get(sampler.get("wrapS"), "repeat"), _WRAPS.get(sampler.get("wrapT"), "repeat"))
        if key not in self._textures:
            self._textures[key] = len(self.images)
            self.images.append(np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0)
            self.wraps.append(key[1:])
        return self._textures[key]

    def material(self, index: int | None, visual) -> dict:
        """Base colour factor [4], texture index (-1 none) and the alpha cutoff (0: opaque) of a primitive."""
        if index is None:
            return {"factor": np.ones(4), "texture": -1, "cutoff": 0.0}
        material = self.gltf["materials"][index]
        pbr = material.get("pbrMetallicRoughness", {})
        factor = np.array(pbr.get("baseColorFactor", (1.0, 1.0, 1.0, 1.0)), dtype=np.float64)  # trimesh rounds it
        loaded = getattr(visual, "material", None)
        info = pbr.get("baseColorTexture")
        texture = self.texture(info, getattr(loaded, "baseColorTexture", None)) if info is not None else -1
        mode = getattr(loaded, "alphaMode", None) or "OPAQUE"
        if mode == "BLEND":
            self.ignored.add("alpha blending (alphaMode BLEND, drawn opaque)")
        if pbr.get("metallicFactor", 1.0) > 0 or "metallicRoughnessTexture" in pbr:
            self.ignored.add("metallic shading")
        if any(material.get("emissiveFactor", (0, 0, 0))) or "emissiveTexture" in material:
            self.ignored.add("emission")
        for key, name in (("normalTexture", "normal maps"), ("occlusionTexture", "occlusion maps")):
            if key in material:
                self.ignored.add(name)
        for extension in material.get("extensions", {}):
            self.ignored.add("transmission" if extension == "KHR_materials_transmission" else extension)
        cutoff = loaded.alphaCutoff if mode == "MASK" and loaded.alphaCutoff is not None else 0.5
        return {"factor": factor, "texture": texture, "cutoff": float(cutoff) if mode == "MASK" else 0.0}

    def part(self, geometry: dict, primitive: dict, matrix: np.ndarray) -> dict | None:
        """One primitive's world vertices, triangles and per-face material arrays; None when every face is masked out."""
        local = np.asarray(geometry["vertices"], dtype=np.float64)
        vertices = local @ matrix[:3, :3].T + matrix[:3, 3]
        n = len(vertices)
        faces = np.asarray(geometry["faces"], dtype=np.int64).reshape(-1, 3)
        if np.linalg.det(matrix[:3, :3]) < 0:  # a mirroring transform reverses the winding
            faces = faces[:, ::-1]
        if len(faces) and (faces.min() < 0 or faces.max() >= n):
            raise MeshError(f"{self.path}: a primitive's indices run past its {n} vertices")
        visual = geometry.get("visual")
        material = self.material(primitive.get("material"), visual)
        factor, texture, cutoff = material["factor"], material["texture"], material["cutoff"]
        if cutoff > 0 and (factor[3] <= 0 or (texture < 0 and factor[3] < cutoff)):
            return None  # alpha below the cutoff everywhere: all holes
        uv = np.zeros((len(faces), 3, 2))
        if texture >= 0:
            uv = np.asarray(visual.uv, dtype=np.float64)[faces]  # trimesh has flipped glTF's v to grow upward
        colors = geometry.get("vertex_colors")
        if colors is None and visual is not None:
            colors = visual.vertex_attributes.get("color")
        rgb = None
        if colors is not None and "COLOR_0" in primitive["attributes"]:
            colors = np.asarray(colors)
            rgb = (colors[:, :3].astype(np.float64) / (np.iinfo(colors.dtype).max if colors.dtype.kind in "iu" else 1))[faces]
        F = len(faces)
        # texture alpha x factor alpha < cutoff  <=>  texture alpha < cutoff / factor alpha
        face_cutoff = cutoff / factor[3] if texture >= 0 else 0.0
        return {
            "vertices": vertices, "faces": faces, "kd": np.tile(factor[:3], (F, 1)), "texture": np.full(F, texture),
            "uv": uv, "rgb": rgb, "cutoff": np.full(F, face_cutoff),
        }
