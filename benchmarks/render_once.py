"""Render once, classify many: a map of n networks with each view rendered once, against one map per network.

    python benchmarks/render_once.py [--step 20 10] [--networks efficientnet_lite0 ...]

One run measures, on the same mesh, renderer and grid: r, the render time
per view, and c_i, each network's classify time per view (medians of timed
batches of 32 views, the maps' batch size); the time of one map per network
(``SemanticFunction`` each, every view rendered n times) and of one map of
all the networks (``SemanticFunctions``, every view rendered once). The
speed-up cannot exceed the bound (n r + sum c) / (r + sum c); the section
reports the speed-up and its fraction of that bound, and replaces its own
section of docs/benchmarks.md (``benchmarks/run.py`` includes it too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import semkit
from timing import median_seconds, views

ROOT = Path(__file__).resolve().parents[1]
SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
MESH = SHAPENET / "bench" / "50cdaa9e33fc853ecb2a965e75be701c" / "models" / "model_normalized.obj"
NETWORKS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
TITLE = "## Render once, classify many"
BATCH = 32


def measure(mesh: semkit.Mesh, networks=NETWORKS, step=(20.0, 10.0), image_size: int = 224, rounds: int = 2) -> dict:
    """r, c per network, and the seconds of separate and shared maps (medians of ``rounds``, alternated)."""
    renderer = semkit.Renderer(image_size=image_size)
    classifiers = [semkit.load_classifier(n) for n in networks]
    space = semkit.Space.paper()
    points = views(BATCH)
    images = renderer.render(mesh, points, space=space)
    r = median_seconds(lambda: renderer.render(mesh, points, space=space), 3) / BATCH
    with torch.inference_mode():
        c = [median_seconds(lambda k=k: k(images), 3) / BATCH for k in classifiers]
    separate, shared = [], []
    grid_points = 0
    for _ in range(rounds):
        start = time.perf_counter()
        for k in classifiers:
            m = semkit.semantic_map(semkit.SemanticFunction(mesh, k, renderer=renderer, space=space), step=step, progress=False)
        separate.append(time.perf_counter() - start)
        grid_points = int(m.score.size)
        fs = semkit.SemanticFunctions(mesh, classifiers, renderer=renderer, space=space)
        start = time.perf_counter()
        semkit.semantic_map(fs, step=step, progress=False)
        shared.append(time.perf_counter() - start)
        assert fs.renders == grid_points and fs.queries == grid_points * len(classifiers)
    n = len(classifiers)
    bound = (n * r + sum(c)) / (r + sum(c))
    speedup = statistics.median(separate) / statistics.median(shared)
    return {"networks": list(networks), "r": r, "c": c, "points": grid_points, "step": list(step), "image_size": image_size,
            "separate": statistics.median(separate), "shared": statistics.median(shared), "bound": bound,
            "speedup": speedup, "fraction": speedup / bound, "threads": torch.get_num_threads(), "rounds": rounds}


def section(result: dict, mesh_name: str) -> list[str]:
    """The docs section of one measurement."""
    n = len(result["networks"])
    c = ", ".join(f"{name} {1000 * ci:.1f}" for name, ci in zip(result["networks"], result["c"]))
    return [
        TITLE,
        "",
        f"`python benchmarks/render_once.py` ({result['threads']} torch threads): {mesh_name}, {n} networks, one "
        f"{result['image_size']} px renderer for all, the paper's space on a {result['step'][0]:g} x {result['step'][1]:g} "
        f"degree grid ({result['points']} points); medians of {result['rounds']} alternated rounds. "
        "One map of all the networks (`SemanticFunctions`: each view rendered once, classified by each network) against "
        "one map per network (each view rendered once per network). Render time per view r = "
        f"{1000 * result['r']:.1f} ms; classify time per view c (ms): {c}. The speed-up cannot exceed "
        f"(n r + sum c) / (r + sum c) = {result['bound']:.2f}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| one map per network, all {n} | {result['separate']:.1f} s |",
        f"| one map of the {n} networks, each view rendered once | {result['shared']:.1f} s |",
        f"| speed-up | {result['speedup']:.2f}x |",
        f"| bound (n r + sum c) / (r + sum c) | {result['bound']:.2f}x |",
        f"| speed-up / bound | {result['fraction']:.0%} |",
        f"| render-once map against its floor (the slowest stage alone: {n} classifications per view, sum c) | "
        f"{result['points'] * sum(result['c']) / result['shared']:.0%} of the floor's speed |",
        "",
    ]


def write(lines: list[str], path: Path) -> None:
    """Replace this section of ``path`` (or put it before the GPU path's section)."""
    text = path.read_text().splitlines()
    if TITLE in text:
        start = text.index(TITLE)
        end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
        text[start:end] = lines
    else:
        at = next((i for i, line in enumerate(text) if line.startswith("## The GPU path")), len(text))
        text[at:at] = lines
    path.write_text("\n".join(text) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, nargs=2, default=(20.0, 10.0), help="the grid's (azimuth, elevation) steps")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--mesh", type=Path, default=MESH)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the file to write the section into")
    args = parser.parse_args()
    if not args.mesh.exists():
        raise SystemExit(f"benchmark mesh not found: {args.mesh} (set SEMKIT_SHAPENET to the ShapeNet sample)")
    mesh = semkit.load_shape(str(args.mesh))  # labelled by its ShapeNet class
    result = measure(mesh, args.networks, tuple(args.step))
    name = f"ShapeNet {args.mesh.parents[2].name} `{args.mesh.parents[1].name}` ({len(mesh.faces):,} faces)"
    lines = section(result, name)
    print("\n".join(lines))
    write(lines, args.docs)
    print(f"wrote {args.docs}")


if __name__ == "__main__":
    main()
