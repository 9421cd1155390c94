"""Why the gl backend uses OpenGL: candidates for the visibility step, timed in one run on this machine.

    python benchmarks/rasterizer_choice.py          # prints views/s of each candidate that is installed

The step a new backend adds is finding, for every sample of a view, the
face it sees (the shading after it is shared, semkit/render/shading.py). Each
candidate does that for whole 448 x 448 frames (224 px at 2x supersampling,
no screen window) of the ShapeNet bench (21,952 faces), over the same
random views: embree's ray casting (semkit's CPU backend, here in one
thread), OpenGL through EGL (the gl backend; Mesa's llvmpipe on a CPU,
which uses every core) and NVIDIA Warp's BVH ray casting (its CPU kernels
run in one thread) (``pip install warp-lang``, not a dependency of semkit: its wheel is
149 MB, more than the 64 MiB that can travel to a lent GPU machine).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

import semkit  # noqa: E402
from semkit.render import embree as _embree  # noqa: E402
from semkit.render.camera import Views  # noqa: E402
from timing import median_seconds, views  # noqa: E402

SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
MESH = SHAPENET / "bench" / "50cdaa9e33fc853ecb2a965e75be701c" / "models" / "model_normalized.obj"
SIZE, K, N_VIEWS = 224, 2, 16


def embree_visibility(mesh, eyes, axes):
    scene = _embree.EmbreeBackend(semkit.Renderer(image_size=SIZE).settings).scene(mesh)
    x, y = _embree.image_plane(SIZE, K, 60.0)

    def run():
        for eye, ax in zip(eyes, axes):
            dirs = (x[:, None] * ax[0] + y[:, None] * ax[1] + ax[2]).astype(np.float32)
            scene.run(np.broadcast_to(eye.astype(np.float32), dirs.shape).copy(), dirs)

    return run


def gl_visibility(mesh, eyes, axes):
    """The gl backend as it runs: every view in one instanced pass, read back once, shaded in torch (an upper bound
    on its visibility step alone, which it no longer runs view by view)."""
    renderer = semkit.Renderer("gl", SIZE, supersample=K)
    v = Views.from_inputs(views(len(eyes)), None)

    def run():
        renderer._backend.render(mesh, v)

    return run


def warp_visibility(mesh, eyes, axes):
    import warp as wp

    wp.config.quiet = True
    wp.init()
    n, t = SIZE * K, math.tan(math.radians(30.0))

    @wp.kernel
    def cast(m: wp.uint64, eye: wp.vec3, ax: wp.mat33, n: int, t: float, face: wp.array(dtype=int)):
        tid = wp.tid()
        x = (2.0 * float(tid % n) + 1.0 - float(n)) / float(n) * t
        y = -(2.0 * float(tid // n) + 1.0 - float(n)) / float(n) * t
        d = wp.normalize(wp.transpose(ax) @ wp.vec3(x, y, 1.0))
        q = wp.mesh_query_ray(m, eye, d, 100.0)
        face[tid] = wp.where(q.result, q.face, -1)

    points = wp.array(mesh.vertices.astype(np.float32), dtype=wp.vec3)
    warp_mesh = wp.Mesh(points=points, indices=wp.array(mesh.faces.astype(np.int32).ravel(), dtype=int))
    face = wp.zeros(n * n, dtype=int)

    def run():
        for eye, ax in zip(eyes, axes):
            wp.launch(cast, dim=n * n, inputs=[warp_mesh.id, wp.vec3(*eye), wp.mat33(*ax.ravel()), n, t, face])
            face.numpy()

    return run


def main() -> None:
    mesh = semkit.scene.load_mesh(MESH)
    v = Views.from_inputs(views(N_VIEWS), None)
    eyes, axes = v.eye.numpy(), v.axes.numpy()
    candidates = {"embree (ray casting, CPU)": embree_visibility, "OpenGL via EGL (the gl backend: its batch, shading included)": gl_visibility,
                  "NVIDIA Warp (BVH ray casting)": warp_visibility}
    print(f"{mesh}, {N_VIEWS} views of {SIZE * K} x {SIZE * K} samples; OpenGL: {semkit.render.gl_renderer()}")
    for name, make in candidates.items():
        try:
            run = make(mesh, eyes, axes)
        except ImportError as e:
            print(f"{name}: not installed ({e})")
            continue
        print(f"{name}: {N_VIEWS / median_seconds(run, 3):.0f} views/s", flush=True)


if __name__ == "__main__":
    main()
