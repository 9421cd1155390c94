"""Classification speed of the bundled networks beside an open_clip ViT-B/32 (untrained weights), on the CPU.

    nice -n 10 python benchmarks/networks.py [runs]

Images/s for batches of 16 images at 224 x 224 (random pixels: the speed does
not depend on them), each network with its default engine (ONNX Runtime where
its export is faithful), the median of ``runs`` (default 5) after a warm-up
call that exports it. The ViT-B/32 has random weights (``weights="random"``:
no download) and 1000 ImageNet classes from one prompt template; its speed is
that of the trained network. Prints a Markdown table.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time

import torch

from semkit import load_classifier

NETWORKS = (
    ("efficientnet_lite0", None, {}),
    ("efficientnet_lite1", None, {}),
    ("efficientnet_lite2", None, {}),
    ("open_clip/ViT-B-32", "random", {"templates": ["a photo of a {}."], "progress": False}),
)
BATCH, SIZE = 16, 224


def images_per_second(name: str, weights: str | None, options: dict, runs: int) -> tuple[float, str, int]:
    """(median images/s, the engine that ran, the network's input size)."""
    classifier = load_classifier(name, weights, **options)
    images = torch.rand(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        classifier(images)  # the warm-up: exports to ONNX (kept in $SEMKIT_CACHE)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            classifier(images)
            times.append(time.perf_counter() - start)
    engine = classifier.engines().get((classifier.input_size, classifier.input_size), "torch")
    return BATCH / statistics.median(times), engine, classifier.input_size


def main(runs: int = 5) -> None:
    os.environ.setdefault("SEMKIT_CACHE", tempfile.mkdtemp(prefix="semkit-bench-"))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); batches of {BATCH} at {SIZE} px, median of {runs} runs\n")
    print("| network | weights | input | engine | images/s |")
    print("|---|---|---|---|---|")
    for name, weights, options in NETWORKS:
        rate, engine, size = images_per_second(name, weights, options, runs)
        print(f"| {name} | {weights or 'bundled'} | {size} px | {engine} | {rate:.1f} |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
