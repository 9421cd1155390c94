"""The paper's released maps (its checkpoint/ folder) read by semkit.open as a map study.

The files are small synthetic ones in the paper's format (torch-saved dicts of xx, yy, z, class_nb, shape_id,
network_name, <Network>/<class>/<object>/map.pt), written here both with tensors and, as the paper's code did,
with numpy arrays in torch's legacy format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import semkit
from semkit.store import StoreError
from semkit.store.paper import read_paper_maps

AZIMUTH = np.arange(0, 360, 3)
ELEVATION = np.arange(-10, 90, 3)
NETWORKS = ("ResNet50", "Inceptionv3")
CLASSES = (0, 8)  # aeroplane (ImageNet 404, airliner), vase (883)
OBJECTS = (0, 1)


def shape_id(c: int, o: int) -> str:
    return f"{c:02d}{o:02d}abcdef"


def paper_map(network: str, c: int, o: int, tensors: bool = True, azimuth=AZIMUTH, elevation=ELEVATION) -> dict:
    """One map as the paper saves it: z [elevations, azimuths] from a generator seeded by the pair."""
    xx, yy = np.meshgrid(azimuth, elevation)
    z = np.random.default_rng([NETWORKS.index(network) if network in NETWORKS else 9, c, o]).random(xx.shape)
    z = z.astype(np.float32)
    if tensors:
        xx, yy, z = torch.from_numpy(xx), torch.from_numpy(yy), torch.from_numpy(z)
    return {"xx": xx, "yy": yy, "z": z, "class_nb": c, "shape_id": shape_id(c, o), "network_name": network}


def write_folder(root, tensors: bool = True, skip=()):
    """2 networks x 2 classes x 2 objects; ``skip`` (network, class, object) left out."""
    for network in NETWORKS:
        for c in CLASSES:
            for o in OBJECTS:
                if (network, c, o) in skip:
                    continue
                path = root / network / str(c) / str(o) / "map.pt"
                path.parent.mkdir(parents=True)
                torch.save(paper_map(network, c, o, tensors), path, _use_new_zipfile_serialization=tensors)
    return root


def test_the_study_holds_exactly_what_the_files_hold(tmp_path):
    study = semkit.open(write_folder(tmp_path / "checkpoint"))
    assert study["score"].dims == ("network", "shape", "azimuth", "elevation")
    assert study.network.values.tolist() == sorted(NETWORKS)  # the folders, in order
    names = [f"{name}/{shape_id(c, o)}" for c, name in zip(CLASSES, ("aeroplane", "vase")) for o in OBJECTS]
    assert study.shape.values.tolist() == names
    assert study.label.values.tolist() == [404, 404, 883, 883]
    assert study.label_name.values.tolist() == ["airliner", "airliner", "vase", "vase"]
    np.testing.assert_array_equal(study.azimuth, AZIMUTH)
    np.testing.assert_array_equal(study.elevation, ELEVATION)
    for network in NETWORKS:
        for j, (c, o) in enumerate((c, o) for c in CLASSES for o in OBJECTS):
            written = paper_map(network, c, o, tensors=False)["z"].T  # [azimuth, elevation]
            np.testing.assert_array_equal(study.score.sel(network=network).isel(shape=j).values, written)
    assert study.score.dtype == np.float32
    assert study.azimuth.attrs == {"units": "deg", "periodic": 1, "valid_range": [0.0, 360.0]}
    assert study.elevation.attrs == {"units": "deg", "periodic": 0, "valid_range": [-10.0, 90.0]}
    assert study.semkit.space == semkit.Space.paper() and study.semkit.kind == "map"
    assert "paper's renderer" in study.attrs["origin"] and "networks" in study.attrs["origin"]
    assert "score >= t" in study.attrs["note"] and study.attrs["source"] == str((tmp_path / "checkpoint").resolve())
    assert "top1" not in study and "correct" not in study


def test_the_papers_own_format_numpy_arrays_in_torchs_legacy_files_reads_the_same(tmp_path):
    tensors = semkit.open(write_folder(tmp_path / "a"))
    arrays = semkit.open(write_folder(tmp_path / "b", tensors=False))
    np.testing.assert_array_equal(tensors.score, arrays.score)
    assert tensors.shape.values.tolist() == arrays.shape.values.tolist()


def test_networks_compared_and_robust_accuracy_on_the_papers_maps(tmp_path):
    study = semkit.open(write_folder(tmp_path / "checkpoint"))
    comparison = semkit.compare_networks(study, criterion=["score >= 0.5", "score >= 0.9"], radius=(0, 6),
                                         n_resamples=50, progress=False)
    accuracy = comparison["mean"].sel(criterion="score >= 0.5", metric="accuracy over the space")
    for network in NETWORKS:  # an independent computation: the share of views with z >= 0.5, mean over shapes
        z = [paper_map(network, c, o, tensors=False)["z"] for c in CLASSES for o in OBJECTS]
        assert accuracy.sel(network=network).item() == pytest.approx(np.mean([(m >= 0.5).mean() for m in z]))
    robust = semkit.robust_accuracy(study, [0, 6], criterion="score >= 0.5")
    np.testing.assert_allclose(robust.sel(radius=0).mean("shape"), accuracy.sel(network=robust.network))
    with pytest.raises(ValueError, match="criterion='score >= t'"):
        semkit.compare_networks(study, progress=False)  # no top-1 in the paper's maps


def test_a_network_lacking_a_shape_is_nan_there_with_a_warning_naming_it(tmp_path):
    folder = write_folder(tmp_path / "checkpoint", skip={("Inceptionv3", 8, 1)})
    with pytest.warns(UserWarning, match=f"1 map\\(s\\) missing .*Inceptionv3: vase/{shape_id(8, 1)}"):
        study = semkit.open(folder)
    assert np.isnan(study.score.sel(network="Inceptionv3", shape=f"vase/{shape_id(8, 1)}")).all()
    assert not np.isnan(study.score.sel(network="ResNet50")).any()
    assert study.attrs["missing_maps"] == f"Inceptionv3: vase/{shape_id(8, 1)}"


def test_an_empty_folder_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="neither a .zarr store nor the paper's checkpoint/ folder"):
        semkit.open(tmp_path / "empty")
    with pytest.raises(StoreError, match="holds no paper maps.*<Network>/<class>/<object>/map.pt"):
        read_paper_maps(tmp_path / "empty")


def test_a_map_of_another_grid_is_named(tmp_path):
    folder = write_folder(tmp_path / "checkpoint")
    bad = folder / "VGG" / "0" / "0" / "map.pt"
    bad.parent.mkdir(parents=True)
    torch.save(paper_map("VGG", 0, 0, azimuth=np.arange(0, 360, 5)), bad)
    with pytest.raises(StoreError, match=r"VGG/0/0/map.pt holds another grid \(72 azimuths x 34 elevations.*"
                                         r"\(120 x 34.*Remove the maps of the other grid"):
        semkit.open(folder)


@pytest.mark.parametrize("case, content, fragment", [
    ("not a torch file", b"these are not the paper's maps", "is not a paper map semkit can read"),
    ("a torch file of something else", {"weights": torch.zeros(3)}, "it lacks xx, yy, z, class_nb"),
    ("z of another shape than xx", {**paper_map("VGG", 0, 0), "z": torch.zeros(120, 34)},
     "xx, yy and z differ in shape"),
    ("z of no probabilities", {**paper_map("VGG", 0, 0), "z": torch.full((34, 120), 3.0)}, "outside \\[0, 1\\]"),
    ("a class the paper does not have", {**paper_map("VGG", 0, 0), "class_nb": 12}, "not one of the paper's 10"),
])
def test_a_bad_map_file_is_named_with_what_is_wrong(tmp_path, case, content, fragment):
    path = tmp_path / "checkpoint" / "VGG" / "0" / "0" / "map.pt"
    path.parent.mkdir(parents=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(StoreError, match=fragment) as error:
        semkit.open(tmp_path / "checkpoint")
    assert "VGG/0/0/map.pt" in str(error.value), case


class _Plants:
    """Pickles as a call of os.makedirs: a file that would run code when loaded."""

    def __init__(self, where):
        self.where = str(where)

    def __reduce__(self):
        import os

        return os.makedirs, (self.where,)


def test_a_map_file_that_would_run_code_is_refused_and_runs_none(tmp_path):
    path = tmp_path / "checkpoint" / "VGG" / "0" / "0" / "map.pt"
    path.parent.mkdir(parents=True)
    planted = tmp_path / "planted"
    torch.save({**paper_map("VGG", 0, 0), "extra": _Plants(planted)}, path)
    with pytest.raises(StoreError, match="semkit runs no code from a file"):
        semkit.open(tmp_path / "checkpoint")
    assert not planted.exists()


def test_one_shape_with_two_ids_across_networks_is_refused(tmp_path):
    folder = write_folder(tmp_path / "checkpoint")
    other = paper_map("Inceptionv3", 0, 1)
    torch.save({**other, "shape_id": "another"}, folder / "Inceptionv3" / "0" / "1" / "map.pt")
    with pytest.raises(StoreError, match="mixes two sets of shapes"):
        semkit.open(folder)


def test_the_benchmark_notebook_reads_the_papers_folder_and_judges_its_claim(tmp_path, monkeypatch):
    """Notebook 06 with paper_maps: all four of the paper's networks in its table (with the SRVR of their regions),
    and the claim judged per criterion."""
    import papermill
    import pandas as pd

    classes = _paper_classes(monkeypatch)
    root = tmp_path / "checkpoint"
    for n, network in enumerate(("AlexNet", "Inceptionv3", "ResNet50", "VGG")):
        for c in CLASSES:
            for o in range(3):
                m = paper_map(network, c, o)
                m["z"] = torch.clamp(m["z"] * (0.4 + 0.2 * n), 0, 1)  # the networks differ
                path = root / network / str(c) / str(o) / "map.pt"
                path.parent.mkdir(parents=True)
                torch.save(m, path)
                torch.save(paper_regions(classes, c, o, shift=n), path.with_name("optim.pt"),
                           _use_new_zipfile_serialization=False)
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    out = tmp_path / "out"
    papermill.execute_notebook(notebooks / "06_benchmark.ipynb", tmp_path / "06.ipynb", cwd=notebooks,
                               parameters={"smoke": True, "paper_maps": str(root), "out": str(out),
                                           "figures": str(tmp_path / "figures"), "max_queries": 0},
                               progress_bar=False, kernel_name="python3")
    table = pd.read_csv(out / "benchmark_paper.csv")
    assert set(table.network) == {"AlexNet", "Inceptionv3", "ResNet50", "VGG"}
    assert {"rank", "rank_low", "rank_high"} <= set(table.columns)
    assert {"SRVR naive", "SRVR OIR_B", "SRVR OIR_W"} <= set(table.metric)  # the paper's own regions
    printed = (tmp_path / "06.ipynb").read_text()
    assert "Inceptionv3 is more accurate but less semantically robust than ResNet50" in printed
    assert "score >= 0.5: the claim" in printed


# ------------------------------------------------------------ the paper's regions (optim.pt)
class _PaperClass:
    """Stands in for the paper's classes when pickling (pickled by module and name, as the paper's code did)."""


def _paper_classes(monkeypatch):
    """Modules named as the paper's (scale_robustness.n_interval, interval.interval) so that pickle writes those names."""
    import sys
    import types

    classes = {}
    for module, name in (("scale_robustness", "n_interval"), ("interval", "interval")):
        mod = types.ModuleType(module)
        cls = type(name, (_PaperClass,), {"__module__": module})
        setattr(mod, name, cls)
        monkeypatch.setitem(sys.modules, module, mod)
        classes[name] = cls
    return classes


def paper_regions(classes, c: int, o: int, shift: float = 0.0) -> dict:
    """One optim.pt as the paper saves it: per algorithm the n_interval of each start (bounds a, b), its traces."""
    starts = [np.array([130, 30]), np.array([50, 20]), np.array([200, 15]), np.array([310, 50])]
    out = {"initial_point": starts, "class_nb": c, "shape_id": shape_id(c, o), "network_name": "VGG"}
    for k, name in enumerate(("naive", "OIR_B", "OIR_W")):
        records = []
        for s, x in enumerate(starts):
            r = classes["n_interval"]()
            half = np.array([5.0 * (k + 1) + s + shift, 2.0 * (k + 1)])
            r.__dict__.update(n=2, a=x - half, b=x + half, region=[classes["interval"](), classes["interval"]()])
            records.append(r)
        out[name] = {"regions": records, "loss_trace": [[0.5] * (10 + k)] * 4,
                     "optim_trace": [[(x - 1.0, x + 1.0)] * 10 for x in starts] if name == "naive" else [[]] * 4}
    return out


def test_the_papers_regions_read_with_nothing_of_theirs_run(tmp_path, monkeypatch):
    classes = _paper_classes(monkeypatch)
    folder = write_folder(tmp_path / "checkpoint", tensors=False)
    for n, network in enumerate(NETWORKS):
        for c in CLASSES:
            for o in OBJECTS:
                torch.save(paper_regions(classes, c, o, shift=n), folder / network / str(c) / str(o) / "optim.pt",
                           _use_new_zipfile_serialization=False)
    monkeypatch.delitem(__import__("sys").modules, "scale_robustness")  # the reader imports none of the paper's code
    regions = semkit.store.read_paper_regions(folder)
    maps = semkit.open(folder)
    assert regions.lower.dims == ("network", "shape", "start", "algorithm", "param")
    assert regions.shape.values.tolist() == maps.shape.values.tolist()  # named as the maps, so they match
    assert regions.algorithm.values.tolist() == ["naive", "oir_b", "oir_w"]
    one = regions.sel(network="ResNet50", shape=f"vase/{shape_id(8, 1)}", algorithm="oir_b")  # ResNet50: shift 0
    np.testing.assert_allclose(one.upper.values - one.lower.values, [[20 + 2 * s, 8] for s in range(4)])
    np.testing.assert_allclose(one.start_point.values, [[130, 30], [50, 20], [200, 15], [310, 50]])
    assert one.iterations.values.tolist() == [11] * 4
    # boxes past the Space are clipped to it: elevation 50 +- 6 stays inside, 15 - 6 is above -10 too; none here
    assert (regions.lower.sel(param="elevation") >= -10).all() and (regions.upper.sel(param="elevation") <= 90).all()
    s = semkit.srvr(regions)
    assert float(s.sel(network="Inceptionv3").mean()) > float(s.sel(network="ResNet50").mean())  # shifted wider
    comparison = semkit.compare_networks(maps, regions, criterion="score >= 0.5", radius=[0, 6], progress=False)
    assert {"SRVR naive", "SRVR OIR_B", "SRVR OIR_W"} <= {str(m) for m in comparison.metric.values}


def test_a_papers_box_past_its_space_is_clipped_and_kept_as_saved(tmp_path, monkeypatch):
    classes = _paper_classes(monkeypatch)
    path = tmp_path / "checkpoint" / "VGG" / "0" / "0" / "optim.pt"
    path.parent.mkdir(parents=True)
    regions = paper_regions(classes, 0, 0)
    wide = regions["OIR_W"]["regions"][3]
    wide.a, wide.b = np.array([-300.0, -50.0]), np.array([500.0, 150.0])  # wider than a period, past both bounds
    torch.save(regions, path, _use_new_zipfile_serialization=False)
    r = semkit.store.read_paper_regions(tmp_path / "checkpoint").sel(algorithm="oir_w").isel(network=0, shape=0, start=3)
    assert r.lower.values.tolist() == [-300.0, -10.0] and r.upper.values.tolist() == [60.0, 90.0]
    assert r.paper_upper.values.tolist() == [500.0, 150.0]
    assert "1 of 12 reached past it" in semkit.store.read_paper_regions(tmp_path / "checkpoint").attrs["note"]


def test_an_optim_file_that_would_run_code_is_refused_and_runs_none(tmp_path, monkeypatch):
    classes = _paper_classes(monkeypatch)
    path = tmp_path / "checkpoint" / "VGG" / "0" / "0" / "optim.pt"
    path.parent.mkdir(parents=True)
    planted = tmp_path / "planted"
    torch.save({**paper_regions(classes, 0, 0), "extra": _Plants(planted)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(StoreError, match="names (os|posix).makedirs, and semkit runs no code from a file"):
        semkit.store.read_paper_regions(tmp_path / "checkpoint")
    assert not planted.exists()
    with pytest.raises(StoreError, match="holds no paper regions"):
        semkit.store.read_paper_regions(tmp_path / "empty")
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(StoreError, match="is not a paper optim.pt semkit can read"):
        semkit.store.read_paper_regions(tmp_path / "checkpoint")
