"""The OpenGL backend: rasterization through a headless EGL context, on a GPU or on the CPU.

OpenGL (moderngl, with an EGL context and no window) rasterizes, for every
(supersampled) pixel centre of a view, the id of the nearest face and the
perspective-correct barycentric weights of the point it shows: what
embree's ray through that centre hits. `semkit.render.shading` (shared
with the embree backend) turns those into the image, so the two backends
draw the same shades, materials, textures, coincident faces, supersampling
and backgrounds. Faces with alpha masks are drawn by a second program that
discards the fragments of their holes. The driver decides where rasterization runs: NVIDIA's EGL
on a GPU, Mesa's llvmpipe on the CPU (which is how CI tests it).

One GL context serves the whole process; a lock lets one thread at a time
use it, and it is made current in that thread for the call. Only the
screen window of the mesh (`semkit.render.shading.screen_window`) is
cleared and read back; views are shaded in ``threads`` threads while the
next view rasterizes.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch

from ..scene import Mesh
from ..validation import check_count
from .camera import Views
from .settings import RenderSettings
from .shading import screen_window, shade, usable_cores

#: Mesa's CPU rasterizers, as their GL_RENDERER strings begin.
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast")

_VERTEX = """
#version 330
uniform mat4 projection;
in vec3 position;
out vec3 bary;
void main() {
    gl_Position = projection * vec4(position, 1.0);
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
    face = gl_PrimitiveID + 1;  // 0 where nothing is drawn
    weights = bary.yz;
}
"""

#: Faces with alpha masks: the same outputs, from a face index attribute, with the texels below the cutoff
#: discarded (bilinear alpha with the sampler's wrap, texel for texel as [`semkit.scene.sample_texture`][semkit.scene.sample_texture]).
_MASKED_VERTEX = """
#version 330
uniform mat4 projection;
in vec3 position;
in vec2 texcoord;
in float face_cutoff;
in int face_index;
out vec3 bary;
out vec2 uv;
flat out float cutoff;
flat out int face_id;
void main() {
    gl_Position = projection * vec4(position, 1.0);
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


class _Context:
    """The process's GL context, its shader program, framebuffers by size and vertex arrays by mesh."""

    def __init__(self) -> None:
        import moderngl

        _load_triton_first()
        self.gl = moderngl.create_context(standalone=True, backend="egl")
        self.gl.gc_mode = "context_gc"  # objects of dropped meshes are released at the next render
        self.lock = threading.Lock()
        self.renderer = str(self.gl.info["GL_RENDERER"])
        self.max_size = int(self.gl.info["GL_MAX_RENDERBUFFER_SIZE"])
        with self.gl:
            self.gl.enable(moderngl.DEPTH_TEST)  # the nearest fragment wins
            self.program = self.gl.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
            self.masked_program = self.gl.program(vertex_shader=_MASKED_VERTEX, fragment_shader=_MASKED_FRAGMENT)
        self.framebuffers: dict[int, object] = {}
        self.arrays: "weakref.WeakKeyDictionary[Mesh, dict]" = weakref.WeakKeyDictionary()
        self.masked_arrays: "weakref.WeakKeyDictionary[Mesh, list]" = weakref.WeakKeyDictionary()

    def framebuffer(self, n: int):
        """An n x n framebuffer: face ids + 1 (int32), barycentric weights of corners 1 and 2, depth."""
        fbo = self.framebuffers.get(n)
        if fbo is None:
            colors = [self.gl.renderbuffer((n, n), 1, dtype="i4"), self.gl.renderbuffer((n, n), 2, dtype="f4")]
            fbo = self.framebuffers[n] = self.gl.framebuffer(colors, self.gl.depth_renderbuffer((n, n)))
        return fbo

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
    """OpenGL rasterization in the process's EGL context, shading on a pool of ``threads`` threads;
    ``close()`` stops the threads."""

    differentiable = False

    def __init__(self, settings: RenderSettings, threads: int | None = None) -> None:
        if threads is not None:
            threads = check_count(threads, "threads")
        reason = unavailable_reason()
        if reason is not None:
            raise ImportError(reason)
        self.settings = settings
        self.threads = threads or usable_cores()
        self._context = context()
        raster = settings.image_size * settings.supersample
        if raster > self._context.max_size:
            raise ValueError(
                f"the gl backend rasterizes at most {self._context.max_size} px here ({self._context.renderer}), "
                f"but image_size x supersample is {raster}; lower one of them or use the embree backend"
            )
        self._background = settings.background_array()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="semkit-gl-shade")

    def options(self) -> dict:
        return {"threads": self.threads}

    def close(self) -> None:
        self._pool.shutdown()  # its threads end; a new pool starts threads only when used again
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="semkit-gl-shade")

    def render(self, mesh: Mesh, views: Views) -> torch.Tensor:
        s = self.settings
        views = views.detach()
        eyes, axes, lights = views.eye.numpy(), views.axes.numpy(), views.light.numpy()
        ambient, intensity = views.ambient.numpy(), views.light_intensity.numpy()
        materials = mesh.materials if s.materials else None
        textured = materials is not None and materials.interpolated
        masked = materials.masked if materials is not None else None
        out = np.empty((len(views), 3, s.image_size, s.image_size), np.float32)
        shading = []
        ctx = self._context
        with ctx.lock, ctx.gl:
            ctx.gl.gc()
            array, fbo = ctx.vertex_array(mesh, masked), ctx.framebuffer(s.image_size * s.supersample)
            arrays = [(None, None, array)] + (ctx.masked_vertex_arrays(mesh, masked) if masked is not None else [])
            for b in range(len(views)):
                out[b] = self._background
                window = screen_window(mesh.vertices, eyes[b], axes[b], s.image_size, s.supersample, s.fov)
                hits = None if window is None else self._rasterize(mesh, arrays, fbo, eyes[b], axes[b], window, textured)
                if hits is not None:
                    job = (s, mesh, out[b], window, *hits, eyes[b], lights[b], ambient[b], intensity[b])
                    shading.append(self._pool.submit(shade, *job))
        for job in shading:
            job.result()
        return torch.from_numpy(out)

    def _rasterize(self, mesh: Mesh, arrays: list, fbo, eye: np.ndarray, axes: np.ndarray, window, textured: bool):
        """(hit [N], (u, v) or None) of the window's samples in `semkit.render.shading`'s layout; None if nothing is in front."""
        s = self.settings
        k, n = s.supersample, s.image_size * s.supersample
        depth = np.einsum("vj,j->v", mesh.vertices - eye, axes[2])
        far = float(depth.max())
        if far <= 0:
            return None
        near = max(float(depth.min()), 1e-4 * far) * (1 - 1e-3)
        far *= 1 + 1e-3
        # GL's camera looks down -z; its rows are NMR's camera axes with z negated.
        view = np.eye(4)
        view[:3, :3] = axes * np.array([1.0, 1.0, -1.0])[:, None]
        view[:3, 3] = -view[:3, :3] @ eye
        f = 1.0 / math.tan(math.radians(s.fov) / 2.0)
        projection = np.zeros((4, 4))
        projection[0, 0] = projection[1, 1] = f
        projection[2, 2:] = (far + near) / (near - far), 2.0 * far * near / (near - far)
        projection[3, 2] = -1.0
        matrix = (projection @ view).T.astype(np.float32).tobytes()
        self._context.program["projection"].write(matrix)
        if len(arrays) > 1:
            self._context.masked_program["projection"].write(matrix)

        rows, cols = window
        # GL's rows count from the bottom; the window in samples:
        x, y = cols.start * k, n - rows.stop * k
        w, h = (cols.stop - cols.start) * k, (rows.stop - rows.start) * k
        fbo.use()
        fbo.clear(depth=1.0, viewport=(x, y, w, h))
        for texture, wrap, array in arrays:  # the unmasked faces, then the masked faces of each texture
            if texture is not None:
                texture.use(location=0)
                self._context.masked_program["alpha_map"].value = 0
                self._context.masked_program["wrap"].value = wrap
            array.render()
        ids = np.empty((h, w), np.int32)
        fbo.read_into(ids, viewport=(x, y, w, h), components=1, attachment=0, dtype="i4")
        hit = _samples(ids, k) - 1
        if not textured:
            return hit, None
        weights = np.empty((h, w, 2), np.float32)
        fbo.read_into(weights, viewport=(x, y, w, h), components=2, attachment=1, dtype="f4")
        return hit, (_samples(weights[..., 0], k), _samples(weights[..., 1], k))


def _samples(raster: np.ndarray, k: int) -> np.ndarray:
    """A window read from GL [h, w] (bottom row first) in `semkit.render.shading`'s sample order [h * w]."""
    h, w = raster.shape
    return np.ascontiguousarray(raster[::-1].reshape(h // k, k, w // k, k).transpose(0, 2, 1, 3)).ravel()
