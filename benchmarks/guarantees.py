"""What guarantees cost, and whether they hold between lattice points.

    python benchmarks/guarantees.py          (benchmarks/run.py includes its section in docs/benchmarks.md)
    python benchmarks/guarantees.py --audit  (rewrites docs/guarantees.md: the continuous audit on ShapeNet meshes,
                                              and verified boxes on 4-D functions with rare failing pockets)
    python benchmarks/guarantees.py --verified  (seconds, no renders: verified boxes on analytic functions, passing
                                                 everywhere in 2-D, a 3-D cube, 20 4-D pocket functions)

On the benchmark mesh (ShapeNet bench, EfficientNet-Lite0, 224 px, top-1
correct): verified boxes from four correctly classified views with the lattice
certificate in 2-D and 3-D and the sampled certificate in 4-D, their
queries and seconds beside the points of a dense grid at the same
step; then queries to the first failing view within +-10 degrees of
correctly classified views, CMA-ES against random search.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

import semkit
from semkit.trust import Verified


SPACE_3D = semkit.Space({"azimuth": (0, 360), "elevation": (-10, 90), "distance": (2.0, 4.0)}, periodic=["azimuth"])
SPACE_4D = semkit.Space({"azimuth": (0, 360), "elevation": (-10, 90), "distance": (2.0, 4.0), "light_elevation": (0, 90)},
                        periodic=["azimuth"])
SPACES = {
    "2-D lattice": (semkit.Space.paper(), (3.0, 3.0), "lattice"),
    "2-D sampled (default)": (semkit.Space.paper(), (3.0, 3.0), "sampled"),
    "3-D lattice": (SPACE_3D, (3.0, 3.0, 0.1), "lattice"),
    "3-D sampled (default)": (SPACE_3D, (3.0, 3.0, 0.1), "sampled"),
    "4-D sampled (default)": (SPACE_4D, (3.0, 3.0, 0.1, 3.0), "sampled"),
}
SPACE_POCKETS = semkit.Space({"azimuth": (0, 360), "elevation": (-10, 90), "distance": (1.5, 4.0),
                              "light_elevation": (-90, 90)}, periodic=["azimuth"])
#: Fresh continuous views drawn per box by the independent audit.
AUDIT = 400


def grid_points(space: semkit.Space, step) -> int:
    """Points of the Space's dense grid with this spacing (periodic parameters do not repeat their period)."""
    return int(np.prod([len(values) for values in space.grid(step).values()]))


def section(mesh_path: Path) -> list[str]:
    """The section's markdown lines, measured on the ShapeNet bench at ``mesh_path``."""
    mesh = semkit.scene.load_mesh(mesh_path, label=703)
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
        "| space | certificate | step | starts that pass | queries per start (mean, max) | seconds per start | "
        f"box volume / Space (mean) | failing share of {AUDIT} fresh views per box (mean, max) | dense grid at that step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (space, step, certificate) in SPACES.items():
        g = semkit.SemanticFunction(mesh, classifier, space=space)
        starts = np.array([view + [2.732, 60.0] for view in picked])[:, : space.n]
        start = time.perf_counter()
        boxes = semkit.find_regions(g, starts, Verified(certificate=certificate, step=step), space=space,
                                    progress=False).sel(algorithm="verified")
        seconds = time.perf_counter() - start
        volume = semkit.regions.volume_ratio(boxes)
        shares = audit_shares(g, boxes.lower.values, boxes.upper.values, seed=1)
        lines.append(
            f"| {name} ({', '.join(space.names)}) | {certificate} | {', '.join(f'{r:g}' for r in step)} | "
            f"{int(boxes.start_passes.sum())} of {len(starts)} | {float(boxes.queries.mean()):.0f}, "
            f"{int(boxes.queries.max())} | {seconds / len(starts):.1f} | {float(volume.mean()):.4f} | "
            f"{shares.mean():.3f}, {shares.max():.3f} | {grid_points(space, step):,} |"
        )
    lines += [
        "",
        "A lattice box checks every lattice point it claims and nothing between them; the sampled certificate "
        "(the default) bounds the share of failing views by 1% at 95% confidence with fresh uniform samples of the "
        "final box. The audit column draws other fresh views, independent of both.",
        "",
    ]

    starts = np.array(views[:: max(1, len(views) // 8)][:8])
    lines += [
        f"Worst views within +-10 degrees of {len(starts)} correctly classified views (max_queries 200 per start):",
        "",
        "| algorithm | failure found | queries to the first failure (median) | lowest score found (median) | seconds |",
        "|---|---|---|---|---|",
    ]
    for algorithm in ("random", "cmaes"):
        start = time.perf_counter()
        worst = semkit.find_failures(f, starts, 10.0, max_queries=200, algorithm=algorithm, progress=False)
        seconds = time.perf_counter() - start
        hits = worst.queries_to_failure.values[worst.failed.values]
        median = f"{statistics.median(hits):.0f}" if len(hits) else "none found"
        lines.append(f"| {algorithm} | {int(worst.failed.sum())} of {len(starts)} | {median} | "
                     f"{float(np.median(worst.score)):.3f} | {seconds:.0f} |")
    return lines


def audit_shares(f, lower: np.ndarray, upper: np.ndarray, samples: int = AUDIT, seed: int = 0) -> np.ndarray:
    """The failing share (top-1 wrong) of ``samples`` fresh uniform continuous views of each box, by f itself."""
    audited = semkit.trust.audit(f, semkit.Criterion.top1(f.label), lower, upper, space=f.space, n_samples=samples,
                                 confidence=0.95, random_state=seed)
    return np.where(audited["audit_n_samples"] > 0, audited["audit_failures"] / np.maximum(audited["audit_n_samples"], 1), 0.0)


def radius_boxes(radii) -> tuple[np.ndarray, np.ndarray]:
    """The +-radius boxes of a robustness_radius result (clipped at bounded parameters)."""
    space = semkit.Space.from_dict(__import__("json").loads(radii.attrs["space"]))
    boxes = [semkit.trust.radius.radius_box(space, v, np.nan_to_num(r)) for v, r in zip(radii.view.values, radii.radius.values)]
    return np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])


def audit_section(meshes: list[Path], starts_per_mesh: int = 3, network: str = "efficientnet_lite0") -> list[str]:
    """Default verified boxes and radii on real meshes, audited by fresh continuous views; the lattice beside them."""
    from semkit.scene.shapenet import load_file

    classifier = semkit.load_classifier(network)
    rows, shares = [], {"lattice boxes": [], "default boxes": [], "lattice radii": [], "default radii": []}
    queries = {key: [] for key in shares}
    began = time.perf_counter()
    for path in meshes:
        mesh = load_file(path)
        f = semkit.SemanticFunction(mesh, classifier)
        coarse = semkit.semantic_map(f, step=(30, 20), progress=False)
        correct = np.argwhere(coarse.correct.values)
        if not len(correct):
            rows.append(f"| {mesh.name} | none of the 72 views of a 30 x 20 degree map is correct | | | | |")
            continue
        views = np.array([[float(coarse.azimuth[i]), float(coarse.elevation[j])] for i, j in correct])
        starts = views[:: max(1, len(views) // starts_per_mesh)][:starts_per_mesh]
        row = {}
        for certificate, key in (("lattice", "lattice"), ("sampled", "default")):
            boxes = semkit.find_regions(f, starts, Verified(certificate=certificate, step=3),
                                        progress=False).sel(algorithm="verified")
            share = audit_shares(f, boxes.lower.values, boxes.upper.values)
            shares[f"{key} boxes"] += share.tolist()
            queries[f"{key} boxes"] += boxes.queries.values.tolist()
            radii = semkit.robustness_radius(f, starts, step=3, max_steps=5, certificate=certificate,
                                             progress=False)
            lo, hi = radius_boxes(radii)
            r_share = audit_shares(f, lo, hi, seed=2)
            shares[f"{key} radii"] += r_share.tolist()
            queries[f"{key} radii"] += radii.queries.values.tolist()
            row[key] = (share, semkit.regions.volume_ratio(boxes.expand_dims(algorithm=["verified"])).values.ravel(), r_share,
                        radii.radius.values[:, 0])
        lat, dft = row["lattice"], row["default"]
        rows.append(
            f"| {mesh.name} | {len(starts)} | {lat[0].mean():.3f} / {dft[0].mean():.3f} | "
            f"{lat[1].mean():.4f} / {dft[1].mean():.4f} | {lat[2].mean():.3f} / {dft[2].mean():.3f} | "
            f"{np.nanmean(lat[3]):.1f} / {np.nanmean(dft[3]):.1f} |")
    minutes = (time.perf_counter() - began) / 60
    summary = ["| result | boxes | mean failing share | share of boxes at <= 2% | worst | queries per start (mean) |",
               "|---|---|---|---|---|---|"]
    for key, values in shares.items():
        v = np.array(values)
        summary.append(f"| {key} | {len(v)} | {v.mean():.4f} | {np.mean(v <= 0.02):.2f} | {v.max():.3f} | "
                       f"{np.mean(queries[key]):.0f} |")
    return [
        "# Guarantees audited on the continuum",
        "",
        f"`python benchmarks/guarantees.py --audit` rewrites this page ({minutes:.0f} minutes on this 2-core machine). "
        f"{network}, 224 px, criterion top-1 correct, Space.paper() (azimuth x elevation), step 3 degrees. "
        f"On each mesh, up to {starts_per_mesh} starts among the correctly classified views of a 30 x 20 degree map. "
        f"Each box is audited by {AUDIT} fresh uniform continuous views drawn independently of the search; "
        "the failing share is the share of those views whose top-1 answer is wrong. Lattice: "
        "`certificate=\"lattice\"` (every lattice point inside passes); default: `certificate=\"sampled\"` (with "
        "confidence 0.95 at most 1% of the box's views fail). Radii: `max_steps=5`, the +-radius box.",
        "",
        *summary,
        "",
        "Per mesh (lattice / default):",
        "",
        "| mesh | starts | boxes: failing share (mean) | boxes: volume / Space (mean) | radius boxes: failing share (mean) | "
        "radius (azimuth, degrees, mean) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def pocket_function(seed: int, space: semkit.Space = SPACE_POCKETS):
    """A 4-D function passing (0.8) in a box of 25-50% of each range, less three failing pockets of 0.1% of it each."""
    rng = np.random.default_rng(500 + seed)
    lo = space.lower + rng.uniform(0.1, 0.4, 4) * space.widths
    hi = np.minimum(lo + rng.uniform(0.25, 0.5, 4) * space.widths, space.upper)
    side = 0.001**0.25 * (hi - lo)
    pockets = [lo + rng.uniform(0.1, 0.8, 4) * (hi - lo - side) for _ in range(3)]

    def f(p):
        p = np.atleast_2d(p)
        inside = ((p >= lo) & (p <= hi)).all(1)
        for q in pockets:
            inside &= ~((p >= q) & (p <= q + side)).all(1)
        return np.where(inside, 0.8, 0.2)

    return f, lo, hi, lo + rng.uniform(0.3, 0.7, 4) * (hi - lo)


def pocket_section(functions: int = 40) -> list[str]:
    """Default verified boxes (score >= 0.5) on 4-D functions with rare failing pockets, checked by brute force."""
    shares, volumes, queries = [], [], []
    for seed in range(functions):
        f, lo, hi, start = pocket_function(seed)
        box = semkit.find_regions(f, start[None], Verified(random_state=seed), space=SPACE_POCKETS, criterion="score >= 0.5", progress=False).sel(algorithm="verified")
        a, b = box.lower.values[0], box.upper.values[0]
        views = a + np.random.default_rng(seed + 99).random((20000, 4)) * (b - a)
        shares.append((f(views) < 0.5).mean())
        volumes.append(np.prod(b - a) / np.prod(hi - lo))
        queries.append(int(box.queries[0]))
    shares, volumes = np.array(shares), np.array(volumes)
    return [
        "## Rare failing pockets in 4-D",
        "",
        f"{functions} functions of (azimuth, elevation, distance, light elevation) that pass (score 0.8 >= 0.5) in a "
        "box of 25-50% of each range, less three failing pockets of 0.1% of that box each (0.3% in all); default "
        "verified boxes (`criterion=\"score >= 0.5\"`, max_failure 0.01, confidence 0.95, max_queries 5,000) from a "
        "start inside, "
        "each checked by 20,000 uniform views.",
        "",
        "| certificate held (failing share <= 1%) | failing share (mean, max) | volume / the passing box (mean) | "
        "boxes with volume >= 0.5 of it | queries per start (max) |",
        "|---|---|---|---|---|",
        f"| {int((shares <= 0.01).sum())} of {functions} | {shares.mean():.4f}, {shares.max():.4f} | "
        f"{volumes.mean():.2f} | {np.mean(volumes >= 0.5):.2f} | {max(queries):,} |",
        "",
    ]


def verified_section(functions: int = 20) -> list[str]:
    """Verified boxes (score >= 0.5, defaults: max_failure 0.01, confidence 0.95, max_queries 5,000) on analytic
    functions: passing everywhere in 2-D, a 3-D cube grown from its centre, 4-D boxes with rare failing pockets."""
    import warnings

    def boxes(f, start, space, **options):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return semkit.find_regions(f, [start], Verified(**options), space=space, criterion="score >= 0.5",
                                       progress=False).sel(algorithm="verified")

    lines = ["## Verified boxes on analytic functions", "",
             "| case | box / the passing region (volume) | queries | certified |", "|---|---|---|---|"]
    everywhere = lambda p: np.full(len(p), 0.9)  # noqa: E731
    for step in (2, 1):
        box = boxes(everywhere, [100.0, 40.0], semkit.Space.paper(), step=step)
        lines.append(f"| 2-D, passing everywhere, {step}-degree lattice | {float(semkit.regions.volume_ratio(box)[0]):.2f} | "
                     f"{int(box.queries[0]):,} | {int(box.certified[0])} |")
    lo, hi = np.array([100.0, 10, 2]), np.array([160.0, 50, 3])
    for max_queries in (5000, 20000):
        box = boxes(lambda p: np.where(((p >= lo) & (p <= hi)).all(1), 0.9, 0.1), (lo + hi) / 2, SPACE_POCKETS_3D,
                    max_queries=max_queries)
        a, b = box.lower.values[0], box.upper.values[0]
        found = np.prod(np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0, None)) / np.prod(hi - lo)
        lines.append(f"| 3-D cube from its centre, max_queries {max_queries:,} | {found:.2f} | {int(box.queries[0]):,} | "
                     f"{int(box.certified[0])} |")
    held, volumes, queries = 0, [], []
    for seed in range(functions):
        f, lo, hi, start = pocket_function(seed)
        box = boxes(f, start, SPACE_POCKETS, random_state=seed)
        a, b = box.lower.values[0], box.upper.values[0]
        views = a + np.random.default_rng(seed + 99).random((20000, 4)) * (b - a)
        held += (f(views) < 0.5).mean() <= 0.01
        volumes.append(np.prod(b - a) / np.prod(hi - lo))
        queries.append(int(box.queries[0]))
    lines.append(f"| 4-D, {functions} pocket functions (certificate held in {held} of {functions}, by 20,000 views) | "
                 f"{np.mean(volumes):.2f} (mean) | {np.mean(queries):,.0f} (mean), {max(queries):,} (max) | |")
    return lines + [""]


SPACE_POCKETS_3D = semkit.Space({"azimuth": (0, 360), "elevation": (-10, 90), "distance": (1.5, 4.0)},
                                periodic=["azimuth"])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from common import MESH

    if "--verified" in sys.argv:
        print("\n".join(verified_section()))
    elif "--audit" in sys.argv:
        from scale import shapenet_meshes

        text = "\n".join(audit_section(shapenet_meshes(2)) + pocket_section())
        (Path(__file__).parent.parent / "docs" / "guarantees.md").write_text(text)
        print(text)
    else:
        print("\n".join(section(MESH)))
