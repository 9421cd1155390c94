"""Per-shape metrics a benchmark adds to [`compare_networks`][semkit.compare_networks] where the networks themselves are
at hand: the worst-view accuracy (no failing view found near a view), the smoothed network's certified accuracy; decision noise comes from
[`decision_noise`][semkit.decision_noise] on the maps."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..space import recorded_space
from ..trust import Smoothed, find_failures
from ..validation import check_count, check_scalar


def worst_view_accuracy(
    maps: xr.Dataset,
    radius: float,
    *,
    views: int = 4,
    max_queries: int = 20,
    criterion: Criterion | str | None = None,
    random_state: int | None = 0,
    progress: bool = True,
) -> xr.DataArray:
    """Per network and shape, the share of views near which [`find_failures`][semkit.find_failures] finds no failing
    view within +-``radius`` in ``max_queries`` queries.

    The views are ``views`` grid views of the maps, evenly spread over the grid, the same for every network (so
    networks are compared on the same views). A failure found is real; none found proves nothing: this is an upper
    bound of the share of views robust at ``radius``, tighter with more queries. It renders: the networks and shapes
    must load as the maps record them.

    Parameters
    ----------
    maps : Dataset
        A map study with ``network`` and ``shape`` dims (from [`study`][semkit.study]).
    radius : float
        The half-width of each view's box, in the Space's units.
    views : int, default 4
        Views per shape.
    max_queries : int, default 20
        Queries of the network per view, the view included.
    criterion : Criterion or str, optional
        What a view must pass; None: top-1 correct.
    random_state : int or None, default 0
        Draws the searches (the same value, the same answer).
    progress : bool, default True
        Show a progress bar over (network, shape).

    Returns
    -------
    DataArray
        ``worst_view_accuracy`` over (network, shape), in [0, 1]; attrs the radius, views, queries and criterion.

    Raises
    ------
    ValueError
        Maps without ``network`` and ``shape`` dims, counts below 1 or a radius not positive.
    TypeError
        A count or radius that is no number.
    """
    check_count(views, "views")
    check_count(max_queries, "max_queries", what="queries per view")
    radius = check_scalar(radius, "radius", float, low=0, closed="neither", what="in the Space's units")
    criterion = Criterion.resolve(criterion)
    starts = _spread_views(maps, views, "worst_view_accuracy")

    def share(f) -> float:
        found = find_failures(f, starts, radius, criterion=criterion, max_queries=max_queries,
                              random_state=random_state, progress=False)
        return 1 - float(found.failed.mean())

    out = _per_pair(maps, share, "worst views", progress)
    out.name = "worst_view_accuracy"
    out.attrs = {"long_name": f"share of views with no failing view found within +-{radius:g}",
                 "radius": float(radius), "views": len(starts), "max_queries": int(max_queries),
                 "criterion": criterion.name,
                 "guarantee": "none: an upper bound (a failure found is real, none found proves nothing)"}
    return out


def smoothed_accuracy(
    maps: xr.Dataset,
    sigma: float | Sequence[float],
    *,
    radius: float = 0.0,
    views: int = 4,
    n: int = 100,
    criterion: Criterion | str | None = None,
    random_state: int | None = 0,
    progress: bool = True,
) -> xr.DataArray:
    """Per network and shape, the smoothed network's certified accuracy: the share of views where g (the network
    under Gaussian noise of ``sigma`` on the parameters, [`Smoothed`][semkit.Smoothed]) is right with a certified
    radius of at least ``radius`` (units of sigma).

    A certificate of the smoothed network g, not of the network itself (Cohen et al.'s CERTIFY, each true with
    confidence 0.999). The views are ``views`` grid views evenly spread over the grid, the same for every network.
    It renders (``n + n // 5`` noisy views per view): the networks and shapes must load as the maps record them.

    Parameters
    ----------
    maps : Dataset
        A map study with ``network`` and ``shape`` dims (from [`study`][semkit.study]).
    sigma : float or sequence of float
        The noise's standard deviation, in the parameters' units (one, or one per parameter).
    radius : float, default 0.0
        The certified radius a view needs, in units of sigma (0: g right and not abstaining).
    views : int, default 4
        Views per shape.
    n : int, default 100
        Noisy views per view that bound g's answer (``n // 5`` more choose it).
    criterion : Criterion or str, optional
        What a noisy view's answer must pass; None: top-1 correct.
    random_state : int or None, default 0
        Draws the noise (the same value, the same answer).
    progress : bool, default True
        Show a progress bar over (network, shape).

    Returns
    -------
    DataArray
        ``smoothed_accuracy`` over (network, shape), in [0, 1]; attrs sigma, radius, views, n and the guarantee.

    Raises
    ------
    ValueError
        Maps without ``network`` and ``shape`` dims, counts below 1, a negative radius or a sigma not positive (or
        not one per parameter).
    TypeError
        A count, radius or sigma that is no number.
    """
    check_count(views, "views")
    check_count(n, "n", what="noisy views per view")
    radius = check_scalar(radius, "radius", float, low=0, what="units of sigma")
    criterion = Criterion.resolve(criterion)
    starts = _spread_views(maps, views, "smoothed_accuracy")
    recorded_space(maps).per_parameter(sigma, "sigma")  # a bad sigma is named before any render

    def share(f) -> float:
        g = Smoothed(f, sigma, criterion=criterion)
        certificates = g.certify(starts, n0=max(n // 5, 1), n=n, random_state=random_state, progress=False)
        return float((certificates.correct.astype(bool) & (certificates.radius >= radius)).mean())

    out = _per_pair(maps, share, "smoothed network", progress)
    out.name = "smoothed_accuracy"
    out.attrs = {"long_name": f"share of views where the smoothed network g is right with radius >= {radius:g} sigma",
                 "sigma": np.atleast_1d(np.asarray(sigma, dtype=float)).tolist(), "radius": radius,
                 "views": len(starts), "n": int(n), "criterion": criterion.name,
                 "guarantee": "of the smoothed network g, not of the network: each certificate true with confidence 0.999"}
    return out


def _spread_views(maps: xr.Dataset, views: int, what: str) -> list[list[float]]:
    """``views`` grid views of a map study spread evenly over its grid, the same for every network and shape."""
    if not {"network", "shape"} <= set(maps.dims):
        raise ValueError(f"{what} needs maps with 'network' and 'shape' dims (a map study: semkit.study)")
    grid = maps["score"].isel(network=0, shape=0, drop=True).stack(view=[d for d in maps.score.dims
                                                                        if d not in ("network", "shape")])
    picked = np.unique(np.linspace(0, grid.sizes["view"] - 1, views).round().astype(int))
    return [list(v) for v in grid.view.values[picked]]


def _per_pair(maps: xr.Dataset, share, desc: str, progress: bool) -> xr.DataArray:
    """``share(f)`` for the score function f of each (network, shape) of a map study, as a DataArray over them."""
    from tqdm.auto import tqdm

    networks, shapes = [str(n) for n in maps.network.values], [str(s) for s in maps.shape.values]
    out = np.empty((len(networks), len(shapes)))
    pairs = [(i, j) for i in range(len(networks)) for j in range(len(shapes))]
    for i, j in tqdm(pairs, desc=desc, unit="map", disable=not progress):
        out[i, j] = share(maps.semkit.function(shape=shapes[j], network=networks[i]))
    return xr.DataArray(out, dims=("network", "shape"), coords={"network": networks, "shape": shapes})


def benchmark_table(comparison: xr.Dataset):
    """A comparison as one long table: per (criterion, metric, network) the mean over shapes, its interval, the rank
    and the rank interval.

    Parameters
    ----------
    comparison : Dataset
        A comparison from [`compare_networks`][semkit.compare_networks].

    Returns
    -------
    pandas DataFrame
        Indexed by (criterion, metric, network); columns ``mean``, ``ci_low``, ``ci_high``, ``rank``, ``rank_low``,
        ``rank_high``.
    """
    columns = ["mean", "ci_low", "ci_high", "rank", "rank_low", "rank_high"]
    return comparison[columns].to_dataframe()[columns]


def write_benchmark(comparison: xr.Dataset, folder, name: str = "benchmark") -> list:
    """Write a comparison beside a report: ``<name>.csv`` (the [`benchmark_table`][semkit.studies.benchmark_table]),
    ``<name>.md`` (that table, the rankings' agreement and the findings, as Markdown) and ``<name>.nc`` (all of it).

    Parameters
    ----------
    comparison : Dataset
        A comparison from [`compare_networks`][semkit.compare_networks].
    folder : str or path
        Where to write (made when missing).
    name : str, default "benchmark"
        The files' stem.

    Returns
    -------
    list of pathlib.Path
        The three files written.
    """
    from pathlib import Path

    from .compare import findings

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = benchmark_table(comparison)
    paths = [folder / f"{name}.{ext}" for ext in ("csv", "md", "nc")]
    table.to_csv(paths[0])
    agree = comparison["agreement"].to_pandas()
    text = [f"# {comparison.attrs.get('title', 'Networks compared')}", "",
            f"{comparison.attrs['shapes']} shapes; interval: {comparison.attrs['interval']}; rank interval: "
            f"{comparison.attrs['rank_interval']}.", "", _markdown(table.reset_index()), "",
            "## How far the rankings agree (Kendall's tau)", "", _markdown(agree.reset_index()), "",
            "## Paired tests", ""] + [f"* {line}" for line in findings(comparison)]
    paths[1].write_text("\n".join(text) + "\n")
    comparison.to_netcdf(paths[2])
    return paths


def _markdown(frame) -> str:
    """A DataFrame as a Markdown table (numbers to 3 significant digits), without tabulate."""
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    head = [str(c) for c in frame.columns]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in cells])
