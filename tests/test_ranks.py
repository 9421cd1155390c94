"""Ranks with rank intervals and the rankings' agreement in compare_networks, on stacked maps built by hand with
known scores."""

import json

import numpy as np
import pytest
import xarray as xr

import semkit
from semkit.studies.ranks import agreement, ranked


def stacked_maps(scores: dict[str, list[float]], seed: int = 0) -> xr.Dataset:
    """A map study over (network, shape, azimuth, elevation): network n's score on shape s is scores[n][s] plus a
    little noise, a view correct where its score is at least 0.5."""
    rng = np.random.default_rng(seed)
    networks, shapes = list(scores), [f"shape{i}" for i in range(len(next(iter(scores.values()))))]
    azimuth, elevation = np.arange(0, 360, 30.0), np.arange(-10, 90, 20.0)
    base = np.array([scores[n] for n in networks], dtype=float)[:, :, None, None]
    score = np.clip(base + rng.normal(0, 0.02, (len(networks), len(shapes), len(azimuth), len(elevation))), 0, 1)
    dims = ("network", "shape", "azimuth", "elevation")
    return xr.Dataset(
        {"score": (dims, score), "correct": (dims, score >= 0.5)},
        coords={"network": networks, "shape": shapes, "azimuth": azimuth, "elevation": elevation},
        attrs={"space": json.dumps(semkit.Space.paper().to_dict())},
    )


def test_a_network_better_on_every_shape_ranks_first_with_interval_one():
    maps = stacked_maps({"A": [0.9, 0.8, 0.95, 0.7, 0.85], "B": [0.3, 0.2, 0.6, 0.1, 0.4]})
    c = semkit.compare_networks(maps, radius=(0, 30), criterion=["top-1", "score >= 0.75"], n_resamples=300,
                                progress=False)
    assert c["rank"].dims == c.rank_low.dims == c.rank_high.dims == ("criterion", "metric", "network")
    a, b = c.sel(network="A"), c.sel(network="B")
    assert (a["rank"] == 1).all() and (a.rank_low == 1).all() and (a.rank_high == 1).all()
    assert (b["rank"] == 2).all() and (b.rank_low == 2).all() and (b.rank_high == 2).all()
    assert "NOT a guarantee" in semkit.compare_networks.__doc__ and "not a guarantee" in c.attrs["rank_interval"]


def test_identical_networks_tie_and_identical_rankings_agree():
    same = [0.9, 0.4, 0.7, 0.6]
    maps = stacked_maps({"A": same, "B": [0.1, 0.2, 0.3, 0.2], "C": same})
    maps["score"].loc[{"network": "C"}] = maps.score.sel(network="A").values
    maps["correct"] = maps.score >= 0.5
    c = semkit.compare_networks(maps, radius=0, criterion=["top-1", "score >= 0.5"], n_resamples=200, progress=False)
    ranks = c["rank"].sel(criterion="top-1 correct", metric="mean score")
    assert ranks.values.tolist() == [1.5, 3.0, 1.5]
    names = c.agreement.ranking.values.tolist()
    assert c.agreement.dims == ("ranking", "other_ranking") and "mean score | top-1 correct" in names
    assert len(names) == c.sizes["criterion"] * c.sizes["metric"]
    np.testing.assert_allclose(np.diag(c.agreement.values), 1.0)
    assert float(c.agreement.sel(ranking="mean score | top-1 correct", other_ranking="mean score | score >= 0.5")) == pytest.approx(1.0)


def test_kendall_tau_of_reversed_rankings_is_minus_one():
    rank = xr.DataArray([[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]], dims=("criterion", "metric", "network"),
                        coords={"criterion": ["c"], "metric": ["up", "down"], "network": ["x", "y", "z"]})
    tau = agreement(rank)
    assert tau.sel(ranking="up | c", other_ranking="down | c") == pytest.approx(-1.0)
    assert tau.sel(ranking="up | c", other_ranking="up | c") == pytest.approx(1.0)
    assert ranked(np.array([0.2, 0.9, 0.2])).tolist() == [2.5, 1.0, 2.5]


def test_ranks_draw_apart_from_the_intervals():
    """The rank bootstrap has its own generator: the intervals and tests are those drawn without it."""
    maps = stacked_maps({"A": [0.9, 0.6, 0.7], "B": [0.5, 0.65, 0.4], "C": [0.2, 0.8, 0.55]})
    one = semkit.compare_networks(maps, radius=(0, 30), n_resamples=100, n_permutations=100, progress=False)
    again = semkit.compare_networks(maps, radius=(0, 30), n_resamples=100, n_permutations=100, progress=False)
    xr.testing.assert_identical(one, again)
    assert ((one.rank_low <= one["rank"]) & (one["rank"] <= one.rank_high)).all()


def test_one_shape_has_ranks_but_no_rank_interval():
    maps = stacked_maps({"A": [0.9], "B": [0.2]})
    with pytest.warns(UserWarning, match="one shape"):
        c = semkit.compare_networks(maps, radius=0, n_resamples=50, progress=False)
    assert c["rank"].sel(network="A").values.tolist() == [[1.0, 1.0, 1.0]] and c.rank_low.isnull().all()


def test_more_metrics_join_the_table_and_decision_noise_ranks_lowest_first():
    maps = stacked_maps({"A": [0.9, 0.8, 0.7], "B": [0.3, 0.2, 0.4]})
    noise = xr.DataArray([[0.1, 0.2, 0.1], [0.5, 0.6, 0.4]], dims=("network", "shape"),
                         coords={"network": ["A", "B"], "shape": maps.shape.values}, name="decision_noise")
    c = semkit.compare_networks(maps, metrics={"decision noise": noise}, radius=0, n_resamples=100, progress=False)
    assert c["mean"].sel(metric="decision noise", network="B").values.tolist() == [pytest.approx(0.5)]
    assert c["rank"].sel(metric="decision noise").values.tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match="over \\(network, shape\\)"):
        semkit.compare_networks(maps, metrics={"bad": noise.isel(shape=0)}, radius=0, progress=False)


def test_the_ranks_plot_is_labelled():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semkit import plot

    maps = stacked_maps({"A": [0.9, 0.6, 0.7], "B": [0.5, 0.65, 0.4], "C": [0.2, 0.8, 0.55]})
    c = semkit.compare_networks(maps, radius=(0, 30), criterion=["top-1", "score >= 0.6"], n_resamples=100,
                                progress=False)
    ax = plot.ranks(c)
    assert ax.get_ylabel().startswith("rank (1 = best)") and "metric | criterion" in ax.get_xlabel()
    assert len(ax.get_xticklabels()) == c.sizes["criterion"] * c.sizes["metric"] and ax.get_ylim()[0] > ax.get_ylim()[1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B", "C"]
    plt.close("all")


def test_a_benchmark_is_written_as_csv_markdown_and_netcdf(tmp_path):
    maps = stacked_maps({"A": [0.9, 0.6, 0.7], "B": [0.5, 0.65, 0.4]})
    c = semkit.compare_networks(maps, radius=(0, 30), n_resamples=50, n_permutations=50, progress=False)
    csv, md, nc = semkit.studies.write_benchmark(c, tmp_path / "r")
    import pandas as pd

    table = pd.read_csv(csv)
    assert list(table.columns) == ["criterion", "metric", "network", "mean", "ci_low", "ci_high", "rank", "rank_low",
                                   "rank_high"] and len(table) == c.sizes["metric"] * 2
    text = md.read_text()
    assert "Kendall's tau" in text and "| criterion | metric | network |" in text and "A minus B" in text
    xr.testing.assert_allclose(xr.open_dataset(nc).load()["rank"], c["rank"])
