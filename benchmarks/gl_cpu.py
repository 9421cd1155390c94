"""The gl backend on the CPU (Mesa's llvmpipe) beside embree, and beside another semkit checkout's gl.

    python benchmarks/gl_cpu.py                          # writes docs/gl_cpu.md
    python benchmarks/gl_cpu.py --against ../before      # adds that checkout's gl, timed in the same rounds
    python benchmarks/gl_cpu.py --quick --markdown x.md  # toy sizes (tested)

Every measurement runs in a fresh process with one checkout on its path (so
``--against`` can time an older semkit, e.g. ``git worktree add ../before
<commit>``); a round runs each process in turn, so a change in the machine's
load falls on all of them, and the table gives the median of the rounds.
Each process times, at 224 px with 2x supersampling on real ShapeNet
meshes, a batch of 48 random views (ms per image) and the same views one
call each (ms per image), for each look: plain (white on black), with
materials, and a textured mesh with materials.

Then, in this process, how closely gl draws what embree draws on every mesh
of the ShapeNet sample (4 random views each, white and with materials):
silhouette IoU (pixels brighter than 0.05) and mean absolute difference.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import MESH, ROOT, SHAPENET  # noqa: E402

TEXTURED = SHAPENET / "bench" / "a5856a7738262b05738e43095496b061" / "models" / "model_normalized.obj"
LOOKS = (("bench, white on black", MESH, False), ("bench, materials", MESH, True),
         ("textured bench, materials", TEXTURED, True))


def measure(backends: list[str], batch: int, repeats: int, size: int) -> dict:
    """{look: {backend: (ms per image in batches, ms per image one at a time)}} in this process."""
    import numpy as np
    import semkit

    rng = np.random.default_rng(0)
    views = {"azimuth": rng.uniform(0, 360, batch), "elevation": rng.uniform(-10, 90, batch)}
    out = {}
    for look, path, materials in LOOKS:
        mesh = semkit.load_shape(str(path))
        out[look] = {}
        for backend in backends:
            renderer = semkit.Renderer(backend, size, materials=materials)
            batched = _median(lambda: renderer.render(mesh, **views), repeats) / batch
            one = _median(lambda: [renderer.render(mesh, **{k: v[i] for k, v in views.items()}) for i in range(batch)],
                          repeats) / batch
            out[look][backend] = (1000 * batched, 1000 * one)
    return out


def _median(fn, repeats: int) -> float:
    import time

    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def agreement(meshes: list[Path], views: int, size: int) -> dict:
    """{look: (silhouette IoU [mesh, view], mean absolute difference [mesh, view])} of gl against embree."""
    import numpy as np
    import semkit

    rng = np.random.default_rng(1)
    out = {}
    for look, options in (("white on black", {}), ("materials", {"materials": True})):
        renderers = [semkit.Renderer(backend, size, **options) for backend in ("embree", "gl")]
        iou, difference = np.zeros((len(meshes), views)), np.zeros((len(meshes), views))
        for m, path in enumerate(meshes):
            mesh = semkit.load_shape(str(path))
            points = {"azimuth": rng.uniform(0, 360, views), "elevation": rng.uniform(-10, 90, views)}
            a, b = (r.render(mesh, **points).numpy() for r in renderers)
            seen_a, seen_b = a.mean(axis=1) > 0.05, b.mean(axis=1) > 0.05
            iou[m] = (seen_a & seen_b).sum((1, 2)) / np.maximum((seen_a | seen_b).sum((1, 2)), 1)
            difference[m] = np.abs(a - b).mean((1, 2, 3))
        out[look] = (iou, difference)
    return out


def run_in(tree: Path, backends: list[str], args) -> dict:
    """``measure`` in a fresh Python process that imports semkit from ``tree``."""
    code = (f"import sys, json; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(Path(__file__).parent)!r}); "
            f"import semkit, gl_cpu; assert semkit.__file__.startswith({str(tree)!r}), semkit.__file__; "
            f"print(json.dumps(gl_cpu.measure({backends!r}, {args.batch}, {args.repeats}, {args.image_size})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree)
    if done.returncode:
        sys.exit(f"the measurement in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, help="another semkit checkout whose gl is timed in the same rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (median)")
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--quick", action="store_true", help="toy sizes (a smoke test of this script)")
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "gl_cpu.md"), help="docs/benchmarks.md includes it")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeats, args.batch, args.image_size = 1, 1, 4, 32
    sys.path.insert(0, str(ROOT))
    import semkit
    from semkit.render import gl_renderer, gl_unavailable_reason

    reason = gl_unavailable_reason()
    if reason is not None:
        sys.exit(f"the gl backend cannot run here: {reason}")
    runs = {"this": [], "against": []}
    for _ in range(args.rounds):
        runs["this"].append(run_in(ROOT, ["embree", "gl"], args))
        if args.against is not None:
            runs["against"].append(run_in(args.against.resolve(), ["gl"], args))
    meshes = sorted(SHAPENET.glob("*/*/models/model_normalized.obj"))[: 2 if args.quick else None]
    agreed = agreement(meshes, 1 if args.quick else 4, args.image_size)
    Path(args.markdown).write_text(markdown(args, runs, gl_renderer(), semkit.__version__) + agreement_lines(meshes, agreed))
    print(Path(args.markdown).read_text())


def _medians(runs: list[dict], look: str, backend: str) -> tuple[float, float]:
    return tuple(statistics.median(r[look][backend][i] for r in runs) for i in (0, 1))


def _commit(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "an unknown commit"


def markdown(args, runs: dict, renderer: str, version: str) -> str:
    from run import machine

    against = args.against is not None
    lines = [
        "# gl on the CPU",
        "",
        f"Measured {datetime.date.today()} by `{' '.join(['python', 'benchmarks/gl_cpu.py', *sys.argv[1:]])}` on: "
        f"{machine()}; OpenGL: {renderer}.",
        "",
        f"ms per image at {args.image_size} px (2x supersampling), a batch of {args.batch} random views in one call "
        "and the same views one call each; medians of "
        f"{args.rounds} rounds (each a fresh process per checkout, run in turn) of medians of {args.repeats} calls.",
        "",
        "| look | embree, batch | gl, batch | gl / embree | embree, one | gl, one | gl / embree |"
        + (" gl of the other checkout, batch | one | this gl / that |" if against else ""),
        "|---|---|---|---|---|---|---|" + ("---|---|---|" if against else ""),
    ]
    for look, _, _ in LOOKS:
        eb, e1 = _medians(runs["this"], look, "embree")
        gb, g1 = _medians(runs["this"], look, "gl")
        row = f"| {look} | {eb:.1f} | {gb:.1f} | {gb / eb:.2f} | {e1:.1f} | {g1:.1f} | {g1 / e1:.2f} |"
        if against:
            ab, a1 = _medians(runs["against"], look, "gl")
            row += f" {ab:.1f} | {a1:.1f} | {gb / ab:.2f} (batch), {g1 / a1:.2f} (one) |"
        lines.append(row)
    lines += ["", f"semkit {version} at {_commit(ROOT)} (this checkout)"
              + (f"; the other: {args.against} at {_commit(args.against)}." if against else ".")]
    return "\n".join(lines) + "\n"


def agreement_lines(meshes: list[Path], agreed: dict) -> str:
    views = next(iter(agreed.values()))[0].shape[1]
    lines = ["", f"## gl against embree on {len(meshes)} meshes of the ShapeNet sample", "",
             f"{views} random views of each mesh, rendered by both; per image, silhouette IoU and mean absolute "
             "difference (the tests' bar: IoU >= 0.99, difference <= 0.01).", "",
             "| look | images | within the bar | lowest IoU | largest difference | meshes outside the bar |",
             "|---|---|---|---|---|---|"]
    for look, (iou, difference) in agreed.items():
        within = (iou >= 0.99) & (difference <= 0.01)
        outside = ", ".join(f"{p.parts[-4]}/{p.parts[-3][:8]}" for p, ok in zip(meshes, within.all(1)) if not ok) or "none"
        lines.append(f"| {look} | {within.size} | {within.sum()} | {iou.min():.3f} | {difference.max():.4f} | {outside} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
