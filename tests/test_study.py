"""Studies in this process: one schema with single maps and searches, stored and resumed; regions over a stack of
maps, averages, the comparison table, and the one shape resolver."""

import json

import numpy as np
import pytest
import xarray as xr

import semkit
from semkit import gallery

SMALL = {"kind": semkit.Maps(step=(120, 50)), "image_size": 48}


@pytest.fixture(scope="module")
def maps(lite0):
    return semkit.study(["coffee_mug", "vase"], [lite0], progress=False, **SMALL)


def test_a_study_holds_what_single_maps_hold(maps, lite0):
    f = semkit.SemanticFunction(gallery.load("vase"), lite0, renderer=semkit.Renderer(image_size=48))
    single = semkit.semantic_map(f, step=(120, 50), progress=False)
    assert set(maps.data_vars) == set(single.data_vars) == {"score", "top1", "correct"}
    one = maps.sel(network="efficientnet_lite0", shape="vase")
    xr.testing.assert_allclose(one.score.drop_vars(["network", "shape", "label", "label_name"]), single.score, atol=1e-6)
    assert maps.score.attrs == {**single.score.attrs, "long_name": "P(true class)"} and maps.azimuth.attrs == single.azimuth.attrs
    assert maps.label_name.values.tolist() == ["coffee mug", "vase"] and maps.attrs["computed"] == 2
    assert "space" in maps.attrs and "label" not in maps.attrs


def test_a_stored_study_resumes_and_refuses_other_settings(tmp_path, lite0):
    store = tmp_path / "s.zarr"
    work = semkit.Regions(starts=[[30, 20]], algorithms=("naive", "oir_b"), iterations=12, step_rule="faithful")
    args = dict(kind=work, image_size=48, progress=False)
    first = semkit.study(["vase"], [lite0], store=store, **args)
    assert first.attrs["computed"] == 1 and first.lower.dims == ("network", "shape", "start", "algorithm", "param")
    assert {"lower_trace", "upper_trace", "loss", "iterations", "converged", "queries"} <= set(first.data_vars)
    memory = semkit.study(["vase"], [lite0], **args)
    np.testing.assert_allclose(first.upper, memory.upper, rtol=1e-6)
    again = semkit.study(["vase"], [lite0], store=store, **args)
    assert again.attrs["computed"] == 0
    with pytest.raises(ValueError, match="differs in iterations"):
        semkit.study(["vase"], [lite0], store=store, **{**args, "kind": semkit.Regions(**{**vars(work), "iterations": 13})})


def test_regions_over_a_stack_of_maps_and_the_comparison_table(maps):
    regions = semkit.studies.map_regions(maps, [[130, 30], [50, 20]], ("naive", "oir_b"), iterations=30)
    assert regions.lower.dims == ("network", "shape", "start", "algorithm", "param")
    assert regions.label_name.values.tolist() == ["coffee mug", "vase"] and "space" in regions.attrs
    comparison = semkit.compare_networks(maps, regions, radius=(0, 30), n_resamples=200, n_permutations=200)
    assert list(comparison.metric.values) == ["accuracy over the space", "mean score", "robust accuracy r=0",
                                              "robust accuracy r=30", "SRVR naive", "SRVR OIR_B"]
    row = comparison.sel(criterion="top-1 correct", network="efficientnet_lite0")
    assert float(row["mean"].sel(metric="accuracy over the space")) == pytest.approx(float(maps.correct.mean()))
    assert float(row["mean"].sel(metric="robust accuracy r=0")) == pytest.approx(float(maps.correct.mean()))
    assert float(row["mean"].sel(metric="SRVR OIR_B")) == pytest.approx(float(semkit.srvr(regions).sel(algorithm="oir_b").mean()))
    table = semkit.studies.comparison_table(comparison)
    assert table.index.tolist() == ["efficientnet_lite0"] and "[" in table.iloc[0, 0]
    assert (comparison["rank"] == 1).all() and (comparison.rank_low == 1).all() and (comparison.rank_high == 1).all()
    assert comparison.agreement.sizes["ranking"] == comparison.sizes["metric"]  # one network: every tau is NaN


def test_averages_set_their_own_attrs(maps):
    mean = semkit.studies.average(maps)
    assert mean.attrs["mean_over_shape"] == 2 and mean.attrs["label_name"] == "true class"
    assert "top1" not in mean and mean.score.dims == ("network", "azimuth", "elevation")
    vase = semkit.studies.average(maps.sel(shape=["vase"]))
    assert vase.attrs["label_name"] == "vase"


def test_one_shape_resolver(shapenet_root):
    assert semkit.load_shape("vase").label == 883
    path = shapenet_root / "chair" / "341fcdd8a40a2612456cbf78e1e89022" / "models" / "model_normalized.obj"
    by_path = semkit.load_shape(str(path))
    assert by_path.name == "chair/341fcdd8a40a2612456cbf78e1e89022" and by_path.label == 559
    assert semkit.load_shape("chair/341fcdd8a40a2612456cbf78e1e89022", shapenet_root).fingerprint() == by_path.fingerprint()
    assert semkit.load_shape("341fcdd8a40a2612456cbf78e1e89022", shapenet_root).name == by_path.name
    with pytest.raises(FileNotFoundError, match="not a gallery shape"):
        semkit.load_shape("teapot")
    with pytest.raises(ValueError, match="needs a store"):
        semkit.study(["vase"], ["efficientnet_lite0"], scheduler="local")


def test_a_map_study_renders_each_shape_once_for_all_networks(lite0, monkeypatch):
    renders = []
    render = semkit.Renderer.render
    monkeypatch.setattr(semkit.Renderer, "render", lambda r, mesh, p, space=None: renders.append(len(p)) or render(r, mesh, p, space=space))
    ds = semkit.study(["vase"], [lite0, "efficientnet_lite1"], semkit.Maps(step=(120, 50)), progress=False)
    assert sum(renders) == 9  # 3 x 3 views, rendered once for both networks
    settings = json.loads(ds.attrs["settings"])
    assert settings["image_size"] == 240  # the largest input size of the networks
    fs = semkit.SemanticFunctions(gallery.load("vase"), [lite0, "efficientnet_lite1"], renderer=semkit.Renderer(image_size=240))
    together = semkit.semantic_map(fs, step=(120, 50), progress=False)
    np.testing.assert_allclose(ds.score.isel(shape=0).values, together.score.values, atol=1e-6)
    np.testing.assert_array_equal(ds.top1.isel(shape=0).values, together.top1.values)


def test_a_refused_study_leaves_nothing_and_the_corrected_one_runs(tmp_path, lite0):
    store = tmp_path / "r.zarr"
    with pytest.raises(ValueError, match="iterations must be a whole number of at least 1"):
        semkit.study(["vase"], [lite0], semkit.Regions(starts=[[30, 20]], iterations=0), store=store)
    assert not store.exists()
    work = semkit.Regions(starts=[[30, 20]], algorithms=("naive",), iterations=2)
    assert semkit.study(["vase"], [lite0], work, image_size=32, store=store, progress=False).attrs["computed"] == 1


def test_a_spec_is_checked_when_made(lite0):
    Spec = semkit.StudySpec
    for make, error, message in [
        (lambda: semkit.Regions(criterion="top-0", algorithms=("verified",)), ValueError, "top-k needs a whole k"),
        (lambda: semkit.Regions(criterion="top-1"), ValueError, "add 'verified'"),
        (lambda: semkit.Regions(algorithms=()), ValueError, "at least one algorithm"),
        (lambda: semkit.Regions(starts=[]), ValueError, "at least one start"),
        (lambda: semkit.Regions(iterations=2.5), ValueError, "whole number"),
        (lambda: Spec(["vase"], [lite0], "regions", image_size=-1), ValueError, "image_size"),
        (lambda: Spec(["vase"], ["efficientnet_lite9"]), ValueError, "unknown network"),
        (lambda: Spec(["vase"], [lite0], semkit.Maps(step=-10)), ValueError, "positive"),
        (lambda: Spec("vase", [lite0]), TypeError, "shapes is a list"),
        (lambda: Spec(["vase"], [lite0], "movie"), ValueError, "unknown study kind"),
    ]:
        with pytest.raises(error, match=message):
            make()


def test_two_processes_share_a_study_store(tmp_path):
    """A second process on the same store computes only what the first has not claimed."""
    import subprocess
    import sys
    import textwrap

    store = tmp_path / "s.zarr"
    script = textwrap.dedent(f"""
        import semkit
        ds = semkit.study(["coffee_mug", "vase", "water_bottle"], ["efficientnet_lite0"], semkit.Maps(step=(120, 50)),
                          image_size=32, store={str(store)!r}, progress=False)
        print(ds.attrs["computed"])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    computed = [int(p.communicate(timeout=300)[0].split()[-1]) for p in procs]
    assert sum(computed) == 3  # each task computed once, by one of them
    assert int(semkit.open(store).done.sum()) == 3


def test_worst_view_accuracy_of_a_study_joins_the_comparison(maps):
    worst = semkit.studies.worst_view_accuracy(maps, 20, views=2, max_queries=3, progress=False)
    assert worst.dims == ("network", "shape") and ((worst >= 0) & (worst <= 1)).all() and worst.attrs["views"] == 2
    comparison = semkit.compare_networks(maps, metrics={"worst-view accuracy r=20": worst}, radius=0, n_resamples=50,
                                         n_permutations=50, progress=False)
    assert comparison["mean"].isel(criterion=0).sel(metric="worst-view accuracy r=20").item() == pytest.approx(float(worst.mean()))


def test_smoothed_accuracy_of_a_study_is_the_smoothed_networks_certificates(maps):
    """Each (network, shape) share equals what Smoothed.certify says at the same views, and it says it is g's."""
    g_accuracy = semkit.studies.smoothed_accuracy(maps, 5.0, views=2, n=10, progress=False)
    assert g_accuracy.dims == ("network", "shape") and ((g_accuracy >= 0) & (g_accuracy <= 1)).all()
    assert "smoothed network g, not of the network" in g_accuracy.attrs["guarantee"]
    network, shape = str(maps.network.values[0]), str(maps.shape.values[0])
    f = maps.semkit.function(shape=shape, network=network)
    grid = maps.score.isel(network=0, shape=0, drop=True).stack(view=["azimuth", "elevation"])
    views = [list(v) for v in grid.view.values[[0, grid.sizes["view"] - 1]]]
    certificates = semkit.Smoothed(f, 5.0).certify(views, n0=2, n=10, progress=False)
    assert g_accuracy.sel(network=network, shape=shape).item() == pytest.approx(float(certificates.correct.mean()))
    with pytest.raises(ValueError, match="radius must be"):
        semkit.studies.smoothed_accuracy(maps, 5.0, radius=-1, progress=False)
