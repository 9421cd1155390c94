"""The GPU path: the paper's 4,080-point grid with embree on the CPU cores and the network on a GPU.

    python benchmarks/gpu.py        # on a machine with a CUDA GPU; writes docs/gpu.json and docs/gpu.md
    python benchmarks/gpu.py --device cpu --quick --json x.json --markdown x.md   # toy sizes, any machine (tested)

The gl rows need moderngl (``pip install 'semkit[gl]'``) and an EGL loader
(Debian: libegl1) beside the GPU's driver; without them they are skipped and
the output says why.

Measures, in one run on one machine, medians of ``--repeats`` runs after a
warm-up:

* rendering alone (embree, 224 px, 2x supersampling) with 1 .. all CPU
  threads in one process, and split over worker processes; and the gl
  backend (OpenGL through EGL: on the GPU with NVIDIA's driver, a batch per
  instanced pass, shaded in torch on the GPU) where it can run, with its
  GL_RENDERER recorded;
* each network alone on the device, batches of ``--batch`` images;
* ``semantic_map`` on the paper's grid (azimuth step 3 by elevation step 3:
  4,080 points) for each network, with the next batch rendering while the
  current one is classified (``pipeline=True``) and without; and with the
  gl backend (``pipeline=True``);

and from the best map rate, the time of the paper's study (100 shapes x 4
networks x 4,080 points) on one such machine. Networks: EfficientNet-Lite0
(bundled weights) and torchvision ResNet50 with random weights (its cost does
not depend on them). Results go to ``--json`` and ``--markdown`` (for
docs/benchmarks.md); nothing in the text is decided before the numbers are.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

import semkit  # noqa: E402
from timing import median_seconds, views  # noqa: E402

SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
BENCH = "bench/50cdaa9e33fc853ecb2a965e75be701c/models/model_normalized.obj"
STUDY_POINTS = 100 * 4 * 4080  # the paper's study: 100 shapes x 4 networks x the 4,080-point grid


def network(name: str, device: str) -> semkit.Classifier:
    if name == "resnet50":
        import torchvision

        torch.manual_seed(0)
        model = torchvision.models.resnet50(weights=None)
        return semkit.Classifier(model, input_size=224, name="resnet50 (random weights)").to(device)
    return semkit.load_classifier(name, device=device)


_worker_state: dict = {}


def _worker_init(mesh_path: str, image_size: int) -> None:
    torch.set_num_threads(1)
    _worker_state["mesh"] = semkit.scene.load_mesh(mesh_path)
    _worker_state["renderer"] = semkit.Renderer("embree", image_size=image_size, threads=1)


def _worker_render(points: np.ndarray) -> np.ndarray:
    return _worker_state["renderer"].render(_worker_state["mesh"], points).numpy()


def describe_machine(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none (device cpu)"
    return {"date": str(datetime.date.today()), "gpu": gpu, "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "semkit": semkit.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--networks", default="efficientnet_lite0,resnet50")
    parser.add_argument("--batch", type=int, default=256, help="images per network call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step", type=float, default=3.0, help="grid step in degrees (3: the paper's 4,080 points)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--quick", action="store_true", help="toy sizes (a smoke test of this script)")
    parser.add_argument("--mesh", default=str(SHAPENET / BENCH))
    parser.add_argument("--no-gl", action="store_true", help="skip the gl backend")
    parser.add_argument("--study-step", type=float, default=6.0, help="the study's grid step in degrees")
    parser.add_argument("--study-shapes", type=int, default=10, help="ShapeNet shapes in the study")
    parser.add_argument("--json", default=str(ROOT / "docs" / "gpu.json"))
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "gpu.md"), help="docs/benchmarks.md includes it")
    args = parser.parse_args()
    if args.quick:
        args.step, args.image_size, args.batch, args.repeats = 45.0, 32, 8, 1
        args.study_step, args.study_shapes = 90.0, 2
    if not Path(args.mesh).exists():
        sys.exit(f"benchmark mesh not found: {args.mesh} (set SEMKIT_SHAPENET or pass --mesh)")
    device = args.device
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    cores = os.cpu_count() or 1
    mesh = semkit.scene.load_mesh(args.mesh, label=703)  # park bench
    result: dict = {"machine": describe_machine(device), "settings": vars(args), "render": [], "classify": [], "map": []}
    gl_reason = "skipped (--no-gl)" if args.no_gl else semkit.render.gl_unavailable_reason()
    result["machine"]["gl"] = semkit.render.gl_renderer() if gl_reason is None else f"not run: {gl_reason}"
    print(json.dumps(result["machine"]), flush=True)

    # Rendering alone: threads in one process, then worker processes (one thread each).
    n_views = 4 * args.batch
    pts = views(n_views)
    thread_counts = sorted({1, min(4, cores), min(8, cores), cores})
    for threads in thread_counts:
        renderer = semkit.Renderer("embree", image_size=args.image_size, threads=threads)
        rate = n_views / median_seconds(lambda: renderer.render(mesh, pts), args.repeats)
        result["render"].append({"backend": "embree", "how": f"{threads} threads, one process", "threads": threads,
                                 "processes": 1, "per_s": rate})
        print(f"render {threads:2d} threads: {rate:8.1f} views/s", flush=True)
    for processes in sorted({cores}):
        with ProcessPoolExecutor(processes, initializer=_worker_init, initargs=(args.mesh, args.image_size)) as pool:
            shards = np.array_split(pts, 4 * processes)
            rate = n_views / median_seconds(lambda: list(pool.map(_worker_render, shards)), args.repeats)
        result["render"].append({"backend": "embree", "how": f"{processes} processes, one thread each", "threads": 1,
                                 "processes": processes, "per_s": rate})
        print(f"render {processes:2d} processes: {rate:8.1f} views/s", flush=True)
    embree_rows = [r for r in result["render"] if r["backend"] == "embree" and r["processes"] == 1]
    best_threads = max(embree_rows, key=lambda r: r["per_s"])["threads"]
    gl_renderer = None
    if gl_reason is None:
        gl_renderer = semkit.Renderer("gl", image_size=args.image_size)
        rate = n_views / median_seconds(lambda: gl_renderer.render(mesh, pts), args.repeats)
        result["render"].append({"backend": "gl", "how": f"gl ({result['machine']['gl']}), batches shaded in torch",
                                 "threads": cores, "processes": 1, "per_s": rate})
        print(f"render gl: {rate:8.1f} views/s", flush=True)
    else:
        print(f"gl backend {gl_reason}", flush=True)

    renderer = semkit.Renderer("embree", image_size=args.image_size, threads=best_threads)
    images = renderer.render(mesh, views(args.batch, seed=1))
    for name in args.networks.split(","):
        classifier = network(name, device)
        x = images.to(device)
        with torch.inference_mode():
            rate = args.batch / median_seconds(lambda c=classifier: c(x), args.repeats, sync)
        result["classify"].append({"network": classifier.name, "batch": args.batch, "per_s": rate})
        print(f"classify {classifier.name}: {rate:8.1f} images/s", flush=True)

        fastest = gl_renderer if gl_renderer is not None else renderer
        runs = [(renderer, True, classifier), (renderer, False, classifier)]
        runs += [(gl_renderer, True, classifier)] if gl_renderer is not None else []
        if name != "resnet50":  # bfloat16: another network as far as answers go, so its own row, with its agreement
            runs.append((fastest, True, semkit.load_classifier(name, device=device, precision="bfloat16")))
        tops = {}
        for map_renderer, pipeline, net in runs:
            f = semkit.SemanticFunction(mesh, net, label=703, renderer=map_renderer, batch_size=args.batch,
                                        pipeline=pipeline, cache_size=0)  # repeated maps: every point rendered again
            run = lambda: semkit.semantic_map(f, step=args.step, chunk_size=8 * args.batch, progress=False)  # noqa: E731
            ds = run()
            seconds = median_seconds(run, args.repeats, sync)
            points = int(ds.score.size)
            row = {"network": classifier.name, "precision": net.precision, "backend": map_renderer.backend_name,
                   "pipeline": pipeline, "points": points, "seconds": seconds, "per_s": points / seconds,
                   "top1_rate": float(ds.correct.mean())}
            if net.precision == "float32":
                tops[map_renderer.backend_name] = ds.top1.values
            else:
                row["top1_agreement"] = float((ds.top1.values == tops[map_renderer.backend_name]).mean())
            result["map"].append(row)
            print(f"map {classifier.name} {net.precision} {map_renderer.backend_name} pipeline={pipeline}: {points} points "
                  f"in {seconds:.2f} s = {points / seconds:8.1f} points/s", flush=True)
        del classifier, runs
        if device.startswith("cuda"):
            torch.cuda.empty_cache()

    result["study"] = study_row(args, device, sync)
    Path(args.json).write_text(json.dumps(result, indent=1))
    Path(args.markdown).write_text(markdown(result))
    print(f"wrote {args.json} and {args.markdown}")


def study_row(args, device: str, sync) -> dict:
    """A study of ``--study-shapes`` ShapeNet shapes x the 3 bundled networks on the device, the renderer chosen by
    ``backend="auto"`` (gl where EGL draws on an NVIDIA GPU), each view rendered once for the 3 networks."""
    import time

    paths = sorted(str(p) for p in SHAPENET.glob("*/*/models/model_normalized.obj"))[: args.study_shapes]
    networks = [semkit.load_classifier(n, device=device) for n in ("efficientnet_lite0", "efficientnet_lite1",
                                                                     "efficientnet_lite2")]
    kind = semkit.Maps(step=args.study_step)
    start = time.perf_counter()
    maps = semkit.study(paths, networks, kind, image_size=args.image_size, progress=False)
    sync()
    seconds = time.perf_counter() - start
    views = int(maps.score.isel(network=0).size)
    row = {"shapes": len(paths), "networks": len(networks), "step": args.study_step, "views": views,
           "classifications": views * len(networks), "seconds": seconds, "views_per_s": views / seconds,
           "classifications_per_s": views * len(networks) / seconds, "backend": semkit.Renderer().backend_name}
    print(f"study {len(paths)} shapes x {len(networks)} networks: {views} views in {seconds:.1f} s "
          f"({row['classifications_per_s']:.0f} classifications/s, {row['backend']})", flush=True)
    return row


def markdown(result: dict) -> str:
    m = result["machine"]
    best_render = max(result["render"], key=lambda r: r["per_s"])
    threaded = max((r for r in result["render"] if r["processes"] == 1 and r["backend"] == "embree"), key=lambda r: r["per_s"])
    gl = next((r for r in result["render"] if r["backend"] == "gl"), None)
    lines = [
        f"Measured {m['date']} on: {m['gpu']}; CPU: {m['cpu']}, {m['cores']} cores; Python {m['python']}, torch {m['torch']}, "
        f"semkit {m['semkit']}; OpenGL: {m['gl']}. Command: `python benchmarks/gpu.py` (medians of {result['settings']['repeats']} runs "
        f"after a warm-up; {result['settings']['image_size']} px, batches of {result['settings']['batch']}).",
        "",
        "| stage | how | per second |",
        "|---|---|---|",
    ]
    lines += [f"| render ({r['backend']}) | {r['how']} | {r['per_s']:.0f} views |" for r in result["render"]]
    lines += [f"| classify on the device | {c['network']}, batches of {c['batch']} | {c['per_s']:.0f} images |"
              for c in result["classify"]]
    lines += [
        f"| semantic_map, {r['points']} points | {r['network']}"
        f"{', ' + r['precision'] if r.get('precision', 'float32') != 'float32' else ''}, {r['backend']}, "
        f"{'rendering overlapped' if r['pipeline'] else 'stages back to back'} | {r['per_s']:.0f} points |"
        for r in result["map"]
    ]
    lines.append("")
    full = [r for r in result["map"] if r.get("precision", "float32") == "float32"]
    for name in dict.fromkeys(r["network"] for r in full):
        best = max((r for r in full if r["network"] == name), key=lambda r: r["per_s"])
        classify = next(c["per_s"] for c in result["classify"] if c["network"] == name)
        render = gl if best["backend"] == "gl" else threaded
        floor = min(render["per_s"], classify)
        study_min = STUDY_POINTS / best["per_s"] / 60
        lines.append(
            f"* {name}: the map ran at {best['per_s']:.0f} points/s at best ({best['backend']}), {best['per_s'] / floor:.0%} "
            f"of the slower stage alone ({'rendering' if render['per_s'] <= classify else 'the network'}, {floor:.0f}/s); at that rate "
            f"the paper's study ({STUDY_POINTS:,} points) takes {study_min:.0f} minutes on one such machine."
        )
    for r in result["map"]:
        if "top1_agreement" in r:
            lines.append(
                f"* {r['network']} in {r['precision']} (PyTorch autocast, {r['backend']}): {r['per_s']:.0f} points/s; its "
                f"top-1 answer equals float32's at {r['top1_agreement']:.1%} of the map's points (a lower precision "
                "changes answers: results and stores record it).")
    st = result.get("study")
    if st:
        lines.append(
            f"* A study of {st['shapes']} ShapeNet shapes x {st['networks']} networks (Lite0, Lite1, Lite2; step "
            f"{st['step']:g} degrees; renderer by auto: {st['backend']}): {st['views']} views, each rendered once for the "
            f"three networks, in {st['seconds']:.1f} s, {st['classifications_per_s']:.0f} classifications/s; at that rate the "
            f"paper's study ({STUDY_POINTS:,} classifications) takes {STUDY_POINTS / st['classifications_per_s'] / 60:.1f} minutes."
        )
    lines.append(
        f"* Rendering peaked at {best_render['per_s']:.0f} views/s ({best_render['how']}); in one process "
        f"{threaded['per_s']:.0f} views/s with {threaded['threads']} threads"
        + (f"; gl {gl['per_s']:.0f} views/s, {gl['per_s'] / threaded['per_s']:.2f}x embree's best in one process." if gl else ".")
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
