"""What the explorer costs a person at the keyboard: moves, clicks, the first map, the memory a closed one keeps.

    python benchmarks/explorer.py        (rewrites docs/explorer.md)

On the benchmark mesh (ShapeNet bench) with the three bundled networks at 224 px, widgets without a browser:

* a slider move and a map click, each to the new render and every network's top-5 on screen, against rendering
  that view once and classifying it by every network alone (medians over 15 moves, measured side by side);
* the first 30 x 20 degree map of the shape, for every network (one render per view);
* the memory an explorer keeps once made, used (its widget, 40 moves) and closed: the growth per cycle, after a
  warm-up cycle, of Python's traced heap and of the process's resident set.
"""

from __future__ import annotations

import gc
import platform
import statistics
import sys
import time
import tracemalloc
from datetime import date
from pathlib import Path

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MESH, ROOT  # noqa: E402

from semkit.app import Explorer  # noqa: E402

NETWORKS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
MOVES = 15
CYCLES = 5


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def moves_and_clicks() -> dict[str, float]:
    ex = Explorer([str(MESH)], NETWORKS, step=(30, 20))
    start = time.perf_counter()
    ex.map()
    first_map = time.perf_counter() - start
    box = ex.widget()
    slider, canvas = box.semkit["sliders"]["azimuth"], box.semkit["map"]
    renderer, mesh, space, classifiers = ex.renderer(), ex.meshes[ex.shape], ex.space, ex.classifiers()

    def alone(azimuth: float, elevation: float) -> None:
        with torch.inference_mode():
            images = renderer.render(mesh, space.points({"azimuth": azimuth, "elevation": elevation}), space=space)
            for c in classifiers:
                c(images)

    moves, clicks, baseline = [], [], []
    rng = np.random.default_rng(0)
    for azimuth in np.linspace(10, 350, MOVES):
        azimuth = float(round(azimuth))
        start = time.perf_counter()
        alone(azimuth + 0.5, ex.point["elevation"])
        baseline.append(time.perf_counter() - start)
        start = time.perf_counter()
        slider.value = azimuth
        moves.append(time.perf_counter() - start)
        target = (float(rng.uniform(5, 340)), float(rng.uniform(0, 80)))  # inside the map's axes
        fx, fy = canvas.pixel_of(*target)
        start = time.perf_counter()
        canvas.click(fx, fy)
        clicks.append(time.perf_counter() - start)
        assert abs(ex.point["azimuth"] - target[0]) <= 1 and abs(ex.point["elevation"] - target[1]) <= 1
    ex.close()
    base = statistics.median(baseline)
    return {"first_map": first_map, "views": int(np.prod(ex.map().score.shape)), "baseline": base,
            "move": statistics.median(moves), "click": statistics.median(clicks)}


def cycle() -> None:
    ex = Explorer([str(MESH)], NETWORKS, step=(30, 20), store=ROOT / "reports" / "explorer-bench-maps")
    box = ex.widget()
    slider = box.semkit["sliders"]["azimuth"]
    for azimuth in np.linspace(5, 355, 40):
        slider.value = float(round(azimuth))
    ex.close()
    del ex, box, slider
    gc.collect()


def memory() -> dict[str, float]:
    """Growth per cycle after two warm-up cycles (the store, first-use caches): the resident set first, then the
    Python heap (tracemalloc's own bookkeeping would count in the resident set)."""
    cycle()
    cycle()
    rss0 = rss_mb()
    for _ in range(CYCLES):
        cycle()
    rss = (rss_mb() - rss0) / CYCLES
    tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    for _ in range(CYCLES):
        cycle()
    heap = (tracemalloc.get_traced_memory()[0] - heap0) / CYCLES
    tracemalloc.stop()
    return {"heap": heap / 2**20, "rss": rss}


def main() -> None:
    speed = moves_and_clicks()
    kept = memory()
    ratio_move, ratio_click = speed["move"] / speed["baseline"], speed["click"] / speed["baseline"]
    lines = [
        "# The explorer's costs",
        "",
        f"Measured by `python benchmarks/explorer.py` on {date.today()}, {platform.machine()} with "
        f"{torch.get_num_threads()} torch threads (no GPU), the ShapeNet bench of `benchmarks/common.py`, the "
        f"three bundled networks, 224 px renders, widgets driven without a browser. Medians over {MOVES} moves.",
        "",
        "| what | time | ratio to render + classify alone | target |",
        "|---|---|---|---|",
        f"| render once, classify by the 3 networks (the baseline) | {1000 * speed['baseline']:.0f} ms | 1 | |",
        f"| a slider move: new render and every network's top-5 shown | {1000 * speed['move']:.0f} ms | "
        f"{ratio_move:.2f}x | at most 1.6x |",
        f"| a click on the map: the same | {1000 * speed['click']:.0f} ms | {ratio_click:.2f}x | at most 1.6x |",
        f"| the first 30 x 20 degree map, all 3 networks ({speed['views']} views) | {speed['first_map']:.1f} s | | "
        "within 15 s |",
        "",
        f"Kept per explorer made, used (its widget, 40 moves) and closed, averaged over {CYCLES} cycles after two "
        "warm-up cycles (the target: at most 2 MB; `Explorer.close` hands the freed heap back to the system, "
        "which glibc otherwise keeps):",
        "",
        "| memory | kept per cycle |",
        "|---|---|",
        f"| Python heap (tracemalloc) | {kept['heap']:.2f} MB |",
        f"| resident set (/proc/self/statm) | {kept['rss']:.2f} MB |",
        "",
    ]
    (ROOT / "docs" / "explorer.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
