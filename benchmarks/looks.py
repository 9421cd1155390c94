"""Measure how the look of a render changes recognition: white on black, materials on black, on grey.

For every mesh of the ShapeNet sample (and the built-in gallery), each
bundled network classifies 12 azimuths (0, 30, ..., 330 degrees) at
elevation 30, at its native input size, in three looks: the paper's white
object on black, the mesh's own materials (Kd and textures) on black, and
the materials on a grey (0.5) background. Criterion: top-1 is the mesh's
ImageNet class. Rewrites docs/looks.md.

    python benchmarks/looks.py            # all meshes
    python benchmarks/looks.py --limit 2  # two meshes per class, to check it runs
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

import semkit
from semkit import gallery
from semkit.scene.shapenet import ShapeNet

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "looks.md"
SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
AZIMUTHS = np.arange(0.0, 360.0, 30.0)
ELEVATION = 30.0
LOOKS = {
    "white on black": {},
    "materials on black": {"materials": True},
    "materials on grey": {"materials": True, "background": 0.5},
}
BOOTSTRAP = 2000


def rates(meshes: list[tuple[str, semkit.Mesh]], networks: dict[str, semkit.Classifier]) -> dict:
    """Top-1 rate over the views, per (network, look), one value per mesh."""
    out = {(n, look): [] for n in networks for look in LOOKS}
    for _, mesh in tqdm(meshes, desc="meshes"):
        for name, classifier in networks.items():
            for look, options in LOOKS.items():
                renderer = semkit.Renderer(image_size=classifier.input_size, **options)
                f = semkit.SemanticFunction(mesh, classifier, renderer=renderer)
                ev = f.evaluate({"azimuth": AZIMUTHS, "elevation": ELEVATION})
                out[name, look].append(float(np.mean(ev.top1 == mesh.label)))
    return {key: np.array(values) for key, values in out.items()}


def interval(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the mean over meshes."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (BOOTSTRAP, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def table(title: str, meshes: list[tuple[str, semkit.Mesh]], result: dict, networks: list[str]) -> list[str]:
    groups = sorted({group for group, _ in meshes})
    lines = [
        f"## {title}",
        "",
        "Mean top-1 rate over meshes, in brackets its 95% bootstrap interval over meshes "
        f"({BOOTSTRAP} resamples); per class (or shape), the mean only.",
        "",
        "| network | look | all (" + str(len(meshes)) + " meshes) | " + " | ".join(groups) + " |",
        "|---|---|---|" + "---|" * len(groups),
    ]
    which = np.array([group for group, _ in meshes])
    for name in networks:
        for look in LOOKS:
            values = result[name, look]
            low, high = interval(values)
            per_group = " | ".join(f"{values[which == g].mean():.0%}" for g in groups)
            lines.append(f"| {name} | {look} | {values.mean():.0%} ({low:.0%}-{high:.0%}) | {per_group} |")
    lines.append("")
    for name in networks:
        change = np.abs(result[name, "materials on black"] - result[name, "white on black"])
        grey = np.abs(result[name, "materials on grey"] - result[name, "white on black"])
        lines.append(
            f"- {name}: per mesh, the rate moves from the white look by up to {change.max():.2f} "
            f"(mean {change.mean():.2f}) with materials on black, up to {grey.max():.2f} (mean {grey.mean():.2f}) on grey."
        )
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="meshes per ShapeNet class (default: all)")
    args = parser.parse_args()
    if not SHAPENET.is_dir():
        raise SystemExit(f"the ShapeNet sample is not at {SHAPENET} (set SEMKIT_SHAPENET)")
    networks = {name: semkit.load_classifier(name) for name in semkit.BUNDLED}
    shapenet = ShapeNet(SHAPENET)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="skipping ShapeNet entry")  # listed in shapenet.missing
        sample = [(cls, mesh) for cls in shapenet.classes for mesh in shapenet.meshes(cls, limit=args.limit)]
    shapes = [(mesh.name, mesh) for mesh in gallery.meshes()]
    textured = sum(mesh.materials is not None and mesh.materials.textured for _, mesh in sample)
    names = list(networks)
    result = rates(sample, networks)
    shape_result = rates(shapes, networks)
    views = len(AZIMUTHS)
    queries = (len(sample) + len(shapes)) * len(networks) * len(LOOKS) * views
    lines = [
        "# Recognition under three looks",
        "",
        "How often each bundled network recognises a mesh (top-1 = the mesh's ImageNet class) over "
        f"{views} azimuths (0, 30, ..., 330 degrees) at elevation {ELEVATION:g}, rendered at the network's "
        "input size (embree, 2x supersampling) in three looks: the paper's white object on black "
        "(`Renderer()`), the mesh's own materials on black (`Renderer(materials=True)`: Kd and textures), "
        "and the materials on grey 0.5 (`Renderer(materials=True, background=0.5)`). "
        f"ShapeNet sample: {len(sample)} meshes ({textured} textured), the gallery: {len(shapes)} shapes "
        f"(part colours as materials). Cost: {queries} renders and classifications.",
        "",
    ]
    lines += table("ShapeNet sample", sample, result, names)
    lines += table("Gallery", shapes, shape_result, names)
    lines += [
        f"Measured {datetime.date.today()} on {platform.machine()}, semkit {semkit.__version__}"
        + (f", {args.limit} meshes per class" if args.limit else "")
        + ". Regenerate with `python benchmarks/looks.py`.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
