"""The paper's study on this machine, measured and projected: shapes x the three bundled networks at a 3-degree grid.

    python benchmarks/paper_study.py [--shapes 10] [--step 3] [--out paper_study.json] [--markdown docs/paper_study.md]

The networks are loaded once. Each ShapeNet shape of the shared sample (spread over its classes) gets
``semantic_map(SemanticFunctions(mesh, semkit.BUNDLED), step=3, adaptive=True)``: each network's map is
refined where that network needs it, the views of a round rendered once (at the largest input size) for
the networks that asked for them. Prints one JSON line per shape as it finishes, then the summary: the
median seconds per shape, the projection to the paper's 100 shapes, and the per-view costs (one render,
one classification per network) that bound what any map of this grid can cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import semkit

ROOT = Path(__file__).resolve().parents[1]
SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
CLASSES = ("aeroplane", "bathtub", "bench", "bottle", "chair")
PAPER_SHAPES = 100
GOAL_HOURS = 1.5


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


def per_view_costs(f: semkit.SemanticFunctions, views: int = 64, repeats: int = 3) -> dict:
    """Median seconds per view of one render (at the study's size) and of each network's classification."""
    az = np.linspace(0, 360, views, endpoint=False)
    points = np.stack([az, np.full(views, 20.0)], axis=1)
    f.renderer.render(f.mesh, points[:8], space=f.space)  # warm: the scene is built, the threads started
    classifiers = [g.classifier for g in f.functions]
    render, classify = [], {c.name: [] for c in classifiers}
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            images = f.renderer.render(f.mesh, points, space=f.space)
            render.append((time.perf_counter() - start) / views)
            for c in classifiers:
                c(images[:8])  # warm: the session is made
                start = time.perf_counter()
                c(images)
                classify[c.name].append((time.perf_counter() - start) / views)
    return {"render": statistics.median(render), **{name: statistics.median(t) for name, t in classify.items()}}


def measure(n: int, step: float) -> dict:
    from semkit.scene.shapenet import load_file

    networks = [semkit.load_classifier(name) for name in semkit.BUNDLED]  # loaded once, as a study does
    rows, costs = [], None
    for path in sample_meshes(n):
        mesh = load_file(path)
        start = time.perf_counter()
        f = semkit.SemanticFunctions(mesh, networks)
        maps = semkit.semantic_map(f, step=step, adaptive=True, progress=False)
        seconds = time.perf_counter() - start
        row = {"shape": mesh.name, "seconds": round(seconds, 1), "grid_views": int(maps.score.isel(network=0).size),
               "renders": int(f.renders), "classifications": {name: int(f[name].queries) for name in semkit.BUNDLED},
               "image_size": f.renderer.image_size}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if costs is None:  # after the first map: the networks' sessions and the renderer are warm
            costs = {k: round(v, 5) for k, v in per_view_costs(f).items()}
            print(json.dumps({"seconds_per_view": costs}), flush=True)
        f.close()
    median = statistics.median(r["seconds"] for r in rows)
    dense = rows[0]["grid_views"] * sum(costs.values())
    return {"shapes": len(rows), "networks": list(semkit.BUNDLED), "step": step, "rows": rows,
            "median_seconds": round(median, 1), "projected_hours": round(median * PAPER_SHAPES / 3600, 2),
            "seconds_per_view": costs, "dense_seconds_per_shape": round(dense, 1),
            "dense_projected_hours": round(dense * PAPER_SHAPES / 3600, 2)}


def markdown(s: dict) -> str:
    """docs/paper_study.md: the measured rows and what they mean for the paper's study."""
    n_views = s["rows"][0]["grid_views"]
    costs = s["seconds_per_view"]
    per_view = " + ".join(f"{name} {1000 * costs[name]:.1f} ms" for name in s["networks"])
    lines = [
        "# The paper's study on this machine, measured (adaptive maps, three networks)", "",
        f"`python benchmarks/paper_study.py --shapes {s['shapes']} --step {s['step']:g}`: {s['shapes']} ShapeNet shapes of the "
        f"shared sample (in turn from each class), each `semantic_map(SemanticFunctions(mesh, networks), step={s['step']:g}, "
        "adaptive=True)` with the three bundled networks (loaded once) in one process on the 2-core machine. Each network's "
        "map is refined where that network needs it (the map it would get alone); the views of a refinement round are "
        f"rendered once, at {s['rows'][0]['image_size']} px, for the networks that asked for them.", "",
        "| shape | seconds | views rendered | classifications " + " / ".join(s["networks"]) + f" (of {n_views:,} each) |",
        "|---|---|---|---|",
    ]
    for r in s["rows"]:
        counts = " / ".join(f"{r['classifications'][name]:,}" for name in s["networks"])
        lines.append(f"| {r['shape']} | {r['seconds']:.1f} | {r['renders']:,} | {counts} |")
    share = statistics.median(sum(r["classifications"].values()) / (len(s["networks"]) * n_views) for r in s["rows"])
    met = "meets" if s["projected_hours"] <= GOAL_HOURS else "misses"
    lines += [
        "",
        f"Median {s['median_seconds']:.1f} s a shape (the adaptive maps classified a median {share:.0%} of the dense "
        f"grid's views per network). Projected to the paper's {PAPER_SHAPES} shapes x these three networks: "
        f"**{s['projected_hours']:.2f} h** on this machine, which {met} the goal of {GOAL_HOURS} h on 2 cores.",
        "",
        f"What any map of this grid costs here, per view (median of 3 batches of 64 views, measured in the same run): "
        f"one render at {s['rows'][0]['image_size']} px {1000 * costs['render']:.1f} ms, and a classification by {per_view}. "
        f"The dense maps would take {s['dense_seconds_per_shape']:.0f} s a shape ({s['dense_projected_hours']:.1f} h for "
        f"{PAPER_SHAPES} shapes); {GOAL_HOURS} h is {GOAL_HOURS * 3600 / PAPER_SHAPES:.0f} s a shape, "
        f"{GOAL_HOURS * 3600 / PAPER_SHAPES / s['dense_seconds_per_shape']:.0%} of the dense cost.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=10, help="ShapeNet shapes to measure (default 10)")
    parser.add_argument("--step", type=float, default=3.0, help="grid step, degrees (the paper's: 3)")
    parser.add_argument("--out", type=Path, help="also write the summary here (JSON)")
    parser.add_argument("--markdown", type=Path, help="also write the results here (docs/paper_study.md)")
    args = parser.parse_args()
    if args.shapes < 1:
        parser.error(f"--shapes must be at least 1, got {args.shapes}")
    summary = measure(args.shapes, args.step)
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=1))
    if args.markdown is not None:
        args.markdown.write_text(markdown(summary))


if __name__ == "__main__":
    main()
