"""The ``semkit`` command line.

    semkit report [--out figures] [--shape coffee_mug] [--step 5]

``report`` runs the main job on the built-in defaults, offline: the 1-D
semantic map (true-class probability over azimuth at elevation 35, the
paper's 1-D setting) of a gallery shape for every bundled network, and a
2-D map (azimuth x elevation) of another, saved as figures and netCDF.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def report(out: Path, shape: str, step: float, map_shape: str = "park_bench") -> list[Path]:
    """The 1-D map of ``shape`` for every bundled network, and the 2-D map of ``map_shape`` for the first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import semkit
    from semkit import plot

    out.mkdir(parents=True, exist_ok=True)
    written = []

    curves = semkit.semantic_maps([shape], semkit.BUNDLED, semkit.Space.paper_1d(), step=step)
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(8, 5.8), height_ratios=[3, 1.2], layout="constrained")
    plot.curve(curves.isel(shape=0), hue="network", ax=ax)
    ax.set_title(f"1-D semantic map of the gallery shape '{shape}' at elevation 35 deg")
    f = semkit.SemanticFunction(semkit.gallery.load(shape), semkit.BUNDLED[0], space=semkit.Space.paper_1d())
    plot.render_strip(f, np.arange(0.0, 360.0, 45.0), ax=strip)
    written.append(out / f"azimuth_curve_{shape}.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)
    curves.to_netcdf(out / f"azimuth_curve_{shape}.nc")

    f = semkit.SemanticFunction(semkit.gallery.load(map_shape), semkit.BUNDLED[0])
    grid = semkit.semantic_map(f, step=(2 * step, step), store=out / f"map2d_{map_shape}.nc")
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(8, 6.5), height_ratios=[3, 1.2], layout="constrained")
    plot.heatmap(grid, ax=ax, show_correct=True)
    ax.set_title(f"2-D semantic map: {f.classifier.name} on {map_shape} (black: top-1 correct)")
    plot.render_strip(f, grid.sel(elevation=20, method="nearest"), ax=strip)
    written.append(out / f"map2d_{map_shape}.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="semkit", description="Semantic robustness of image classifiers.")
    commands = parser.add_subparsers(dest="command", required=True)
    rep = commands.add_parser("report", help="run the main job on the built-in defaults (offline)")
    rep.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default: figures)")
    rep.add_argument("--shape", default="coffee_mug", help="gallery shape (default: coffee_mug)")
    rep.add_argument("--step", type=float, default=5.0, help="azimuth step in degrees (default: 5)")
    args = parser.parse_args(argv)

    if args.command == "report":
        from semkit import gallery

        if args.shape not in gallery.names():
            parser.error(f"unknown gallery shape {args.shape!r}; choose one of {gallery.names()}")
        if not 0 < args.step <= 90:
            parser.error("--step must be in (0, 90] degrees")
        start = time.perf_counter()
        paths = report(args.out, args.shape, args.step)
        print(f"wrote {', '.join(map(str, paths))} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
