"""The OpenGL backend: rasterization through a headless EGL context, on a GPU or on the CPU, a batch per pass.

OpenGL (moderngl, with an EGL context and no window) rasterizes, for every
(supersampled) pixel centre of a view, the id of the nearest face and the
perspective-correct barycentric weights of the point it shows: what
embree's ray through that centre hits. All the views of a render call are
drawn in one instanced pass (more where the framebuffer cannot hold them):
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
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..scene import Mesh
from ..validation import check_count
from .batch_shading import shade_batch
from .camera import Views
from .settings import RenderSettings
from .shading import screen_window

#: Mesa's CPU rasterizers, as their GL_RENDERER strings begin.
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast")

#: Every view of a draw is one instance: ``place`` reads its projection (texels 0-3 of row gl_InstanceID of
#: ``views``: the matrix's columns, which also move the view's screen window into its tile) and its tile (texel 4:
#: x0, x1, y0, y1 in clip space over w), and clips to the tile, so no triangle reaches a neighbouring tile.
_PLACE = """
uniform sampler2D views;
out float gl_ClipDistance[4];
vec4 place(vec3 position) {
    int row = gl_InstanceID;
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
out vec3 bary;
""" + _PLACE + """
void main() {
    gl_Position = place(position);
    int corner = gl_VertexID % 3;
    bary = vec3(corner == 0, corner == 1, corner == 2);
}
"""
_FRAGMENT = """
#version 330
in vec3 bary;
layout(location = 0) out int face;
layout(location = 1) out vec2 weights;
void main() {
    face = gl_PrimitiveID + 1;  // 0 where nothing is drawn; the primitive id starts again at 0 in every instance
    weights = bary.yz;
}
"""

#: Faces with alpha masks: the same outputs, from a face index attribute, with the texels below the cutoff
#: discarded (bilinear alpha with the sampler's wrap, texel for texel as [`semkit.scene.sample_texture`][semkit.scene.sample_texture]).
_MASKED_VERTEX = """
#version 330
in vec3 position;
in vec2 texcoord;
in float face_cutoff;
in int face_index;
out vec3 bary;
out vec2 uv;
flat out float cutoff;
flat out int face_id;
""" + _PLACE + """
void main() {
    gl_Position = place(position);
    int corner = gl_VertexID % 3;
    bary = vec3(corner == 0, corner == 1, corner == 2);
    uv = texcoord;
    cutoff = face_cutoff;
    face_id = face_index;
}
"""
_MASKED_FRAGMENT = """
#version 330
uniform sampler2D alpha_map;
uniform ivec2 wrap;  // per axis: 0 repeat, 1 clamp, 2 mirror
in vec3 bary;
in vec2 uv;
flat in float cutoff;
flat in int face_id;
layout(location = 0) out int face;
layout(location = 1) out vec2 weights;
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
    face = face_id + 1;
    weights = bary.yz;
}
"""
_WRAP_CODES = {"repeat": 0, "clamp": 1, "mirror": 2}
_GL_CLIP_DISTANCE0 = 0x3000


class _Context:
    """The process's GL context, its shader programs, one framebuffer (grown as draws need) and vertex arrays by mesh."""

    def __init__(self) -> None:
        import moderngl

        _load_triton_first()
        self.gl = moderngl.create_context(standalone=True, backend="egl")
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
        """A framebuffer of at least width x height: face ids + 1 (int32), barycentric weights of corners 1 and 2, depth.

        One is kept and replaced by a larger one when a draw needs more (sides rounded up to 1024 samples).
        """
        if self.fbo is None or self.fbo.size[0] < width or self.fbo.size[1] < height:
            old = (0, 0) if self.fbo is None else self.fbo.size
            size = tuple(min(max(-(-need // 1024) * 1024, have), self.max_size)
                         for need, have in zip((width, height), old))
            self.fbo = None
            self.gl.gc()  # the smaller one goes (in context_gc mode, objects are released here once unreferenced)
            colors = [self.gl.renderbuffer(size, 1, dtype="i4"), self.gl.renderbuffer(size, 2, dtype="f4")]
            self.fbo = self.gl.framebuffer(colors, self.gl.depth_renderbuffer(size))
        return self.fbo

    def vertex_array(self, mesh: Mesh, masked: np.ndarray | None = None):
        """The mesh's triangles as three vertices each, so that a fragment's primitive id is its face index.

        Faces marked in ``masked`` [F] are left out (collapsed to a point): `masked_arrays` draws them.
        """
        arrays = self.arrays.setdefault(mesh, {})  # with and without the masked faces
        array = arrays.get(masked is not None)
        if array is None:
            triangles = mesh.triangles.copy()
            if masked is not None:
                triangles[masked] = 0.0
            buffer = self.gl.buffer(np.ascontiguousarray(triangles.reshape(-1, 3)).tobytes())
            array = arrays[masked is not None] = self.gl.vertex_array(self.program, [(buffer, "3f", "position")])
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
        self.device = torch.device("cuda") if on_gpu else torch.device("cpu")
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
        B = len(views)
        out = self._background.to(self.device).repeat(B, 1)  # [B * H * W, 3], channels last
        placed = []  # (view, window, projection) of the views with something in front of the camera
        for b, matrix in enumerate(_projections(mesh.vertices, eyes, axes, s.fov)):
            window = None if matrix is None else screen_window(mesh.vertices, eyes[b], axes[b], size, k, s.fov)
            if window is not None:
                placed.append((b, window, matrix))
        light = (views.eye, views.light, views.ambient, views.light_intensity)
        light = tuple(t.to(self.device, torch.float32) for t in light)
        for draw in pack([(w[0].stop - w[0].start, w[1].stop - w[1].start) for _, w, _ in placed], k,
                         self.max_framebuffer, self._context.max_views):
            self._draw(mesh, [placed[i] for i in draw.views], draw, out, light)
        return out.view(B, size, size, 3).permute(0, 3, 1, 2).contiguous()

    def _draw(self, mesh: Mesh, placed: list, draw: "Draw", out: torch.Tensor, light: tuple) -> None:
        """Rasterize the views ``placed`` into their tiles in one pass, read the tiles back once and shade them into ``out``."""
        s = self.settings
        k, n = s.supersample, s.image_size * s.supersample
        materials = mesh.materials if s.materials else None
        textured = materials is not None and materials.interpolated
        masked = materials.masked if materials is not None else None
        ctx = self._context
        width, height = draw.width, draw.height
        with ctx.lock, ctx.gl:
            ctx.gl.gc()
            fbo = ctx.framebuffer(width, height)
            data = np.empty((len(placed), 5, 4), np.float32)
            for i, (_, (rows, cols), matrix) in enumerate(placed):
                ox, oy = draw.origins[i]
                w, h = (cols.stop - cols.start) * k, (rows.stop - rows.start) * k
                data[i] = _tile(matrix, (cols.start * k, n - rows.stop * k), (ox, oy), (w, h), n, fbo.size)
            table = ctx.gl.texture((5, len(placed)), 4, data.tobytes(), dtype="f4")
            table.use(location=1)
            arrays = [(None, None, ctx.vertex_array(mesh, masked))]
            arrays += ctx.masked_vertex_arrays(mesh, masked) if masked is not None else []
            fbo.use()
            fbo.clear(depth=1.0, viewport=(0, 0, width, height))
            for texture, wrap, array in arrays:  # the unmasked faces, then the masked faces of each texture
                if texture is not None:
                    texture.use(location=0)
                    ctx.masked_program["alpha_map"].value = 0
                    ctx.masked_program["wrap"].value = wrap
                array.render(instances=len(placed))
            ids = np.empty((height, width), np.int32)
            fbo.read_into(ids, viewport=(0, 0, width, height), components=1, attachment=0, dtype="i4")
            if textured:
                weights = np.empty((height, width, 2), np.float32)
                fbo.read_into(weights, viewport=(0, 0, width, height), components=2, attachment=1, dtype="f4")
        view, pixel, sample = _layout(placed, draw, k, s.image_size, width, self.device)
        hit = torch.from_numpy(ids).to(self.device).view(-1)[sample].long() - 1
        bary = None
        if textured:
            weights = torch.from_numpy(weights).to(self.device).view(-1, 2)[sample]
            bary = (weights[:, 0], weights[:, 1])
        b = torch.tensor([p[0] for p in placed], device=self.device)
        shade_batch(s, mesh, out, hit, bary, view, pixel, tuple(t[b] for t in light))


#: The largest side of the tiled framebuffer, in samples (where the driver allows as much): 8192 x 8192 holds
#: at least 334 views at 224 px with 2x supersampling, whole, and about four times as many at the paper's distance.
MAX_FRAMEBUFFER = 8192


@dataclass
class Draw:
    """One pass: the views (indices into the list given to `pack`), their tiles' lower-left corners and the
    rectangle (from the origin) that the tiles fill, in samples."""

    views: list[int]
    origins: list[tuple[int, int]]
    width: int
    height: int


def pack(windows: list[tuple[int, int]], supersample: int, side: int, max_views: int) -> list[Draw]:
    """Place the tiles of screen windows ((rows, cols) in pixels) on shelves of a framebuffer of ``side`` x ``side``
    samples, tallest first; the tiles that do not fit (or past ``max_views``) go to further draws."""
    draws: list[Draw] = []
    order = sorted(range(len(windows)), key=lambda i: -windows[i][0])
    x = y = shelf = 0
    for i in order:
        h, w = windows[i][0] * supersample, windows[i][1] * supersample
        if draws and x + w > side:  # the next shelf
            x, y, shelf = 0, y + shelf, 0
        if not draws or y + h > side or len(draws[-1].views) == max_views:
            draws.append(Draw([], [], 0, 0))
            x = y = shelf = 0
        d = draws[-1]
        d.views.append(i)
        d.origins.append((x, y))
        x, shelf = x + w, max(shelf, h)
        d.width, d.height = max(d.width, x), max(d.height, y + shelf)
    return draws


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


def _tile(matrix: np.ndarray, corner: tuple, origin: tuple, size: tuple, n: int, framebuffer: tuple) -> np.ndarray:
    """A view's row of the views texture [5, 4]: its projection moved so that the window whose lower-left sample is
    ``corner`` (of the n x n raster) lands at ``origin`` of the framebuffer, then its tile in clip space over w."""
    moved = matrix.copy()
    tile = np.empty(4)
    for axis in range(2):  # NDC a -> a n / N + (n + 2 (origin - corner)) / N - 1 keeps samples on the same grid
        N = framebuffer[axis]
        moved[axis] = matrix[axis] * n / N + matrix[3] * ((n + 2.0 * (origin[axis] - corner[axis])) / N - 1.0)
        tile[2 * axis: 2 * axis + 2] = 2.0 * origin[axis] / N - 1.0, 2.0 * (origin[axis] + size[axis]) / N - 1.0
    return np.concatenate([moved.T, tile[None]]).astype(np.float32)


def _layout(placed: list, draw: Draw, k: int, size: int, width: int, device: torch.device):
    """(view [P], pixel [P], sample [P * k * k]) of the windows' pixels: the row of ``placed``, the row of the
    output [B * size * size], and each subsample's place in the read-back tiles [height * width] (bottom row
    first), pixel-major with each pixel's k x k subsamples contiguous, as `semkit.render.batch_shading` reads them."""
    rows = torch.tensor([[p[1][0].start, p[1][0].stop - p[1][0].start, p[1][1].start, p[1][1].stop - p[1][1].start,
                          p[0], *o] for p, o in zip(placed, draw.origins)], device=device)
    r0, h, c0, w, b, ox, oy = rows.T
    counts = h * w
    view = torch.repeat_interleave(torch.arange(len(placed), device=device), counts)
    local = torch.arange(len(view), device=device) - (torch.cumsum(counts, 0) - counts)[view]
    r, c = local // w[view], local % w[view]
    pixel = b[view] * size * size + (r0[view] + r) * size + c0[view] + c
    top = oy[view] + h[view] * k - 1 - r * k  # the read-back row of the pixel's first subsample (rows grow upward)
    sub = torch.arange(k, device=device)
    sample = (top[:, None, None] - sub[None, :, None]) * width + (ox[view] + c * k)[:, None, None] + sub[None, None, :]
    return view, pixel, sample.reshape(-1)
