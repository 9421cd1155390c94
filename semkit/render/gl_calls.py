"""The GL calls of a draw that take time, made through ctypes so that other threads run meanwhile.

moderngl holds Python's GIL for the whole of a call, and the calls that
draw and read back are where the driver works: llvmpipe transforms and bins
the triangles in ``glDrawElementsInstanced`` and rasterizes in
``glReadPixels``; a GPU's driver waits for the GPU in ``glReadPixels``.
Called through ctypes, they let go of the GIL, so other threads run while
a batch draws: a pipelined [`SemanticFunction`][semkit.SemanticFunction]
classifies one batch while the next renders, and a notebook's widgets
answer. The functions come from the EGL loader that moderngl's
context was made with (``eglGetProcAddress``) and act on the current context.
"""

from __future__ import annotations

import ctypes
from ctypes import c_char_p, c_int, c_uint, c_void_p
from functools import lru_cache

import numpy as np

GL_TRIANGLES = 0x0004
GL_UNSIGNED_INT = 0x1405
GL_INT = 0x1404
GL_RED_INTEGER = 0x8D94
GL_READ_FRAMEBUFFER = 0x8CA8
GL_COLOR_ATTACHMENT0 = 0x8CE0
GL_PACK_ALIGNMENT = 0x0D05


class GLCalls:
    """glUseProgram, glBindVertexArray, the instanced draws, and glReadPixels of a framebuffer's first colour."""

    def __init__(self, egl: ctypes.CDLL) -> None:
        get = egl.eglGetProcAddress
        get.restype, get.argtypes = c_void_p, [c_char_p]

        def function(name: str, *arguments):
            address = get(name.encode())
            if not address:
                raise OSError(f"the EGL loader has no {name}")
            return ctypes.CFUNCTYPE(None, *arguments)(address)  # a CFUNCTYPE call releases the GIL

        self.use_program = function("glUseProgram", c_uint)
        self.bind_vertex_array = function("glBindVertexArray", c_uint)
        self.draw_elements = function("glDrawElementsInstanced", c_uint, c_int, c_uint, c_void_p, c_int)
        self.draw_arrays = function("glDrawArraysInstanced", c_uint, c_int, c_int, c_int)
        self.bind_framebuffer = function("glBindFramebuffer", c_uint, c_uint)
        self.read_buffer = function("glReadBuffer", c_uint)
        self.pixel_store = function("glPixelStorei", c_uint, c_int)
        self.read_pixels = function("glReadPixels", c_int, c_int, c_int, c_int, c_uint, c_uint, c_void_p)

    def draw(self, program, array, instances: int) -> None:
        """What ``array.render(instances=instances)`` does for triangles: indexed where the array has indices."""
        self.use_program(program.glo)
        self.bind_vertex_array(array.glo)
        if array.index_buffer is not None:
            self.draw_elements(GL_TRIANGLES, array.vertices, GL_UNSIGNED_INT, None, instances)
        else:
            self.draw_arrays(GL_TRIANGLES, 0, array.vertices, instances)

    def read_ids(self, framebuffer, out: np.ndarray) -> None:
        """The int32 ids of the framebuffer's first colour attachment into ``out`` [height, width], from (0, 0)."""
        assert out.dtype == np.int32 and out.flags.c_contiguous
        self.bind_framebuffer(GL_READ_FRAMEBUFFER, framebuffer.glo)
        self.read_buffer(GL_COLOR_ATTACHMENT0)
        self.pixel_store(GL_PACK_ALIGNMENT, 1)
        self.read_pixels(0, 0, out.shape[1], out.shape[0], GL_RED_INTEGER, GL_INT, out.ctypes.data)


@lru_cache(maxsize=1)
def gl_calls() -> GLCalls | None:
    """The calls through the process's EGL loader, or None where it cannot be opened (moderngl's calls serve then)."""
    for name in ("libEGL.so.1", "libEGL.so"):
        try:
            return GLCalls(ctypes.CDLL(name))
        except OSError:
            continue
    return None
