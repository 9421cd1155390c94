"""What guarantees cost: verified regions against dense grids, and worst-case searches against each other.

    python benchmarks/guarantees.py      (benchmarks/run.py includes its section in docs/benchmarks.md)

On the benchmark mesh (ShapeNet bench, EfficientNet-Lite0, 224 px, top-1
correct): verified boxes from four correctly classified views with the lattice
certificate in 2-D and 3-D and the sampled certificate in 4-D, their
queries and seconds beside the points of a dense grid at the same
resolution; then queries to the first failing view within +-10 degrees of
correctly classified views, CMA-ES against random search.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

import semkit


SPACES = {
    "2-D lattice": (semkit.Space.paper(), (3.0, 3.0), "lattice"),
    "3-D lattice": (semkit.Space({"azimuth": (0, 360), "elevation": (-10, 90), "distance": (2.0, 4.0)},
                                 periodic=["azimuth"]), (3.0, 3.0, 0.1), "lattice"),
    "4-D sampled": (semkit.Space({"azimuth": (0, 360), "elevation": (-10, 90), "distance": (2.0, 4.0),
                                  "light_elevation": (0, 90)}, periodic=["azimuth"]), (3.0, 3.0, 0.1, 3.0), "sampled"),
}


def grid_points(space: semkit.Space, resolution) -> int:
    """Points of a dense grid of the Space at this resolution (periodic parameters do not repeat their period)."""
    counts = [int(round(p.width / r)) + (0 if p.periodic else 1) for p, r in zip(space.parameters, resolution)]
    return int(np.prod(counts))


def section(mesh_path: Path) -> list[str]:
    """The section's markdown lines, measured on the ShapeNet bench at ``mesh_path``."""
    mesh = semkit.load_mesh(mesh_path, label=703)
    classifier = semkit.load_classifier("efficientnet_lite0")
    f = semkit.SemanticFunction(mesh, classifier)
    coarse = semkit.semantic_map(f, step=(15, 10), progress=False)
    correct = np.argwhere(coarse.correct.values)
    views = [[float(coarse.azimuth[i]), float(coarse.elevation[j])] for i, j in correct]
    picked = views[:: max(1, len(views) // 4)][:4]
    lines = [
        "## Guarantees: verified regions and worst-case views",
        "",
        f"Bench mesh, EfficientNet-Lite0, 224 px, criterion top-1 correct. Starts: {len(picked)} of the {len(views)} "
        "correctly classified views of a 15 x 10 degree map, spread out ("
        + ", ".join(f"({a:g}, {e:g})" for a, e in picked) + "), at the paper's camera distance 2.732 and light "
        "elevation 60 degrees where those are parameters. Queries are renders + classifications charged to each start.",
        "",
        "| space | certificate | resolution | starts that pass | queries per start (mean, max) | seconds per start | "
        "box volume / Space (mean) | dense grid at that resolution |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (space, resolution, certificate) in SPACES.items():
        g = semkit.SemanticFunction(mesh, classifier, space=space)
        starts = np.array([view + [2.732, 60.0] for view in picked])[:, : space.n]
        start = time.perf_counter()
        boxes = semkit.find_regions(g, starts, ("verified",), space, certificate=certificate, resolution=resolution,
                                    progress=False).sel(algorithm="verified")
        seconds = time.perf_counter() - start
        volume = semkit.volume_ratio(boxes)
        lines.append(
            f"| {name} ({', '.join(space.names)}) | {certificate} | {', '.join(f'{r:g}' for r in resolution)} | "
            f"{int(boxes.start_passes.sum())} of {len(starts)} | {float(boxes.queries.mean()):.0f}, "
            f"{int(boxes.queries.max())} | {seconds / len(starts):.1f} | {float(volume.mean()):.4f} | "
            f"{grid_points(space, resolution):,} |"
        )
    lines += [
        "",
        "A lattice box checks every lattice point it claims; the sampled certificate bounds the failure rate "
        "by 1% at 95% confidence with fresh uniform samples of the final box.",
        "",
    ]

    starts = np.array(views[:: max(1, len(views) // 8)][:8])
    lines += [
        f"Worst views within +-10 degrees of {len(starts)} correctly classified views (budget 200 queries per start):",
        "",
        "| method | failure found | queries to the first failure (median) | lowest score found (median) | seconds |",
        "|---|---|---|---|---|",
    ]
    for method in ("random", "cmaes"):
        start = time.perf_counter()
        worst = semkit.find_failures(f, starts, 10.0, budget=200, method=method, progress=False)
        seconds = time.perf_counter() - start
        hits = worst.queries_to_failure.values[worst.failed.values]
        median = f"{statistics.median(hits):.0f}" if len(hits) else "none found"
        lines.append(f"| {method} | {int(worst.failed.sum())} of {len(starts)} | {median} | "
                     f"{float(np.median(worst.score)):.3f} | {seconds:.0f} |")
    return lines


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from run import MESH

    print("\n".join(section(MESH)))
