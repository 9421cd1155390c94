"""glTF 2.0 (.glb, and .gltf with its .bin and images): the geometry of every node, with its base colours.

A reader of our own, from the glTF JSON and buffers: trimesh's loader keeps
one UV set per primitive, and drops samplers' wrap modes, a texture's
``texCoord`` and alpha masks. Every triangle primitive (also strips and
fans) of every node of the default scene is placed by the node's world
transform. Of the metallic-roughness material, the base colour is drawn:
``baseColorFactor`` x ``baseColorTexture`` (its own UV set and sampler
wrap) x ``COLOR_0``; ``alphaMode`` MASK makes texels below ``alphaCutoff``
holes. Colours are used as stored (sRGB textures are not linearized; the
renderers shade without gamma). What semkit does not draw (emission,
metallic shading, transmission, blending, normal and occlusion maps,
other material extensions) is named in one :class:`MaterialWarning` per file.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .materials import MaterialWarning, Materials, MeshError

_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_WRAPS = {10497: "repeat", 33071: "clamp", 33648: "mirror"}
#: Compressed geometry, which semkit does not decode.
_DECODERS = ("KHR_draco_mesh_compression", "EXT_meshopt_compression")


def read_gltf(path: str | Path) -> tuple[np.ndarray, np.ndarray, Materials]:
    """Vertices [V, 3] (world coordinates), triangles [F, 3] and materials of a glTF 2.0 file."""
    path = Path(path)
    gltf, binary = _read_container(path)
    required = [e for e in gltf.get("extensionsRequired", []) if e in _DECODERS]
    if required:
        raise MeshError(f"{path} needs the glTF extension(s) {required} to decode its geometry, which semkit does not "
                        "read; export it without compression (e.g. gltf-transform copy --no-compression)")
    reader = _Reader(gltf, binary, path)
    parts = [_primitive(reader, p, matrix) for mesh, matrix in _instances(gltf) for p in gltf["meshes"][mesh]["primitives"]
             if p.get("mode", 4) in (4, 5, 6)]
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
            return json.loads(data.decode("utf-8")), None
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
        raise MeshError(f"{path} has no glTF JSON chunk")
    return gltf, binary


def _instances(gltf: dict) -> list[tuple[int, np.ndarray]]:
    """(mesh index, world matrix 4x4) of every node with a mesh in the default scene (all root nodes without one)."""
    nodes = gltf.get("nodes", [])
    scenes = gltf.get("scenes", [])
    if scenes:
        roots = scenes[gltf.get("scene", 0)].get("nodes", [])
    else:
        children = {c for n in nodes for c in n.get("children", [])}
        roots = [i for i in range(len(nodes)) if i not in children]
    out, stack = [], [(r, np.eye(4)) for r in reversed(roots)]  # depth first, in the file's order
    while stack:
        index, parent = stack.pop()
        node = nodes[index]
        world = parent @ _local_matrix(node)
        if "mesh" in node:
            out.append((node["mesh"], world))
        stack.extend((c, world) for c in reversed(node.get("children", [])))
    return out


def _local_matrix(node: dict) -> np.ndarray:
    """A node's transform: its ``matrix`` (column-major), else translation x rotation x scale."""
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


class _Reader:
    """Accessors, textures and materials of one file; collects the textures used and what is not drawn."""

    def __init__(self, gltf: dict, binary: bytes | None, path: Path) -> None:
        self.gltf, self.binary, self.path = gltf, binary, path
        self.buffers: dict[int, bytes] = {}
        self.images: list[np.ndarray] = []
        self.wraps: list[tuple[str, str]] = []
        self._textures: dict[tuple[int, str, str], int] = {}
        self.ignored: set[str] = set()

    def buffer(self, index: int) -> bytes:
        if index not in self.buffers:
            self.buffers[index] = self._uri(self.gltf["buffers"][index].get("uri"), "buffer")
        return self.buffers[index]

    def _uri(self, uri: str | None, what: str) -> bytes:
        """The bytes of a data URI, a file beside the glTF, or (no URI) the .glb's binary chunk."""
        if uri is None:
            if self.binary is None:
                raise MeshError(f"{self.path}: a {what} without a uri, and no binary chunk")
            return self.binary
        if uri.startswith("data:"):
            return base64.b64decode(uri.split(",", 1)[1])
        from urllib.parse import unquote

        file = self.path.parent / unquote(uri)
        try:
            return file.read_bytes()
        except OSError as e:
            raise MeshError(f"{self.path}: cannot read its {what} {file} ({e}); keep it beside the .gltf") from None

    def view(self, index: int) -> tuple[bytes, int, int | None]:
        """(buffer bytes, offset, stride) of a bufferView."""
        view = self.gltf["bufferViews"][index]
        return self.buffer(view["buffer"]), view.get("byteOffset", 0), view.get("byteStride")

    def accessor(self, index: int) -> np.ndarray:
        """An accessor's values [count, width] (normalized integers as floats in [0, 1] or [-1, 1])."""
        acc = self.gltf["accessors"][index]
        dtype = np.dtype(_DTYPES[acc["componentType"]]).newbyteorder("<")
        width, count = _WIDTHS[acc["type"]], acc["count"]
        if "sparse" in acc:
            raise MeshError(f"{self.path}: sparse accessors are not supported (accessor {index})")
        if "bufferView" not in acc:
            values = np.zeros((count, width), dtype)
        else:
            data, offset, stride = self.view(acc["bufferView"])
            offset += acc.get("byteOffset", 0)
            stride = stride or dtype.itemsize * width
            if offset + stride * (count - 1) + dtype.itemsize * width > len(data):
                raise MeshError(f"{self.path}: accessor {index} runs past the end of its buffer")
            values = np.ndarray((count, width), dtype, data, offset, (stride, dtype.itemsize)).copy()
        if acc.get("normalized") and dtype.kind in "iu":
            info = np.iinfo(dtype)
            return np.maximum(values.astype(np.float64) / info.max, -1.0)
        return values.astype(np.float64)

    def texture(self, info: dict) -> int:
        """The index into :attr:`images` of a texture reference (one per image and wrap), or -1 if unreadable."""
        texture = self.gltf["textures"][info["index"]]
        source = texture.get("source")
        if source is None:
            self.ignored.add("textures in extension formats (KTX2, WebP)")
            return -1
        sampler = self.gltf.get("samplers", [])[texture["sampler"]] if "sampler" in texture else {}
        key = (source, _WRAPS.get(sampler.get("wrapS"), "repeat"), _WRAPS.get(sampler.get("wrapT"), "repeat"))
        if key not in self._textures:
            image = self.gltf["images"][source]
            data = self.view_bytes(image["bufferView"]) if "bufferView" in image else self._uri(image.get("uri"), "image")
            self._textures[key] = len(self.images)
            self.images.append(_decode_image(data, self.path))
            self.wraps.append(key[1:])
        if "KHR_texture_transform" in info.get("extensions", {}):
            self.ignored.add("texture transforms (KHR_texture_transform)")
        return self._textures[key]

    def view_bytes(self, index: int) -> bytes:
        data, offset, _ = self.view(index)
        return data[offset:offset + self.gltf["bufferViews"][index]["byteLength"]]

    def material(self, index: int | None) -> dict[str, Any]:
        """Base colour factor [4], texture index (-1 none), its UV set and the alpha cutoff (0: opaque)."""
        if index is None:
            return {"factor": np.ones(4), "texture": -1, "texcoord": 0, "cutoff": 0.0}
        material = self.gltf["materials"][index]
        pbr = material.get("pbrMetallicRoughness", {})
        factor = np.array(pbr.get("baseColorFactor", (1.0, 1.0, 1.0, 1.0)), dtype=np.float64)
        info = pbr.get("baseColorTexture")
        texture = self.texture(info) if info is not None else -1
        mode = material.get("alphaMode", "OPAQUE")
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
        cutoff = float(material.get("alphaCutoff", 0.5)) if mode == "MASK" else 0.0
        return {"factor": factor, "texture": texture, "texcoord": info.get("texCoord", 0) if info else 0,
                "cutoff": cutoff}


def _decode_image(data: bytes, path: Path) -> np.ndarray:
    """An embedded or external image as [H, W, 4] float32 in [0, 1]."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise MeshError(f"{path}: cannot decode one of its texture images ({e})") from None


def _primitive(reader: _Reader, primitive: dict, matrix: np.ndarray) -> dict[str, np.ndarray | None] | None:
    """One primitive's world vertices, triangles and per-face material arrays; None when every face is masked out."""
    attributes = primitive["attributes"]
    if "POSITION" not in attributes:
        return None
    local = reader.accessor(attributes["POSITION"])
    vertices = local @ matrix[:3, :3].T + matrix[:3, 3]
    n = len(vertices)
    indices = reader.accessor(primitive["indices"])[:, 0].astype(np.int64) if "indices" in primitive else np.arange(n)
    faces = _triangles(indices, primitive.get("mode", 4))
    if np.linalg.det(matrix[:3, :3]) < 0:  # a mirroring transform reverses the winding
        faces = faces[:, ::-1]
    if len(faces) and (faces.min() < 0 or faces.max() >= n):
        raise MeshError(f"{reader.path}: a primitive's indices run past its {n} vertices")
    material = reader.material(primitive.get("material"))
    factor, texture, cutoff = material["factor"], material["texture"], material["cutoff"]
    if cutoff > 0 and (factor[3] <= 0 or (texture < 0 and factor[3] < cutoff)):
        return None  # alpha below the cutoff everywhere: all holes
    uv_key = f"TEXCOORD_{material['texcoord']}"
    if texture >= 0 and uv_key not in attributes:
        raise MeshError(f"{reader.path}: a primitive's base colour texture reads {uv_key}, which it does not have")
    uv = np.zeros((len(faces), 3, 2))
    if texture >= 0:
        table = reader.accessor(attributes[uv_key])
        uv = np.stack([table[:, 0], 1.0 - table[:, 1]], axis=1)[faces]  # glTF's v grows downward
    rgb = reader.accessor(attributes["COLOR_0"])[:, :3][faces] if "COLOR_0" in attributes else None
    F = len(faces)
    # texture alpha x factor alpha < cutoff  <=>  texture alpha < cutoff / factor alpha
    face_cutoff = cutoff / factor[3] if texture >= 0 else 0.0
    return {
        "vertices": vertices, "faces": faces, "kd": np.tile(factor[:3], (F, 1)), "texture": np.full(F, texture),
        "uv": uv, "rgb": rgb, "cutoff": np.full(F, face_cutoff),
    }


def _triangles(indices: np.ndarray, mode: int) -> np.ndarray:
    """Triangles [F, 3] of a primitive's indices in its mode (4 list, 5 strip, 6 fan)."""
    if mode == 4:
        return indices[: len(indices) // 3 * 3].reshape(-1, 3)
    k = np.arange(max(len(indices) - 2, 0))
    if mode == 5:  # every other strip triangle swaps two corners to keep the winding
        even = k % 2 == 0
        a, b = np.where(even, k, k + 1), np.where(even, k + 1, k)
        return np.stack([indices[a], indices[b], indices[k + 2]], axis=1)
    return np.stack([np.full(len(k), indices[0]), indices[k + 1], indices[k + 2]], axis=1)
