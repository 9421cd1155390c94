"""The paper's study on this machine, measured and projected: shapes x the three bundled networks at a 3-degree grid.

    python benchmarks/paper_study.py [--shapes 10] [--step 3] [--out paper_study.json]

The networks are loaded once. Each ShapeNet shape of the shared sample (spread over its classes) gets
``semantic_map(SemanticFunctions(mesh, semkit.BUNDLED), step=3, adaptive=True)``:
each view rendered once (at the largest input size) for all three networks.
Prints one JSON line per shape as it finishes, then the summary: the median
seconds per shape and the projection to the paper's 100 shapes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import semkit

ROOT = Path(__file__).resolve().parents[1]
SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
CLASSES = ("aeroplane", "bathtub", "bench", "bottle", "chair")
PAPER_SHAPES = 100


def sample_meshes(n: int) -> list[Path]:
    """``n`` mesh files of the sample, taken in turn from each class (models sorted by id)."""
    per_class = {c: sorted(p / "models" / "model_normalized.obj" for p in (SHAPENET / c).iterdir()
                           if (p / "models" / "model_normalized.obj").exists()) for c in CLASSES}
    paths: list[Path] = []
    for i in range(max(len(v) for v in per_class.values())):
        paths += [v[i] for v in per_class.values() if i < len(v)]
    if len(paths) < n:
        raise SystemExit(f"the sample at {SHAPENET} has {len(paths)} meshes, fewer than --shapes {n}")
    return paths[:n]


def measure(n: int, step: float) -> dict:
    from semkit.scene.shapenet import load_file

    networks = [semkit.load_classifier(name) for name in semkit.BUNDLED]  # loaded once, as a study does
    rows = []
    for path in sample_meshes(n):
        mesh = load_file(path)
        start = time.perf_counter()
        f = semkit.SemanticFunctions(mesh, networks)
        maps = semkit.semantic_map(f, step=step, adaptive=True, progress=False)
        seconds = time.perf_counter() - start
        row = {"shape": mesh.name, "seconds": round(seconds, 1), "grid_views": int(maps.score.isel(network=0).size),
               "evaluations": int(f.queries), "image_size": f.renderer.image_size}
        rows.append(row)
        print(json.dumps(row), flush=True)
        f.close()
    median = statistics.median(r["seconds"] for r in rows)
    return {"shapes": len(rows), "networks": list(semkit.BUNDLED), "step": step, "rows": rows,
            "median_seconds": round(median, 1), "projected_hours": round(median * PAPER_SHAPES / 3600, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=10, help="ShapeNet shapes to measure (default 10)")
    parser.add_argument("--step", type=float, default=3.0, help="grid step, degrees (the paper's: 3)")
    parser.add_argument("--out", type=Path, help="also write the summary here (JSON)")
    args = parser.parse_args()
    if args.shapes < 1:
        parser.error(f"--shapes must be at least 1, got {args.shapes}")
    summary = measure(args.shapes, args.step)
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
