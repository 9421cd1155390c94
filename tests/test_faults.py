"""The fault battery: bad input and faults, each with the clear error or warning it must get.

Each row is a case a new user met; the message must name the problem and what to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import semkit
from semkit.trust import Verified
from semkit import Space, gallery
from semkit.store import StoreError

SPACE = Space.paper()
ROOT = Path(__file__).resolve().parents[1]


def cosine(p):
    return np.cos(np.radians(p[:, 0])) ** 2


def small_map():
    return semkit.semantic_map(cosine, space=SPACE, step=30, progress=False)


def regions():
    return semkit.find_regions(cosine, [[10, 10]], ("naive",), space=SPACE, iterations=2, progress=False)


# (case, call, exception, message fragment)
BATTERY = [
    ("a step finer than memory can hold", lambda: SPACE.grid(1e-4), ValueError, "more than the"),
    ("a step wider than the range", lambda: SPACE.grid((3, 200)), ValueError, "wider than its range"),
    ("a threshold that is no probability", lambda: semkit.robustness_radius(cosine, [[0, 0]], space=SPACE, criterion="score >= 5"),
     ValueError, "probability in [0, 1]"),
    ("a label that is not a whole number", lambda: semkit.classify.resolve_label(3.7), ValueError, "integer class index"),
    ("a class index as the network", lambda: semkit.SemanticFunction(gallery.load("vase"), 42), TypeError,
     "network name"),
    ("srvr of a map", lambda: semkit.srvr(small_map()), ValueError, "take region searches"),
    ("check_regions against a map of another Space",
     lambda: semkit.check_regions(regions(), semkit.semantic_map(cosine, space=Space.of("azimuth"), step=30, progress=False)),
     ValueError, "map of the same Space"),
    ("check_regions of a plain function's map, no criterion", lambda: semkit.check_regions(regions(), small_map()),
     ValueError, "pass criterion"),
    ("no starts", lambda: semkit.find_regions(cosine, [], space=SPACE, progress=False), ValueError, "no starts given"),
    ("an unknown criterion", lambda: semkit.Criterion.parse("best"), ValueError, "unknown criterion"),
]


@pytest.mark.parametrize("case, call, error, fragment", BATTERY, ids=[row[0] for row in BATTERY])
def test_bad_input_gets_a_clear_error(case, call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value), f"{case}: {info.value}"


# ------------------------------------------------------------ stores
@pytest.mark.parametrize("a, b", [(100, 200), (100, 110), (30, 31.5), (0, 180), (200, 201), (350, 355)])
def test_plain_functions_of_one_name_never_share_a_store(tmp_path, a, b):
    first = lambda p: (p[:, 0] > a).astype(float)  # noqa: E731  (the same name for both)
    second = lambda p: (p[:, 0] > b).astype(float)  # noqa: E731
    store = tmp_path / "m.nc"
    semkit.semantic_map(first, space=SPACE, step=3, store=store, progress=False)
    with pytest.raises(StoreError, match="Name each function with key="):
        semkit.semantic_map(second, space=SPACE, step=3, store=store, progress=False)


def test_refusals_list_only_real_differences():
    from semkit.store import differences

    assert differences({"renderer": {"background": (0.0, 0.0, 0.0)}}, {"renderer": {"background": [0.0, 0.0, 0.0]}}) == []
    assert differences({"grid": [1, 2]}, {"grid": [1, 3]}) == ["grid"]


def test_a_damaged_journal_is_named_as_damaged(tmp_path):
    store = tmp_path / "m.nc"
    stop = {"n": 0}

    def stopping(p):
        stop["n"] += len(p)
        if stop["n"] > 600:
            raise KeyboardInterrupt
        return cosine(p)

    with pytest.raises(KeyboardInterrupt):
        semkit.semantic_map(stopping, space=SPACE, step=5, store=store, key="cos", chunk_size=50, progress=False)
    (tmp_path / "m.nc.partial" / "settings.json").write_text("{not json")
    with pytest.raises(StoreError, match="is damaged .* delete"):
        semkit.semantic_map(cosine, space=SPACE, step=5, store=store, key="cos", progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_folder_is_named(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    with pytest.raises(PermissionError, match="write permission"):
        semkit.semantic_map(cosine, space=SPACE, step=30, store=folder / "m.nc", key="cos", progress=False)


def test_no_lock_file_is_left_beside_a_store(tmp_path):
    semkit.semantic_map(cosine, space=SPACE, step=30, store=tmp_path / "m.nc", key="cos", progress=False)
    semkit.find_regions(cosine, [[10, 10]], ("naive",), space=SPACE, iterations=2, store=tmp_path / "r.nc", key="cos",
                        progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nc", "r.nc"]


# ------------------------------------------------------------ networks
class OneRow(nn.Module):
    """Returns one row whatever the batch: its answer would be applied to every image."""

    def forward(self, x):
        return torch.zeros(1, 1000)


class Shaped(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return torch.zeros(len(x), *self.shape)


@pytest.mark.parametrize("module, got", [(OneRow(), "(1, 1000)"), (Shaped((10,)), "(4, 10)"), (Shaped(()), "(4,)"),
                                         (Shaped((1000, 1)), "(4, 1000, 1)")])
def test_network_outputs_are_checked_against_one_row_of_classes_per_image(module, got):
    classifier = semkit.Classifier(module, input_size=16, name="odd", engine="torch")
    with pytest.raises(ValueError, match=rf"shape {got.replace('(', '[(]').replace(')', '[)]')} for a batch of 4 .*expected \[4, 1000\]"):
        classifier(torch.zeros(4, 3, 16, 16))


# ------------------------------------------------------------ meshes
@pytest.mark.parametrize("text, warning", [
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nv 1e6 1e6 1e6\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n", "far outlier vertex"),
    ("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "degenerate"),
])
def test_meshes_that_render_as_nothing_warn(tmp_path, text, warning):
    path = tmp_path / "m.obj"
    path.write_text(text)
    with pytest.warns(semkit.scene.mesh.MeshWarning, match=warning):
        semkit.scene.load_mesh(path)


def test_coordinates_near_the_float_limit_normalize(tmp_path):
    path = tmp_path / "big.obj"
    path.write_text("v -1e308 0 0\nv 1e308 0 0\nv 0 1e308 0\nf 1 2 3\n")
    mesh = semkit.scene.load_mesh(path)
    assert np.isfinite(mesh.vertices).all() and np.ptp(mesh.vertices, axis=0).max() == pytest.approx(2)


# ------------------------------------------------------------ Dask paths
def test_relative_mesh_paths_leave_the_client_absolute(tmp_path, monkeypatch):
    import json
    import shutil

    relative = Path("bottle/2db802ef3de3d00618a36258eabc2b9c/models/model_normalized.obj")  # labelled by its class
    source = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample")) / relative
    if not source.exists():
        pytest.skip(f"the ShapeNet sample is not at {source.parents[3]}")
    (tmp_path / relative).parent.mkdir(parents=True)
    shutil.copytree(source.parent, (tmp_path / relative).parent, dirs_exist_ok=True)  # with its materials
    monkeypatch.chdir(tmp_path)
    study = semkit.study([str(relative)], [semkit.load_classifier("efficientnet_lite0")], semkit.Maps(step=(180, 50)), image_size=32,
                         progress=False)
    assert json.loads(study.attrs["settings"])["shapes"] == [str(tmp_path / relative)]


def test_a_worker_without_the_file_is_told_about_shared_file_systems():
    from semkit.studies.tasks import cached_shape

    with pytest.raises(FileNotFoundError, match="shared file system"):
        cached_shape("/nonexistent/folder/model.obj")


# ------------------------------------------------------------ CLI and packaging
def run_cli(capsys, *args) -> tuple[int, str]:
    """The semkit command in this process: its exit status (argparse's too) and what it wrote to stderr."""
    from semkit.app.cli import main

    try:
        status = main(list(args))
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


def test_cli_errors_are_one_line_without_a_traceback(tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text("store: s.zarr\nnetworks: [efficientnet_lite0]\nshapes: [vase]\nstep: 500\n")
    status, err = run_cli(capsys, "sweep", str(config))
    assert status == 2 and "Traceback" not in err and "wider than its range" in err and len(err.strip().splitlines()) == 1
    status, err = run_cli(capsys, "report", "--bogus")
    assert status == 2 and "usage: semkit report" in err and "--bogus" in err
    status, err = run_cli(capsys, "report", "--out", str(tmp_path / "r"), "-p", "netwroks", "[x]")
    assert status == 1 and "unknown notebook parameter(s) ['netwroks']" in err


def test_reports_without_the_notebooks_extra_name_it(monkeypatch, tmp_path):
    from semkit.app.reports import ReportError, run_reports

    monkeypatch.setitem(sys.modules, "papermill", None)
    with pytest.raises(ReportError, match=r'pip install "semkit\[notebooks\]"'):
        run_reports(ROOT / "notebooks", tmp_path)


def test_the_wheel_holds_the_notebooks_and_every_subpackage(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    names = zipfile.ZipFile(next(tmp_path.glob("semkit-*.whl"))).namelist()
    notebooks = sorted(n.split("/")[-1] for n in names if n.startswith("semkit/notebooks/"))
    assert notebooks == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "semkit").rglob("__init__.py")}
    assert all(any(n.startswith(f"{package}/__init__.py") for n in names) for package in packages), packages
    metadata = next(n for n in names if n.endswith("METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(next(tmp_path.glob("semkit-*.whl"))).read(metadata).decode()


# ------------------------------------------------------------ verified boxes (issue 27: defects 1, 2 and 8)
def verified_boxes(f, starts, **options):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return semkit.find_regions(f, starts, Verified(**options), space=SPACE, criterion="score >= 0.5", progress=False)


def passes_everywhere(p):
    return np.full(len(p), 0.9)


def fails_everywhere(p):
    return np.full(len(p), 0.1)


# (case, check that holds once the defect is fixed)
VERIFIED_FAULTS = [
    ("a box passing everywhere spends no more than max_queries",
     lambda: int(verified_boxes(passes_everywhere, [[100.0, 40.0]], step=2).queries.max()) <= 5000),
    ("a box passing everywhere is not thrown away for want of queries",
     lambda: float(semkit.regions.volume_ratio(verified_boxes(passes_everywhere, [[100.0, 40.0]], step=1)).max()) > 0.5),
    ("a failing start is no certified box",
     lambda: float(verified_boxes(fails_everywhere, [[100.0, 40.0]]).certified.max()) == 0),
    ("a failing start has no bounds", lambda: bool(verified_boxes(fails_everywhere, [[100.0, 40.0]]).lower.isnull().all())),
    ("verified regions name their criterion",
     lambda: verified_boxes(passes_everywhere, [[100.0, 40.0]], step=10).semkit.criterion == semkit.Criterion.score(0.5)),
]


@pytest.mark.parametrize("case, check", VERIFIED_FAULTS, ids=[row[0] for row in VERIFIED_FAULTS])
def test_verified_boxes_keep_their_promises(case, check):
    assert check(), case
