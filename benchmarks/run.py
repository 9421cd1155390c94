"""Speed of the render -> classify -> score pipeline; rewrites docs/benchmarks.md.

    python benchmarks/run.py            (or: make benchmarks)

Medians of repeated runs, all measured in one run of this script on one
machine (described in the output), so ratios between rows are meaningful.
The mesh is a real ShapeNet bench from ../shared/data/shapenet-sample
(21,952 faces); the network EfficientNet-Lite0 at 224 x 224.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import guarantees
import render_once
import scale
import timing
import semkit
from common import MESH, ROOT
from semkit.classify.loaders import LITE_MEAN, LITE_STD
from semkit.render import pytorch3d_available
from timing import views

OUT = ROOT / "docs" / "benchmarks.md"
REPEATS = 5


def compare(ratio: float) -> str:
    """A measured ratio of speeds in words, the direction chosen by the number."""
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def median_seconds(fn, repeats: int = REPEATS) -> float:
    return timing.median_seconds(fn, repeats)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        mem_gb = int(mem.split()[1]) / 2**20
    except (OSError, StopIteration):
        mem_gb = float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB; Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), semkit {semkit.__version__}"
    )


def pipeline_rows() -> tuple[list[tuple[str, int, float]], dict]:
    """(what, batch size, items per second) of each stage and of the whole path; and the map's figures."""
    from unittest import mock

    from semkit.render import embree as _embree

    mesh = semkit.scene.load_mesh(MESH, label=703)
    classifier = semkit.load_classifier("efficientnet_lite0")  # the default engine: ONNX Runtime on a CPU
    in_torch = semkit.Classifier(
        classifier.module, input_size=224, name="efficientnet_lite0", mean=LITE_MEAN, std=LITE_STD, engine="torch"
    )
    renderer = semkit.Renderer("embree", image_size=224)
    space = semkit.Space.paper()
    rows, figures = [], {}
    for batch in (1, 64):
        pts = views(batch)
        rate = batch / median_seconds(lambda: renderer.render(mesh, pts, space=space))
        rows.append(("render (embree, 224 px, 2x supersampling)", batch, rate))
        figures[f"render{batch}"] = rate
    everywhere = lambda vertices, eye, axes, size, k, fov: (slice(0, size), slice(0, size))
    with mock.patch.object(_embree, "screen_window", everywhere):
        pts = views(64)
        figures["render64 everywhere"] = 64 / median_seconds(lambda: renderer.render(mesh, pts, space=space))
        rows.append(("render, every pixel traced (no screen window)", 64, figures["render64 everywhere"]))
    looks = semkit.Renderer("embree", image_size=224, materials=True, background=0.5)
    pts = views(64)
    rows.append(("render with materials=True on grey (the mesh's Kd)", 64, 64 / median_seconds(lambda: looks.render(mesh, pts, space=space))))
    images = renderer.render(mesh, views(64), space=space)
    best = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a runtime session takes its thread count when it is made
    one_thread = semkit.Classifier(classifier.module, input_size=224, mean=LITE_MEAN, std=LITE_STD, engine="onnxruntime")
    with torch.inference_mode():
        one_thread(images[:4])
    torch.set_num_threads(threads)
    for engine, c, runs in (
        ("ONNX Runtime", classifier, ((1, 1), (64, 1), (64, 2), (64, 4), (64, 8))),
        ("PyTorch", in_torch, ((1, 1), (64, 4))),
        ("ONNX Runtime, one thread", one_thread, ((64, 4),)),
    ):
        default_micro = c.micro_batch
        for batch, micro in runs:
            x = images[:batch]
            c.micro_batch = micro

            def classify():
                with torch.inference_mode():
                    c(x)

            rate = batch / median_seconds(classify)
            best[engine] = max(best.get(engine, 0.0), rate)
            figures[f"classify {engine} {batch}/{micro}"] = rate
            rows.append((f"classify ({engine}, micro-batches of {micro})", batch, rate))
        c.micro_batch = default_micro

    # the paper's way (one render and one classification per call) against a map of the same f
    pts = views(64, seed=1)
    # timed functions evaluate the same points again and again: without the query cache, so that they render and classify
    one = semkit.SemanticFunction(mesh, classifier, renderer=renderer, cache_size=0)
    figures["one_rate"] = 64 / median_seconds(lambda: [one(p[None]) for p in pts], 3)
    rows.append(("f called one point at a time (the paper's way)", 1, figures["one_rate"]))
    f = semkit.SemanticFunction(mesh, classifier, renderer=renderer, cache_size=0)
    rows.append((f"f(64 points), chunks of {f.batch_size}", f.batch_size, 64 / median_seconds(lambda: f(pts), 3)))
    n_points = 24 * 11  # step (15, 10)
    functions = {
        "map": semkit.SemanticFunction(mesh, classifier, renderer=renderer, pipeline=False, cache_size=0),
        "pipelined": semkit.SemanticFunction(mesh, classifier, renderer=renderer, pipeline=True, cache_size=0),
        "torch": semkit.SemanticFunction(mesh, in_torch, renderer=renderer, pipeline=False, cache_size=0),
    }
    seconds = {name: [] for name in functions}
    for f in functions.values():
        semkit.semantic_map(f, step=(30, 20), progress=False)  # warm-up
    for _ in range(REPEATS):  # interleaved, so that all see the same machine
        for name, f in functions.items():
            start = time.perf_counter()
            semkit.semantic_map(f, step=(15, 10), progress=False)
            seconds[name].append(time.perf_counter() - start)
    for name, times in seconds.items():
        figures[f"{name}_rate"] = n_points / statistics.median(times)
    rows.append(("semantic_map, 264-point 2-D grid", f.batch_size, figures["map_rate"]))
    rows.append(("semantic_map, 264-point 2-D grid, rendering overlapped", f.batch_size, figures["pipelined_rate"]))
    rows.append(("semantic_map, 264-point 2-D grid, network in PyTorch", f.batch_size, figures["torch_rate"]))
    figures.update(render=figures["render64"], classify=best["ONNX Runtime"], classify_torch=best["PyTorch"])
    figures["floor"] = min(figures["render"], figures["classify"])
    figures["serial"] = 1 / (1 / figures["render"] + 1 / figures["classify"])
    return rows, figures


def paper_grid() -> dict:
    """Time and peak memory of the paper's full 2-D grid (4,080 points), in a fresh process."""
    code = (
        "import resource, sys, time; sys.path.insert(0, %r); import common, semkit; "
        "f = semkit.SemanticFunction(semkit.scene.load_mesh(common.MESH, label=703), 'efficientnet_lite0'); "
        "t = time.perf_counter(); ds = semkit.semantic_map(f, step=3, progress=False); t = time.perf_counter() - t; "
        "print(ds.score.size, t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    ) % str(Path(__file__).parent)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    return {"points": int(out[0]), "seconds": float(out[1]), "peak_gb": int(out[2]) / 2**20}


def startup_seconds() -> dict:
    """Seconds of a new process's first classification: exporting the network to ONNX, then with the export on disk."""
    code = (
        "import time, torch, semkit; c = semkit.load_classifier('efficientnet_lite0'); x = torch.rand(1, 3, 224, 224); "
        "t = time.perf_counter(); c(x); print(time.perf_counter() - t)"
    )
    first = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
             for _ in range(REPEATS + 1)]
    return {"export": first[0], "cached": statistics.median(first[1:])}


def maps_paragraph(speed: dict) -> str:
    """What the map rows say, every comparison decided by the measured numbers."""
    gain = (1 / speed["render1"] + 1 / speed["classify ONNX Runtime 1/1"]) / (1 / speed["render64"] + 1 / speed["classify"])
    measured = speed["map_rate"] / speed["one_rate"]
    overlap = speed["pipelined_rate"] / speed["map_rate"]
    text = (
        "The map rows are measured interleaved. The network runs in ONNX Runtime "
        f"({compare(speed['classify'] / speed['classify_torch'])} than PyTorch's best here, same probabilities to about 1e-6), "
        f"and embree traces only the screen rectangle of the projected mesh ({compare(speed['render64'] / speed['render64 everywhere'])} "
        "than tracing every pixel, same pixels). Batches change each stage's speed by: rendering "
        f"{speed['render64'] / speed['render1']:.2f}x, the network {speed['classify'] / speed['classify ONNX Runtime 1/1']:.2f}x. "
        f"With r and c the per-image times, a map can gain about (r1 + c1) / (r64 + c64) = {gain:.2f}x over one point at a "
        f"time on this machine (measured: {measured:.2f}x). "
        f"Rendering the next chunk in a thread while the network classifies (pipeline=True) made the map {compare(overlap)}; "
        f"a map runs at {speed['map_rate'] / speed['serial']:.0%} of the rate of the two stages back to back and at "
        f"{speed['map_rate'] / speed['floor']:.0%} of the floor (the slower stage alone). Each stage's gain from a second "
        f"thread: rendering {speed['render64'] / speed['render1']:.2f}x (batch against single view), ONNX Runtime "
        f"{speed['classify ONNX Runtime 64/4'] / speed['classify ONNX Runtime, one thread 64/4']:.2f}x. With the network in "
        f"PyTorch the same map runs at {speed['torch_rate']:.0f} points/s, "
        f"{speed['torch_rate'] / min(speed['render'], speed['classify_torch']):.0%} of its floor. "
        "`SemanticFunction(pipeline=None)` overlaps only when the network runs on a GPU."
    )
    return text


def pytorch3d_rows() -> list[tuple[str, int, float]]:
    if not pytorch3d_available():
        return []
    mesh = semkit.scene.load_mesh(MESH, label=703)
    rows = []
    for name in ("embree", "pytorch3d"):
        r = semkit.Renderer(name, image_size=224, device="cpu") if name == "pytorch3d" else semkit.Renderer(name, image_size=224)
        t = median_seconds(lambda: r.render(mesh, azimuth=30.0, elevation=20.0), repeats=3)
        rows.append((f"render one image on the CPU ({name})", 1, 1 / t))
    return rows


def explorer_seconds() -> float:
    """Median seconds from a slider move to the explorer's updated render, top-5 and map (widgets, no browser)."""
    import matplotlib

    matplotlib.use("Agg")
    from semkit.app import Explorer

    widget = Explorer(["coffee_mug"], ["efficientnet_lite0"]).widget()  # computes the map once
    slider = widget.semkit["sliders"]["azimuth"]
    times = []
    for azimuth in np.linspace(10, 350, 2 * REPEATS):
        start = time.perf_counter()
        slider.value = float(round(azimuth))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


STARTS = [[130, 30], [50, 20], [200, 15], [310, 50]]  # the paper's initial points


def region_rows() -> tuple[list[tuple], dict]:
    """Faithful (600 paper steps) against adaptive steps, on the benchmark mesh's real 2-D map.

    The map (EfficientNet-Lite0, 6 x 5 degree grid) is interpolated so both
    rules see the same f; a real SemanticFunction run from one start gives
    the wall time per start.
    """
    mesh = semkit.scene.load_mesh(MESH, label=703)
    f = semkit.SemanticFunction(mesh, "efficientnet_lite0")
    start = time.perf_counter()
    semantic = semkit.semantic_map(f, step=(6, 5), progress=False)
    map_seconds = time.perf_counter() - start
    F = semkit.interpolate(semantic)
    space = semkit.Space.paper(periodic=False)
    correct = np.argwhere(semantic.correct.values)  # and about 20 correctly classified points, spread out
    starts = STARTS + [[float(semantic.azimuth[i]), float(semantic.elevation[j])] for i, j in correct[:: max(1, len(correct) // 20)]]
    faithful = semkit.find_regions(F, starts, space=space, iterations=600, progress=False)
    adaptive = semkit.find_regions(F, starts, space=space, iterations=600, step_rule="adaptive", progress=False)
    lo = np.maximum(faithful.lower, adaptive.lower)
    hi = np.minimum(faithful.upper, adaptive.upper)
    inter = (hi - lo).clip(min=0).prod("param")
    iou = inter / ((faithful.upper - faithful.lower).prod("param") + (adaptive.upper - adaptive.lower).prod("param") - inter)
    grown = semkit.regions.volume_ratio(faithful) > 1e-6
    rows = []
    for name in faithful.algorithm.values:
        g = grown.sel(algorithm=name)
        rows.append((
            str(name),
            float(faithful.queries.sel(algorithm=name).mean()),
            float(adaptive.queries.sel(algorithm=name).mean()),
            float(iou.sel(algorithm=name).where(g).min()),
            float(iou.sel(algorithm=name).where(g).mean()),
            float((iou.sel(algorithm=name).where(g) >= 0.9).sum() / g.sum()),
            int(g.sum()),
            float(semkit.srvr(faithful).sel(algorithm=name)),
            float(semkit.srvr(adaptive).sel(algorithm=name)),
        ))
    before = f.queries
    start = time.perf_counter()
    semkit.find_regions(f, STARTS[:1], iterations=600, step_rule="adaptive", progress=False)
    real = {"seconds": time.perf_counter() - start, "queries": f.queries - before, "map_seconds": map_seconds,
            "map_points": int(semantic.score.size), "starts": len(starts)}
    return rows, real


def adaptive_lines(rows: list[dict]) -> list[str]:
    share = np.array([r["share"] for r in rows])
    mae = np.array([r["mae"] for r in rows])
    agree = np.array([r["correct_agreement"] for r in rows])
    speed = np.array([r["dense_seconds"] / r["seconds"] for r in rows])
    lines = [
        "",
        "## Adaptive maps against dense maps",
        "",
        f"`semantic_map(f, step=3, adaptive=True)` (max_error {rows[0]['max_error']}) against the dense map of the same f, "
        f"EfficientNet-Lite0 on {len(rows)} ShapeNet meshes of the shared sample (`benchmarks/scale.py`: the first "
        f"{scale.PER_CLASS} models of each class). Queries counted by `f.queries`; the dense map's time is scaled from "
        "the points it rendered itself (the others came from the query cache).",
        "",
        "| shape | top-1 correct (dense) | queries | share of dense | mean abs. error | max error | `correct` agrees | time against dense |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['shape']} | {r['accuracy']:.0%} | {r['queries']} / {r['points']} | {r['share']:.0%} | {r['mae']:.4f} | "
        f"{r['max_error']:.3f} | {r['correct_agreement']:.2%} | {compare(r['dense_seconds'] / r['seconds'])} |"
        for r in rows
    ]
    lines += [
        "",
        f"On average the adaptive maps took {share.mean():.0%} of the dense queries (from {share.min():.0%} to "
        f"{share.max():.0%}), with a mean absolute score error of {mae.mean():.4f} (at most {mae.max():.4f} on one map) "
        f"and `correct` agreeing on {agree.min():.1%} of the points or more; {int((share <= 0.5).sum())} of {len(rows)} "
        f"maps used at most half of the dense queries, {int((mae <= 0.01).sum())} had an error of at most 0.01. "
        f"Wall time against the dense maps: {compare(float(np.exp(np.log(speed).mean())))} (geometric mean).",
    ]
    return lines


def cache_lines(rows: list[dict]) -> list[str]:
    lines = [
        "",
        "## The query cache on region searches",
        "",
        f"Each algorithm alone, then all three in one search, from (130, 30) and (200, 15), {rows[0]['iterations']} "
        "iterations, a fresh SemanticFunction each (the benchmark mesh, EfficientNet-Lite0); points asked for against "
        "points rendered (a point repeated within one batch counts as a hit).",
        "",
        "| algorithm | steps | points asked | rendered (queries) | from the cache | hit rate | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['algorithm']} | {r['step_rule']} | {r['asked']} | {r['queries']} | {r['hits']} | {r['hit_rate']:.1%} | {r['seconds']:.1f} |"
        for r in rows
    ]
    return lines


def study_lines(s: dict) -> list[str]:
    one, two = s["workers"][1], s["workers"][2]
    return [
        "",
        "## The study on Dask",
        "",
        f"`semkit.study(..., semkit.Maps(...), scheduler=client)` of {s['shapes']} ShapeNet meshes x {s['network']} at {s['points_per_map']} points "
        f"a map ({s['image_size']} px), on a LocalCluster of 1 and of 2 worker processes (1 thread each), after a coarse "
        "study that loads the network and meshes on every worker (`benchmarks/scale.py`).",
        "",
        "| measure | 1 worker | 2 workers |",
        "|---|---|---|",
        f"| study wall time | {one['wall']:.1f} s | {two['wall']:.1f} s |",
        f"| warm-up study (loading network and meshes) | {one['warm_up']:.1f} s | {two['warm_up']:.1f} s |",
        f"| round trip of a trivial task | {1000 * one['trivial_task']:.1f} ms | {1000 * two['trivial_task']:.1f} ms |",
        f"| the paper's study (100 shapes x 4 networks x 4,080 points), from the figures below | "
        f"{s['paper_study_hours'][1]:.1f} h | {s['paper_study_hours'][2]:.1f} h |",
        "",
        f"Scaling efficiency T1 / (2 T2) = {s['efficiency']:.2f}. The same map in one process took {s['map_seconds']:.2f} s "
        f"({1000 * s['point_seconds']:.1f} ms a point); a study task on one worker took {s['task_overhead']:+.2f} s more "
        "than that (the per-task overhead). The study's cost: 400 tasks of 4,080 points at that per-point cost "
        f"({s['network']}) plus the per-task overhead, divided by 2 x the efficiency on two workers.",
    ]


def gpu_lines() -> list[str]:
    """The GPU path, as benchmarks/gpu.py last measured it on a machine with a GPU (docs/gpu.md)."""
    lines = ["", "## The GPU path", ""]
    measured = ROOT / "docs" / "gpu.md"
    if measured.exists():
        lines += ["From `python benchmarks/gpu.py`, run on a machine with a GPU (not this one); its own output:", "",
                  measured.read_text().strip()]
    else:
        lines += ["No GPU run yet: `python benchmarks/gpu.py` on a machine with a CUDA GPU writes docs/gpu.md."]
    return lines


def included(name: str, title: str, command: str) -> list[str]:
    """A section measured by its own script (``command`` writes docs/``name``), as that script last wrote it."""
    lines = ["", f"## {title}", ""]
    measured = ROOT / "docs" / name
    if measured.exists():
        body = measured.read_text().strip().split("\n", 1)[-1].strip()  # without its own title, its sections below ours
        body = body.replace("\n## ", "\n### ")
        lines += [f"From `{command}` (docs/{name}), run on its own:", "", body]
    else:
        lines += [f"Not measured yet: `{command}` writes docs/{name}."]
    return lines


def main() -> None:
    if not MESH.exists():
        sys.exit(f"benchmark mesh not found: {MESH} (set SEMKIT_SHAPENET to the ShapeNet sample)")
    cache = tempfile.mkdtemp(prefix="semkit-bench-cache-")
    os.environ["SEMKIT_CACHE"] = cache  # starts empty, so the first export is measured; shared by the processes below
    startup = startup_seconds()
    rows, speed = pipeline_rows()
    grid = paper_grid()
    explorer = explorer_seconds()
    p3d = pytorch3d_rows()
    regions, real = region_rows()
    adaptive = scale.adaptive_rows(scale.shapenet_meshes())
    hits = scale.cache_rows(MESH)
    study = scale.dask_study([str(p) for p in scale.shapenet_meshes(1)[:4]])
    trust = guarantees.section(MESH)
    once = render_once.measure(semkit.load_shape(str(MESH)))
    for what, batch, rate in rows + p3d:
        print(f"{what:55s} batch {batch:3d}: {rate:8.1f}/s  ({1000 / rate:7.1f} ms each)")
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.date.today()} on: {machine()}.",
        "",
        "Command: `python benchmarks/run.py` (or `make benchmarks`); medians of "
        f"{REPEATS} runs after a warm-up, all rows in one run. Mesh: ShapeNet bench "
        "`50cdaa9e33fc853ecb2a965e75be701c` (21,952 faces) from the shared sample.",
        "",
        "## Render, classify, score",
        "",
        "| stage | batch | per second | ms each |",
        "|---|---|---|---|",
    ]
    lines += [f"| {what} | {batch} | {rate:.1f} | {1000 / rate:.1f} |" for what, batch, rate in rows]
    lines += [
        "",
        "## Maps against the floor",
        "",
        "| measure | value |",
        "|---|---|",
        f"| semantic_map per point against f one point at a time | {compare(speed['map_rate'] / speed['one_rate'])} |",
        f"| the same with rendering overlapped (pipeline=True) | {compare(speed['pipelined_rate'] / speed['one_rate'])} |",
        f"| floor: the slower stage alone at its best batch (render {speed['render']:.0f}/s, classify {speed['classify']:.0f}/s) | "
        f"{speed['floor']:.0f} points/s |",
        f"| semantic_map throughput / floor | {speed['map_rate'] / speed['floor']:.0%} |",
        f"| the stages back to back, each at its best batch: 1 / (1/render + 1/classify) | {speed['serial']:.0f} points/s |",
        f"| semantic_map throughput / that | {speed['map_rate'] / speed['serial']:.0%} |",
        f"| semantic_map with ONNX Runtime against the network in PyTorch | {compare(speed['map_rate'] / speed['torch_rate'])} |",
        f"| the paper's full 2-D grid ({grid['points']} points), one shape and network | {grid['seconds']:.0f} s "
        f"({grid['points'] / grid['seconds']:.0f} points/s) |",
        f"| peak memory of that map (whole process, max RSS) | {grid['peak_gb']:.2f} GB |",
        f"| explorer: a slider move to the new render, top-5 and map (224 px, widgets without a browser) | "
        f"{1000 * explorer:.0f} ms |",
        f"| a new process's first classification: exporting the network to ONNX | {startup['export']:.2f} s |",
        f"| the same with the export kept on disk (`$SEMKIT_CACHE`, median of {REPEATS} processes) | {startup['cached']:.2f} s |",
        "",
        maps_paragraph(speed),
    ]
    lines += ["", "## pytorch3d beside embree on the CPU", ""]
    if p3d:
        lines += ["| renderer | per second | ms each |", "|---|---|---|"]
        lines += [f"| {what} | {rate:.2f} | {1000 / rate:.0f} |" for what, _, rate in p3d]
        (_, _, embree), (_, _, p3d_rate) = p3d
        lines += ["", f"On the CPU pytorch3d renders {compare(p3d_rate / embree)} than embree."]
    else:
        lines += ["pytorch3d is not installed in this environment; its row is measured where it is."]
    lines += included("gl_cpu.md", "gl beside embree on the CPU", "python benchmarks/gl_cpu.py")
    lines += included("precision.md", "Precision: bfloat16 against float32 on the CPU",
                      "python benchmarks/precision.py --networks efficientnet_lite0 efficientnet_lite1 efficientnet_lite2")
    lines += [
        "",
        "## Robust regions: faithful against adaptive steps",
        "",
        f"On the mesh's real 2-D map (EfficientNet-Lite0, {real['map_points']} points on a 6 x 5 degree grid, computed in "
        f"{real['map_seconds']:.0f} s), interpolated so that both step rules see the same f; {real['starts']} starts (the "
        "paper's four and a spread of correctly classified points), `Space.paper(periodic=False)`, 600 iterations. "
        "IoU of each adaptive box with its faithful box, over the boxes that grew.",
        "",
        "| algorithm | queries per start, faithful | adaptive | ratio | IoU min | IoU mean | IoU >= 0.9 | boxes | SRVR faithful | SRVR adaptive |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {qf:.0f} | {qa:.0f} | {qa / qf:.3f} | {imin:.3f} | {imean:.3f} | {share:.0%} | {k} | {sf:.4f} | {sa:.4f} |"
        for n, qf, qa, imin, imean, share, k, sf, sa in regions
    ]
    lines += [
        "",
        f"On the real SemanticFunction (render + classify every query), the three algorithms from (130, 30) with adaptive "
        f"steps took {real['seconds']:.1f} s for {real['queries']} queries (OIR_W's gradients by central differences).",
    ]
    lines += adaptive_lines(adaptive) + cache_lines(hits) + study_lines(study) + [""] + trust + [""]
    lines += included("networks.md", "Networks beside each other", "python benchmarks/networks.py")
    lines += included("paper_study.md", "The paper's study, projected", "python benchmarks/paper_study.py --markdown docs/paper_study.md")
    lines += render_once.section(once, "ShapeNet bench `50cdaa9e33fc853ecb2a965e75be701c` (21,952 faces)") + gpu_lines()
    OUT.write_text("\n".join(lines) + "\n")
    shutil.rmtree(cache, ignore_errors=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
