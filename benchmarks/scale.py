"""Fewer queries and more hardware, measured: adaptive maps, the query cache, and the study on Dask.

    python benchmarks/scale.py [adaptive|cache|dask] [--small]

Each function returns plain numbers; ``benchmarks/run.py`` turns them into
docs/benchmarks.md. ``--small`` runs everything at a toy size (a check that
the code runs, not a measurement).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import semkit

ROOT = Path(__file__).resolve().parents[1]
SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
#: Meshes of the shared ShapeNet sample, two per class (the first two models with a mesh file, by id).
PER_CLASS = 2
CLASSES = ("aeroplane", "bathtub", "bench", "bottle", "chair")


def shapenet_meshes(per_class: int = PER_CLASS) -> list[Path]:
    paths = []
    for cls in CLASSES:
        models = sorted(p for p in (SHAPENET / cls).iterdir() if (p / "models" / "model_normalized.obj").exists())
        paths += [p / "models" / "model_normalized.obj" for p in models[:per_class]]
    return paths


# ------------------------------------------------------------ adaptive maps
def adaptive_rows(meshes: list[Path], step: float = 3, image_size: int | None = None, max_error: float | None = None) -> list[dict]:
    """Per mesh: an adaptive map against the dense map of the same f (EfficientNet-Lite0): queries, errors, seconds.

    The adaptive map is computed first; the dense map then takes its
    evaluated points from the query cache, so it renders only the rest.
    """
    from semkit.scene.shapenet import load_file

    classifier = semkit.load_classifier("efficientnet_lite0")
    renderer = semkit.Renderer(image_size=image_size or classifier.input_size)
    rows = []
    for path in meshes:
        mesh = load_file(path)
        f = semkit.SemanticFunction(mesh, classifier, renderer=renderer)
        start = time.perf_counter()
        adaptive = semkit.semantic_map(f, step=step, adaptive=True, max_error=max_error, progress=False)
        seconds = time.perf_counter() - start
        queries = f.queries
        start = time.perf_counter()
        dense = semkit.semantic_map(f, step=step, progress=False)
        rendered = f.queries - queries
        dense_seconds = (time.perf_counter() - start) * dense.score.size / rendered if rendered else float("nan")
        err = np.abs(adaptive.score - dense.score)
        rows.append({
            "shape": mesh.name,
            "points": int(dense.score.size),
            "queries": queries,
            "share": queries / dense.score.size,
            "mae": float(err.mean()),
            "max_error": float(err.max()),
            "correct_agreement": float((adaptive.correct == dense.correct).mean()),
            "accuracy": float(dense.correct.mean()),
            "seconds": seconds,
            # the dense map's own time: its points not in the cache, scaled to the whole grid
            "dense_seconds": dense_seconds,
            "max_error": float(adaptive.attrs["max_error"]),
        })
    return rows


# --------------------------------------------------------------- the cache
def cache_rows(mesh_path: Path, iterations: int = 100, image_size: int | None = None) -> list[dict]:
    """Hit rates of the query cache on a region workload: each algorithm, then all three in one search, from two of the paper's starts."""
    from semkit.scene.shapenet import load_file

    mesh = load_file(mesh_path)
    classifier = semkit.load_classifier("efficientnet_lite0")
    renderer = semkit.Renderer(image_size=image_size or classifier.input_size)
    rows = []
    for algorithm in ("naive", "oir_b", "oir_w", "all three"):
        for step_rule in ("faithful", "adaptive"):
            f = semkit.SemanticFunction(mesh, classifier, renderer=renderer)
            start = time.perf_counter()
            algorithms = ["naive", "oir_b", "oir_w"] if algorithm == "all three" else [algorithm]
            semkit.find_regions(f, [[130, 30], [200, 15]], algorithms, iterations=iterations, step_rule=step_rule, progress=False)
            info = f.cache.info()
            rows.append({"algorithm": algorithm, "step_rule": step_rule, "iterations": iterations, "asked": info["hits"] + info["misses"],
                         "queries": f.queries, "hits": info["hits"], "hit_rate": info["hit_rate"],
                         "seconds": time.perf_counter() - start})
    return rows


# ---------------------------------------------------------------- the study
def dask_study(shapes: list[str], network: str = "efficientnet_lite0", step: float = 15, image_size: int | None = None) -> dict:
    """A map study over ``shapes`` x one network on a LocalCluster of 1 and of 2 worker processes (1 thread each).

    Returns the wall times (after a coarse warm-up study that loads the network and meshes on every worker), the scaling efficiency T1 / (2 T2), the
    per-task overhead (a study task's time on one worker minus the same
    map computed in this process) and a trivial task's round trip, and
    the cost of the paper's study (100 shapes x 4 networks x 4,080
    points) from these per-point and per-task figures.
    """
    from dask.distributed import Client, LocalCluster

    from semkit.scene.shapenet import load_file

    classifier = semkit.load_classifier(network)
    renderer = semkit.Renderer(image_size=image_size or classifier.input_size)
    points = int(np.prod([len(v) for v in semkit.grid_coords(space=semkit.Space.paper(), step=step).values()]))
    in_process = []
    for shape in shapes:  # the same maps in this process: the compute a task must do
        f = semkit.SemanticFunction(load_file(shape) if Path(shape).exists() else semkit.gallery.load(shape), classifier, renderer=renderer)
        semkit.semantic_map(f, step=step, progress=False)  # warm-up (first-call costs are not per point)
        f = semkit.SemanticFunction(f.mesh, classifier, renderer=renderer)
        start = time.perf_counter()
        semkit.semantic_map(f, step=step, progress=False)
        in_process.append(time.perf_counter() - start)
    map_seconds = float(np.mean(in_process))
    out: dict = {"shapes": len(shapes), "network": network, "points_per_map": points, "map_seconds": map_seconds,
                 "point_seconds": map_seconds / points, "image_size": renderer.image_size, "workers": {}}
    for workers in (1, 2):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        with Client(cluster) as client:
            start = time.perf_counter()
            client.gather(client.map(abs, range(100)))
            trivial = (time.perf_counter() - start) / 100
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()  # a coarse study first: every worker loads the network and the meshes
                semkit.study(shapes, [network], semkit.Maps(step=90), image_size=image_size,
                             store=Path(tmp) / "warm.zarr", scheduler=client, progress=False)
                warm = time.perf_counter() - start
                start = time.perf_counter()
                semkit.study(shapes, [network], semkit.Maps(step=step), image_size=image_size,
                             store=Path(tmp) / "study.zarr", scheduler=client, progress=False)
                wall = time.perf_counter() - start
        cluster.close()
        out["workers"][workers] = {"wall": wall, "warm_up": warm, "trivial_task": trivial}
    t1, t2 = out["workers"][1]["wall"], out["workers"][2]["wall"]
    out["efficiency"] = t1 / (2 * t2)
    out["task_overhead"] = t1 / len(shapes) - map_seconds
    paper_maps, paper_points = 100 * 4, 4080
    task = paper_points * out["point_seconds"] + max(out["task_overhead"], 0.0)
    out["paper_study_hours"] = {1: paper_maps * task / 3600, 2: paper_maps * task / (2 * out["efficiency"]) / 3600}
    return out


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "all"
    small = "--small" in sys.argv
    size = 32 if small else None
    results = {}
    if what in ("adaptive", "all"):
        results["adaptive"] = adaptive_rows(shapenet_meshes(1)[:2] if small else shapenet_meshes(), step=30 if small else 3,
                                            image_size=size)
    if what in ("cache", "all"):
        results["cache"] = cache_rows(shapenet_meshes(1)[-1], iterations=5 if small else 100, image_size=size)
    if what in ("dask", "all"):
        shapes = [str(p) for p in shapenet_meshes(1)[: 2 if small else 4]]
        results["dask"] = dask_study(shapes, step=60 if small else 15, image_size=size)
    print(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
