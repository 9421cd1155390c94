"""The ``semkit`` command line.

    semkit report [--out figures] [--shape coffee_mug] [--step 5]

``report`` runs the main job on the built-in defaults, offline: the 1-D
semantic map (true-class probability over azimuth at elevation 35, the
paper's 1-D setting) of a gallery shape for every bundled network, saved
as a figure and a CSV table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def report(out: Path, shape: str, step: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm.auto import tqdm

    import semkit
    from semkit import gallery

    mesh = gallery.load(shape)
    space = semkit.Space.paper_1d()
    azimuths = np.arange(0.0, 360.0, step)
    out.mkdir(parents=True, exist_ok=True)
    curves = {}
    for name in tqdm(semkit.BUNDLED, desc=f"1-D maps of {shape}", unit="network"):
        f = semkit.SemanticFunction(mesh, name, space=space)
        curves[name] = f.evaluate(azimuths[:, None])
    label_name = semkit.imagenet_labels()[mesh.label]

    fig, (ax, strip) = plt.subplots(2, 1, figsize=(8, 5.6), height_ratios=[3, 1.1], layout="constrained")
    for name, ev in curves.items():
        line = ax.plot(azimuths, ev.score, label=f"{name} (top-1 in {np.mean(ev.top1 == mesh.label):.0%})")[0]
        correct = ev.top1 == mesh.label
        ax.plot(azimuths[correct], ev.score[correct], "o", ms=3, color=line.get_color())
    ax.set(
        xlim=(0, 360),
        ylim=(0, 1),
        xlabel="azimuth (deg)",
        ylabel=f"P({label_name})",
        title=f"1-D semantic map of the gallery shape '{shape}' at elevation {space.fixed['elevation']:g} deg",
    )
    ax.set_xticks(np.arange(0, 361, 45))
    ax.grid(alpha=0.3)
    ax.legend(title="network (dots: top-1 correct)", fontsize=8, title_fontsize=8, loc="upper right")
    shown = np.arange(0.0, 360.0, 45.0)
    renders = semkit.Renderer(image_size=96).render(mesh, shown[:, None], space)
    strip.imshow(np.concatenate(list(renders.permute(0, 2, 3, 1).numpy()), axis=1))
    strip.set_xticks((np.arange(len(shown)) + 0.5) * 96, [f"{a:g}" for a in shown])
    strip.set_yticks([])
    strip.set_xlabel("renders at these azimuths (deg)")
    path = out / f"azimuth_curve_{shape}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)

    table = out / f"azimuth_curve_{shape}.csv"
    header = "azimuth," + ",".join(f"{n}_score,{n}_top1" for n in curves)
    rows = np.column_stack([azimuths] + [c for ev in curves.values() for c in (ev.score, ev.top1)])
    np.savetxt(table, rows, delimiter=",", header=header, comments="", fmt="%.6g")
    return path


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
        path = report(args.out, args.shape, args.step)
        print(f"wrote {path} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
