"""The paper's study on this machine: 100 shapes x the bundled networks on the paper's 3-degree grid, projected
from a measured run on ShapeNet shapes of the shared sample.

    python benchmarks/paper_study.py [--shapes 10] [--step 3]

Each shape is one study task: an adaptive map (``Maps(step=3, adaptive=True)``) with every view rendered once
for the three bundled networks. The networks are loaded and exported before the clock starts (a study loads
them once). Writes docs/paper_study.md: per-shape seconds, the share of the grid evaluated, and the projection
of 100 shapes from the median (and from the mean).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import semkit

ROOT = Path(__file__).resolve().parents[1]
SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
CLASSES = ("aeroplane", "bathtub", "bench", "bottle", "chair")
#: The dense figure this projection stands beside (docs/benchmarks.md, "The study on Dask": one worker).
DENSE_HOURS = 4.2


def shapes(count: int) -> list[Path]:
    """``count`` meshes of the sample, round-robin over the classes (first models by id)."""
    per_class = {c: sorted(p / "models" / "model_normalized.obj" for p in (SHAPENET / c).iterdir()
                           if (p / "models" / "model_normalized.obj").exists()) for c in CLASSES}
    out = []
    for i in range(count):
        cls = CLASSES[i % len(CLASSES)]
        out.append(per_class[cls][i // len(CLASSES)])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=10)
    parser.add_argument("--step", type=float, default=3.0)
    args = parser.parse_args(argv)
    networks = [semkit.load_classifier(n) for n in semkit.BUNDLED]
    work = semkit.Maps(step=args.step, adaptive=True)
    warm = semkit.Maps(step=(180, 100))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        semkit.study([str(shapes(1)[0])], networks, warm, progress=False)  # exports at the render size, untimed
        for path in shapes(args.shapes):
            start = time.perf_counter()
            ds = semkit.study([str(path)], networks, work, progress=False)
            seconds = time.perf_counter() - start
            evaluated = float(ds.evaluated.isel(network=0).mean())
            rows.append((str(ds.shape.values[0]), seconds, evaluated, int(ds.score.isel(network=0).size)))
            print(f"{rows[-1][0]}: {seconds:.1f} s, {evaluated:.0%} of {rows[-1][3]} points evaluated", flush=True)
    seconds = [r[1] for r in rows]
    median, mean = statistics.median(seconds), statistics.fmean(seconds)
    lines = [
        "# The paper's study on this machine, projected",
        "",
        f"`python benchmarks/paper_study.py --shapes {args.shapes} --step {args.step:g}` on a machine of "
        f"{os.cpu_count()} cores ({platform.machine()}): one study task per shape, an "
        f"adaptive map on the paper's {args.step:g}-degree grid with each view rendered once for the "
        f"{len(networks)} bundled networks ({', '.join(c.name for c in networks)}), at the networks' largest input size.",
        "",
        "| shape | seconds | grid evaluated |",
        "|---|---|---|",
        *[f"| {name} | {s:.1f} | {e:.0%} of {n} |" for name, s, e, n in rows],
        "",
        f"Median {median:.1f} s per shape (mean {mean:.1f} s, {min(seconds):.1f} to {max(seconds):.1f} s). The paper's "
        f"study of 100 shapes x these networks: **{100 * median / 3600:.2f} h** from the median "
        f"({100 * mean / 3600:.2f} h from the mean), against {DENSE_HOURS} h for dense maps of 4 networks on one worker "
        "(docs/benchmarks.md). Other work may have shared the machine during the run; the figure is then an upper bound.",
        "",
    ]
    (ROOT / "docs" / "paper_study.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
