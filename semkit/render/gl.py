"""The OpenGL backend: rasterization through a headless EGL context, on a GPU or on the CPU, a batch per pass.

OpenGL (moderngl, with an EGL context and no window) rasterizes, for every
(supersampled) pixel centre of a view, the id of the nearest face: what
embree's ray through that centre hits (where textures or vertex colours
need the point hit, the shading intersects that ray with that face). The
mesh is drawn indexed, so each vertex is transformed once per view, and
only face ids are read back. All the views of a render call are drawn in
one instanced pass (more where the framebuffer cannot hold them):
each view's screen window (`semkit.render.shading.screen_window`) gets a
tile of one framebuffer, each instance's projection (read from a float
texture by its instance id) moves the window into its tile, and clip planes
keep it there. The tiles are read back once per pass and shaded in torch
(`semkit.render.batch_shading`, the same shading as the embree backend's
`semkit.render.shading`) on the device where the images end, so the two
backends draw the same shades, materials, textures, coincident faces,
supersampling and backgrounds. Faces with alpha masks are drawn by a second
program that discards the fragments of their holes. The driver decides
where rasterization runs: NVIDIA's EGL on a GPU, Mesa's llvmpipe on the CPU
(which is how CI tests it). Meshes are uploaded once (kept while they live).

One GL context serves the whole process; a lock lets one thread at a time
use it, and it is made current in that thread for the call.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from functools import lru_cache

import numpy as np
import torch

from ..scene import Mesh
from ..validation import check_count
from .batch_shading import Tiles, shade_batch
from .camera import Views
from .gl_calls import gl_calls
from .settings import RenderSettings
from .shading import screen_window

#: The environment variable naming the EGL device (its index) the gl backend draws on; unset: the driver's first.
GL_DEVICE = "SEMKIT_GL_DEVICE"
#: Mesa's CPU rasterizers, as their GL_RENDERER strings begin.
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast")

#: Every view of a draw is one instance: ``place`` reads its projection (texels 0-3 of row gl_InstanceID of
#: ``views``: the matrix's columns, which also move the view's cell of the image into its tile, top row first) and
#: its tile (texel 4: x0, x1, y0, y1 in clip space over w), and clips to the tile, so no triangle reaches a
#: neighbouring tile. A sample's id is 1 + view * n_faces + face (0: nothing drawn): the row of the shading's table.
_PLACE = """
uniform sampler2D views;
uniform int n_faces;
out float gl_ClipDistance[4];
flat out int first_id;
vec4 place(vec3 position) {
    int row = gl_InstanceID;
    first_id = 1 + row * n_faces;
    mat4 projection = mat4(texelFetch(views, ivec2(0, row), 0), texelFetch(views, ivec2(1, row), 0),
                           texelFetch(views, ivec2(2, row), 0), texelFetch(views, ivec2(3, row), 0));
    vec4 tile = texelFetch(views, ivec2(4, row), 0);
    vec4 p = projection * vec4(position, 1.0);
    gl_ClipDistance[0] = p.x - tile.x * p.w;
    gl_ClipDistance[1] = tile.y * p.w - p.x;
    gl_ClipDistance[2] = p.y - tile.z * p.w;
    gl_ClipDistance[3] = tile.w * p.w - p.y;
    return p;
}
"""
_VERTEX = """
#version 330
in vec3 position;
""" + _PLACE + """
void main() {
    gl_Position = place(position);
}
"""
_FRAGMENT = """
#version 330
flat in int first_id;
layout(location = 0) out int face;
void main() {
    face = first_id + gl_PrimitiveID;  // the primitive id starts again at 0 in every instance
}
"""

#: Faces with alpha masks: the same output, from a face index attribute, with the texels below the cutoff
#: discarded (bilinear alpha with the sampler's wrap, texel for texel as [`semkit.scene.sample_texture`][semkit.scene.sample_texture]).
_MASKED_VERTEX = """
#version 330
in vec3 position;
in vec2 texcoord;
in float face_cutoff;
in int face_index;
out vec2 uv;
flat out float cutoff;
flat out int face_id;
""" + _PLACE + """
void main() {
    gl_Position = place(position);
    uv = texcoord;
    cutoff = face_cutoff;
    face_id = face_index;
}
"""
_MASKED_FRAGMENT = """
#version 330
uniform sampler2D alpha_map;
uniform ivec2 wrap;  // per axis: 0 repeat, 1 clamp, 2 mirror
in vec2 uv;
flat in float cutoff;
flat in int face_id;
flat in int first_id;
layout(location = 0) out int face;
int fold(int i, int n, int mode) {
    if (mode == 1) return clamp(i, 0, n - 1);
    int period = mode == 2 ? 2 * n : n;
    int m = i - period * int(floor(float(i) / float(period)));
    return m >= n ? 2 * n - 1 - m : m;
}
float texel(int x, int y, ivec2 size) {
    return texelFetch(alpha_map, ivec2(fold(x, size.x, wrap.x), fold(y, size.y, wrap.y)), 0).r;
}
void main() {
    ivec2 size = textureSize(alpha_map, 0);
    float x = uv.x * float(size.x) - 0.5;
    float y = (1.0 - uv.y) * float(size.y) - 0.5;
    int x0 = int(floor(x));
    int y0 = int(floor(y));
    float fx = x - floor(x);
    float fy = y - floor(y);
    float top = texel(x0, y0, size) * (1.0 - fx) + texel(x0 + 1, y0, size) * fx;
    float bottom = texel(x0, y0 + 1, size) * (1.0 - fx) + texel(x0 + 1, y0 + 1, size) * fx;
    if (top * (1.0 - fy) + bottom * fy < cutoff) discard;
    face = first_id + face_id;
}
"""
_WRAP_CODES = {"repeat": 0, "clamp": 1, "mirror": 2}
_GL_CLIP_DISTANCE0 = 0x3000


class _Context:
    """The process's GL context, its shader programs, one framebuffer (grown as draws need) and vertex arrays by mesh."""

    def __init__(self) -> None:
        import moderngl

        _load_triton_first()
        device = os.environ.get(GL_DEVICE)  # a study's worker pinned to one GPU draws on it (semkit.studies.devices)
        self.gl = moderngl.create_context(standalone=True, backend="egl",
                                          **({} if device is None else {"device_index": int(device)}))
        self.gl.gc_mode = "context_gc"  # objects of dropped meshes are released at the next render
        self.lock = threading.Lock()
        self.renderer = str(self.gl.info["GL_RENDERER"])
        self.max_size = min(int(self.gl.info["GL_MAX_RENDERBUFFER_SIZE"]), *map(int, self.gl.info["GL_MAX_VIEWPORT_DIMS"]))
        self.max_views = int(self.gl.info["GL_MAX_TEXTURE_SIZE"])  # rows of the views texture
        with self.gl:
            self.gl.enable(moderngl.DEPTH_TEST)  # the nearest fragment wins
            for plane in range(4):
                self.gl.enable_direct(_GL_CLIP_DISTANCE0 + plane)
            self.program = self.gl.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
            self.masked_program = self.gl.program(vertex_shader=_MASKED_VERTEX, fragment_shader=_MASKED_FRAGMENT)
            for program in (self.program, self.masked_program):
                program["views"].value = 1  # the views texture's unit; alpha masks use unit 0
        self.fbo = None
        self.arrays: "weakref.WeakKeyDictionary[Mesh, dict]" = weakref.WeakKeyDictionary()
        self.masked_arrays: "weakref.WeakKeyDictionary[Mesh, list]" = weakref.WeakKeyDictionary()

    def framebuffer(self, width: int, height: int):
        """A framebuffer of at least width x height: face ids + 1 (int32) and depth.

        One is kept and replaced by a larger one when a draw needs more (sides rounded up to 1024 samples).
        """
        if self.fbo is None or self.fbo.size[0] < width or self.fbo.size[1] < height:
            old = (0, 0) if self.fbo is None else self.fbo.size
            size = tuple(min(max(-(-need // 1024) * 1024, have), self.max_size)
                         for need, have in zip((width, height), old))
            self.fbo = None
            self.gl.gc()  # the smaller one goes (in context_gc mode, objects are released here once unreferenced)
            self.fbo = self.gl.framebuffer([self.gl.renderbuffer(size, 1, dtype="i4")], self.gl.depth_renderbuffer(size))
        return self.fbo

    def vertex_array(self, mesh: Mesh, masked: np.ndarray | None = None):
        """The mesh's vertices and faces, indexed, so that a fragment's primitive id is its face index.

        Faces marked in ``masked`` [F] are left out (collapsed to one corner, so ids keep their places):
        `masked_vertex_arrays` draws them.
        """
        arrays = self.arrays.setdefault(mesh, {})  # with and without the masked faces
        array = arrays.get(masked is not None)
        if array is None:
            faces = mesh.faces.astype(np.int32)
            if masked is not None:
                faces[masked] = faces[masked, :1]
            vertices = self.gl.buffer(np.ascontiguousarray(mesh.vertices, np.float32).tobytes())
            array = arrays[masked is not None] = self.gl.vertex_array(
                self.program, [(vertices, "3f", "position")], index_buffer=self.gl.buffer(faces.tobytes()), index_element_size=4)
        return array

    def masked_vertex_arrays(self, mesh: Mesh, masked: np.ndarray) -> list:
        """(alpha texture, wrap codes, vertex array) of the masked faces [F] of each texture."""
        groups = self.masked_arrays.get(mesh)
        if groups is None:
            m = mesh.materials
            groups = self.masked_arrays[mesh] = []
            for t in np.unique(m.texture[masked]):
                faces = np.nonzero(masked & (m.texture == t))[0]
                corners = np.zeros((len(faces), 3), [("p", "f4", 3), ("uv", "f4", 2), ("cut", "f4"), ("face", "i4")])
                corners["p"], corners["uv"] = mesh.triangles[faces], m.uv[faces]
                corners["cut"], corners["face"] = m.cutoff[faces][:, None], faces[:, None]
                buffer = self.gl.buffer(corners.tobytes())
                array = self.gl.vertex_array(self.masked_program, [
                    (buffer, "3f 2f 1f 1i", "position", "texcoord", "face_cutoff", "face_index")
                ])
                image = m.images[t]
                alpha = np.ascontiguousarray(image[..., 3] if image.shape[2] == 4 else np.ones(image.shape[:2]), "f4")
                texture = self.gl.texture((alpha.shape[1], alpha.shape[0]), 1, alpha.tobytes(), dtype="f4")
                groups.append((texture, tuple(_WRAP_CODES[w] for w in m.wrap[t]), array))
        return groups


def _load_triton_first() -> None:
    """Load triton's library (torch's compiler, where installed) before Mesa's llvmpipe loads its LLVM.

    Both carry LLVM; measured here (Mesa 22.3, triton 3.8), importing triton
    after an llvmpipe context exists crashes the process (torch.export and
    the ONNX export import it), while the other order works.
    """
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        import triton._C.libtriton  # noqa: F401


_contexts: dict[int, _Context] = {}  # by process id: a context does not survive a fork
_contexts_lock = threading.Lock()


def context() -> _Context:
    """The process's GL context (created on first use); raises when no EGL driver or moderngl is there."""
    with _contexts_lock:
        ctx = _contexts.get(os.getpid())
        if ctx is None:
            ctx = _contexts[os.getpid()] = _Context()
        return ctx


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why the gl backend cannot run here (a sentence with the fix), or None when it can."""
    try:
        import moderngl  # noqa: F401
    except ImportError:
        return "the gl backend needs moderngl: pip install 'semkit[gl]'"
    try:
        context()
    except Exception as e:  # glcontext raises plain Exceptions for a missing library or display
        return (
            f"the gl backend found no headless OpenGL (EGL) driver ({e}); on Debian/Ubuntu install "
            "libegl1 libegl-mesa0 libgl1-mesa-dri (Mesa, on the CPU) or use a machine with NVIDIA's driver"
        )
    return None


class GLBackend:
    """OpenGL rasterization of whole batches in the process's EGL context, shading in torch on ``device``.

    ``max_framebuffer`` (default: the driver's limit, at most `MAX_FRAMEBUFFER`) bounds the side of the tiled
    framebuffer, in samples: a batch whose tiles do not fit is drawn in several passes.
    """

    differentiable = False

    def __init__(self, settings: RenderSettings, max_framebuffer: int | None = None) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise ImportError(reason)
        self.settings = settings
        self._context = context()
        limit = min(self._context.max_size, MAX_FRAMEBUFFER)
        self.max_framebuffer = limit if max_framebuffer is None else min(check_count(max_framebuffer, "max_framebuffer"), limit)
        raster = settings.image_size * settings.supersample
        if raster > self.max_framebuffer:
            raise ValueError(
                f"the gl backend rasterizes at most {self.max_framebuffer} px here ({self._context.renderer}), "
                f"but image_size x supersample is {raster}; lower one of them or use the embree backend"
            )
        on_gpu = torch.cuda.is_available() and not self._context.renderer.lower().startswith(SOFTWARE_RENDERERS)
        #: Where the images are shaded and returned: the current CUDA device when OpenGL draws on a GPU, else the CPU.
        self.device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
        self._background = torch.from_numpy(settings.background_array()).permute(1, 2, 0).reshape(-1, 3)

    def options(self) -> dict:
        return {"max_framebuffer": self.max_framebuffer}

    def close(self) -> None:
        """Nothing to stop: the GL context and the per-mesh uploads live as long as the process and the mesh."""

    def render(self, mesh: Mesh, views: Views) -> torch.Tensor:
        s = self.settings
        size, k = s.image_size, s.supersample
        views = views.detach()
        eyes, axes = views.eye.numpy().astype(np.float64), views.axes.numpy().astype(np.float64)
        out = self._background.to(self.device).repeat(len(views), 1)  # [B * H * W, 3], channels last
        placed = []  # (view, window, projection) of the views with something in front of the camera
        for b, matrix in enumerate(_projections(mesh.vertices, eyes, axes, s.fov)):
            window = None if matrix is None else screen_window(mesh.vertices, eyes[b], axes[b], size, k, s.fov)
            if window is not None:
                placed.append((b, window, matrix))
        cameras = tuple(t.to(self.device, torch.float32)
                      for t in (views.eye, views.axes, views.light, views.ambient, views.light_intensity))
        if placed:
            cell = tuple(max(w[axis].stop - w[axis].start for _, w, _ in placed) for axis in (0, 1))
            fit = (self.max_framebuffer // (cell[0] * k)) * (self.max_framebuffer // (cell[1] * k))
            per_draw = max(1, min(fit, self._context.max_views, MAX_SHADES // max(mesh.n_faces, 1)))
            for start in range(0, len(placed), per_draw):
                shade_batch(s, mesh, out, *self._draw(mesh, placed[start:start + per_draw], cameras))
        return out.view(len(views), size, size, 3).permute(0, 3, 1, 2).contiguous()

    def _draw(self, mesh: Mesh, placed: list, cameras: tuple) -> tuple:
        """Rasterize the views ``placed`` in one pass, each into a tile of a grid, and read the tiles back once:
        (face ids, their Tiles, their rows of ``cameras``: eye, axes, light, ambient, intensity) for `shade_batch`.
        A tile holds the same cell of each view's image: its screen window, grown to the largest window of the draw
        (moved inward at the image's edges)."""
        s = self.settings
        k, size = s.supersample, s.image_size
        materials = mesh.materials if s.materials else None
        masked = materials.masked if materials is not None else None
        V = len(placed)
        th, tw = (max(w[axis].stop - w[axis].start for _, w, _ in placed) for axis in (0, 1))  # the cell, in pixels
        columns = min(V, self.max_framebuffer // (tw * k))
        rows = -(-V // columns)
        width, height = columns * tw * k, rows * th * k
        corners = np.array([(min(w[0].start, size - th), min(w[1].start, size - tw)) for _, w, _ in placed])
        ctx = self._context
        with ctx.lock, ctx.gl:
            ctx.gl.gc()
            fbo = ctx.framebuffer(width, height)
            table = np.empty((V, 5, 4), np.float32)
            for i, (_, _, matrix) in enumerate(placed):
                origin = ((i % columns) * tw * k, (i // columns) * th * k)
                table[i] = _tile(matrix, corners[i] * k, origin, (th * k, tw * k), size * k, fbo.size)
            texture_of_views = ctx.gl.texture((5, V), 4, table.tobytes(), dtype="f4")
            texture_of_views.use(location=1)
            arrays = [(None, None, ctx.vertex_array(mesh, masked))]
            arrays += ctx.masked_vertex_arrays(mesh, masked) if masked is not None else []
            for program in (ctx.program, ctx.masked_program):
                program["n_faces"].value = mesh.n_faces
            fbo.use()
            fbo.clear(depth=1.0, viewport=(0, 0, width, height))
            calls = gl_calls()  # the slow calls without the GIL, where the EGL loader can be opened
            for texture, wrap, array in arrays:  # the unmasked faces, then the masked faces of each texture
                if texture is not None:
                    texture.use(location=0)
                    ctx.masked_program["alpha_map"].value = 0
                    ctx.masked_program["wrap"].value = wrap
                if calls is None:
                    array.render(instances=V)
                else:
                    calls.draw(ctx.program if texture is None else ctx.masked_program, array, V)
            ids = np.empty((height, width), np.int32)
            if calls is None:
                fbo.read_into(ids, viewport=(0, 0, width, height), components=1, attachment=0, dtype="i4")
            else:
                calls.read_ids(fbo, ids)

        image = torch.tensor([p[0] for p in placed], device=self.device)
        tiles = Tiles(columns, th, tw, image, torch.from_numpy(corners).to(self.device))
        return torch.from_numpy(ids).to(self.device), tiles, tuple(t.index_select(0, image) for t in cameras)


#: The largest side of the tiled framebuffer, in samples (where the driver allows as much).
MAX_FRAMEBUFFER = 8192
#: At most this many (view, face) pairs per draw: the shading's table holds a shade (and a colour) for each.
MAX_SHADES = 2**25


def _projections(vertices: np.ndarray, eyes: np.ndarray, axes: np.ndarray, fov: float) -> list[np.ndarray | None]:
    """Each view's GL projection [4, 4] (depth range fitted to the mesh), or None when the mesh is behind the camera."""
    depth = vertices @ axes[:, 2].T - np.einsum("bj,bj->b", eyes, axes[:, 2])  # [V, B]
    f = 1.0 / math.tan(math.radians(fov) / 2.0)
    out = []
    for b in range(len(eyes)):
        far = float(depth[:, b].max())
        if far <= 0:
            out.append(None)
            continue
        near = max(float(depth[:, b].min()), 1e-4 * far) * (1 - 1e-3)
        far *= 1 + 1e-3
        # GL's camera looks down -z; its rows are NMR's camera axes with z negated.
        view = np.eye(4)
        view[:3, :3] = axes[b] * np.array([1.0, 1.0, -1.0])[:, None]
        view[:3, 3] = -view[:3, :3] @ eyes[b]
        projection = np.zeros((4, 4))
        projection[0, 0] = projection[1, 1] = f
        projection[2, 2:] = (far + near) / (near - far), 2.0 * far * near / (near - far)
        projection[3, 2] = -1.0
        out.append(projection @ view)
    return out


def _tile(matrix: np.ndarray, corner: np.ndarray, origin: tuple, size: tuple, n: int, framebuffer: tuple) -> np.ndarray:
    """A view's row of the views texture [5, 4]: its projection moved so that the cell of the n x n raster whose
    top-left sample is ``corner`` (row, column) lands, top row first, at ``origin`` (x, y) of the framebuffer; then
    its tile of ``size`` (rows, columns) samples in clip space over w."""
    moved = matrix.copy()
    W, H = framebuffer
    # Samples stay on the same grid: x -> x n / W + (n + 2 (ox - column)) / W - 1, y -> -y n / H + (n + 2 (oy - row)) / H - 1.
    moved[0] = matrix[0] * n / W + matrix[3] * ((n + 2.0 * (origin[0] - corner[1])) / W - 1.0)
    moved[1] = -matrix[1] * n / H + matrix[3] * ((n + 2.0 * (origin[1] - corner[0])) / H - 1.0)
    x0, y0 = 2.0 * origin[0] / W - 1.0, 2.0 * origin[1] / H - 1.0
    tile = [x0, x0 + 2.0 * size[1] / W, y0, y0 + 2.0 * size[0] / H]
    return np.concatenate([moved.T, [tile]]).astype(np.float32)
