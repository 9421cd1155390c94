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
     ValueError, "criterion='score >= t'"),
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
    with pytest.raises(StoreError, match="no permission to write in"):
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
    assert status == 2 and "unknown notebook parameter(s) ['netwroks']" in err


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


# ------------------------------------------------------------ issue 27: maps, criteria, renderer, CLI, explorer
def test_a_map_in_any_coordinate_order_gives_the_same_robust_accuracy_and_noise():
    m = small_map()
    criterion = "score >= 0.5"
    expected = semkit.robust_accuracy(m, [0, 30, 60], criterion=criterion).values
    noise = float(semkit.decision_noise(m, 30, criterion=criterion))
    shuffled = m.isel(elevation=[2, 0, 3, 1])
    for other in (m.isel(azimuth=slice(None, None, -1)), m.isel(elevation=slice(None, None, -1)), shuffled):
        assert semkit.robust_accuracy(other, [0, 30, 60], criterion=criterion).values.tolist() == expected.tolist()
        assert float(semkit.decision_noise(other, 30, criterion=criterion)) == noise


def test_a_missing_view_in_a_map_fails_and_is_counted():
    m = small_map()
    correct = (m.score >= 0.5).astype(float)
    m["correct"] = correct.where(m.azimuth != 0)  # the views at azimuth 0 were never computed (NaN)
    ra = semkit.robust_accuracy(m, [0], criterion="top-1")
    assert float(ra[0]) == pytest.approx(float((correct * (m.azimuth != 0)).mean()))
    assert ra.attrs["missing_views"] == m.sizes["elevation"] and "count as failing" in ra.attrs["missing"]
    with pytest.raises(ValueError, match=r"4 view\(s\) without a value"):
        semkit.decision_noise(m, 30, criterion="top-1")


def test_a_radius_wider_than_the_grid_is_clamped():
    import time

    start = time.perf_counter()
    assert float(semkit.robust_accuracy(small_map(), 1e9, criterion="score >= 0.01")[0]) == 0.0
    assert time.perf_counter() - start < 2  # 22 s when the filter was built a billion degrees wide


@pytest.fixture(scope="module")
def vase_lite0(lite0):
    return semkit.SemanticFunction(gallery.load("vase"), lite0, renderer=semkit.Renderer(image_size=32))


@pytest.mark.parametrize("criterion, fragment", [
    (semkit.Criterion.top1(label=5000), "label 5000 is out of range: the network has 1000 classes"),
    ("top-1001", "top-1001 correct needs the top 1001 classes, and the network has only 1000"),
])
def test_a_criterion_beyond_the_networks_classes_is_refused(vase_lite0, criterion, fragment):
    with pytest.raises(ValueError, match=fragment):
        semkit.robust_accuracy(vase_lite0, [0], criterion=criterion, n_samples=2, progress=False)
    with pytest.raises(ValueError, match=fragment):
        semkit.Criterion.resolve(criterion).evaluate(vase_lite0, np.array([[0.0, 20.0]]))


def map_with_attrs(**attrs):
    m = small_map()
    m.attrs.update(attrs)
    return m


BATTERY_27 = [
    ("no criterion name", lambda: semkit.Criterion.parse(None), TypeError, "a criterion's name is a string"),
    ("an empty list of criteria", lambda: semkit.Criterion.resolve_all([]), ValueError, "criterion= got an empty list"),
    ("an empty list of criteria for a map", lambda: semkit.robust_accuracy(small_map(), 0, criterion=[]), ValueError,
     "criterion= got an empty list"),
    ("a list of criteria for f", lambda: semkit.robust_accuracy(cosine, 0, criterion=["top-1"], space=SPACE),
     ValueError, "a list of criteria is for maps"),
    ("a radius per parameter of the wrong length", lambda: semkit.decision_noise(small_map(), [30, 30, 30],
                                                                                 criterion="score >= 0.5"),
     ValueError, "one per parameter ['azimuth', 'elevation'] (2)"),
    ("radii as a matrix", lambda: semkit.robust_accuracy(small_map(), [[0, 6]], criterion="score >= 0.5"), ValueError,
     "a non-negative number or a sequence"),
    ("a negative sample count", lambda: semkit.decision_noise(cosine, 1, criterion="score >= 0.5", space=SPACE,
                                                               n_samples=-5), ValueError, "n_samples must be a whole"),
    ("malformed criterion attrs", lambda: map_with_attrs(criterion_spec="{kind: top").semkit.robust_accuracy(0),
     ValueError, "criterion attrs are malformed"),
    ("an infinite light", lambda: semkit.Renderer(image_size=32, light_intensity=float("inf")), ValueError,
     "light_intensity must be a number in [0, 1]"),
    ("an ambient light above 1", lambda: semkit.Renderer(image_size=32, ambient=5), ValueError,
     "ambient must be a number in [0, 1]"),
    ("no background", lambda: semkit.Renderer(image_size=32, background=None), TypeError, "black is background=0"),
    ("no azimuths", lambda: semkit.Renderer(image_size=32).render(gallery.load("vase"), azimuth=[], elevation=20),
     ValueError, "azimuth= holds no values"),
]


@pytest.mark.parametrize("case, call, error, fragment", BATTERY_27, ids=[row[0] for row in BATTERY_27])
def test_issue_27_bad_input_gets_a_clear_error(case, call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value), f"{case}: {info.value}"


def test_numpy_integers_are_image_sizes():
    renderer = semkit.Renderer(image_size=np.int64(32), supersample=np.int32(1))
    assert renderer.image_size == 32 and type(renderer.describe()["image_size"]) is int
    assert renderer.render(gallery.load("vase"), azimuth=[0], elevation=20).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("args, fragment", [
    (["-p", "smoke", "true"], "-p smoke is set by the flag --smoke: use --smoke instead"),
    (["-p", "out", "elsewhere"], "-p out is set by the flag --out: use --out elsewhere instead"),
    (["-p", "networks", "[efficientnet_lite0"], "-p networks '[efficientnet_lite0' is not a YAML value"),
    (["-p", "per_class", "two"], "per_class = 'two' must be a whole number (the default is"),
    (["-p", "networks", "efficientnet_lite0"], "networks = 'efficientnet_lite0' must be a list"),
    (["-p", "step_2d", "[ten, 10]"], "step_2d = ['ten', 10] must hold numbers only"),
])
def test_report_parameters_are_checked_before_anything_runs(tmp_path, capsys, args, fragment):
    status, err = run_cli(capsys, "report", "--out", str(tmp_path / "r"), "--figures", str(tmp_path / "f"), *args)
    assert status == 2 and "usage: semkit report" in err and fragment in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_report_folders_that_cannot_be_written_are_named(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    status, err = run_cli(capsys, "report", "--out", str(tmp_path / "file" / "r"), "--smoke")
    assert status == 2 and "--out" in err and "cannot be written" in err


@pytest.mark.parametrize("text, fragment", [
    ("store: s.zarr\nnetworks: [efficientnet_lite0\n", "is not valid YAML at line 3"),
    ("store: s.zarr\nnetworks: [efficientnet_lite0]\nshapes: [vase]\nspace: {azimuth: [0, 360]}\n",
     "a mapping with `parameters`"),
    ("store: s.zarr\nnetworks: [efficientnet_lite0]\nshapes: [vase]\nspace: {parameters: [{name: azimuth, lo: 0}]}\n",
     "space is not a valid Space mapping"),
])
def test_sweep_configs_that_do_not_parse_are_one_line_errors(tmp_path, capsys, text, fragment):
    config = tmp_path / "sweep.yaml"
    config.write_text(text)
    status, err = run_cli(capsys, "sweep", str(config))
    assert status == 2 and fragment in err and "Traceback" not in err and "usage: semkit sweep" in err



# ------------------------------------------------------------ issue 35: stores, the command line, the explorer
class Classy:
    """An analytic f with classes (a map of it holds top1 and correct): cos^2 of the azimuth, class ``high`` above
    1/2, else ``low``; the true class is ``label``."""

    space = SPACE
    queries = 0
    gradient_method = "none"

    def __init__(self, label=3, high=3, low=7):
        self.label, self.high, self.low = label, high, low

    def __call__(self, p):
        return self.evaluate(p).score

    def evaluate(self, p, k=1):
        p = np.asarray(p, float).reshape(-1, 2)
        score = np.cos(np.radians(p[:, 0])) ** 2
        return semkit.function.Evaluation(score, np.where(score > 0.5, self.high, self.low), None, None)

    def gradient(self, p):
        raise NotImplementedError

    def describe(self):
        return {"callable": "classy", "label": self.label, "label_name": "three", "classes": [self.high, self.low]}


def drop_chunks(store, *names):
    import shutil

    for name in names:
        shutil.rmtree(store / name / "c")


def test_a_zarr_map_with_lost_chunks_is_refused_naming_them(tmp_path):
    store = tmp_path / "m.zarr"
    semkit.semantic_map(Classy(), step=30, store=store, progress=False)
    drop_chunks(store, "top1", "correct")
    for call in (lambda: semkit.semantic_map(Classy(), step=30, store=store, progress=False), lambda: semkit.open(store)):
        with pytest.raises(StoreError, match=r"damaged: chunks of correct \(1 of 1\), top1 \(1 of 1\) are missing"
                                             rf".* Delete {store}"):
            call()
    drop_chunks(store, "score")
    with pytest.raises(StoreError, match=r"chunks of correct \(1 of 1\), score \(1 of 1\), top1"):
        semkit.open(store)


def test_a_zarr_map_of_fill_values_reads_back(tmp_path):
    """A map whose top1 is all 0 and correct all False (zarr's fill values) is stored whole, and reads back."""
    store = tmp_path / "m.zarr"
    first = semkit.semantic_map(Classy(label=5, high=0, low=0), step=30, store=store, progress=False)
    assert not first.correct.any() and not first.top1.any()
    back = semkit.semantic_map(Classy(label=5, high=0, low=0), step=30, store=store, progress=False)
    assert semkit.open(store).identical(back) and not back.correct.any()


@pytest.mark.parametrize("args, fragment", [
    (["--smoke", "-p", "step_2d", "[5, 5]"], "smoke (--smoke) sets ['step_2d'] itself"),
    (["--smoke", "-p", "networks", "[efficientnet_lite0]", "-p", "iterations", "9"], "sets ['iterations', 'networks']"),
    (["--smoke", "-p", "shapes", "[vase, vase, vase]"], "sets ['shapes'] itself (tiny settings; of shapes it keeps"),
    (["--smoke", "-p", "step_2d", "0"], "step_2d = 0 must be positive"),
    (["-p", "lattice_step", "[10, -5]"], "lattice_step = [10, -5] must be positive"),
    (["--figures", "/proc/figures"], "--figures /proc/figures cannot be written"),
    (["--notebooks", "EMPTY"], "holds none of the report notebooks ['01_semantic_maps.ipynb'"),
])
def test_report_values_are_never_silently_replaced_or_unchecked(tmp_path, capsys, args, fragment):
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    if "--figures" not in args:
        args += ["--figures", str(tmp_path / "f")]
    status, err = run_cli(capsys, "report", "--out", str(tmp_path / "r"), *args)
    assert status == 2 and "usage: semkit report" in err and fragment in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


def test_a_smoke_report_takes_the_shapes_it_keeps(tmp_path):
    from semkit.app.reports import check_parameters

    assert check_parameters(ROOT / "notebooks", {"smoke": True, "shapes": ["vase"], "out": str(tmp_path)})


SHARER = """
import os, sys, time, numpy as np, semkit
points = 0
def slow(p):
    global points
    points += len(p)
    time.sleep(0.1)
    return np.cos(np.radians(p[:, 0])) ** 2
while not os.path.exists(sys.argv[2]):  # both start together
    time.sleep(0.01)
ds = semkit.semantic_map(slow, space=semkit.Space.paper(), step=30, store=sys.argv[1], chunk_size=2, key="slow",
                         adaptive=sys.argv[3] == "adaptive", progress=False)
assert np.isfinite(ds.score).all()
print(points)
"""


@pytest.mark.parametrize("kind", ["dense", "adaptive"])
def test_two_processes_on_one_new_map_store_share_its_work(tmp_path, kind):
    """Each chunk is claimed while computed (an adaptive map as a whole): the second process takes the rest or
    waits and reads back, never computing the whole map again."""
    import time

    store, go = tmp_path / "m.nc", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", SHARER, str(store), str(go), kind], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    counts = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        counts.append(int(out.split()[-1]))
    alone = semkit.semantic_map(lambda p: np.cos(np.radians(p[:, 0])) ** 2, space=SPACE, step=30, key="slow",
                                adaptive=kind == "adaptive", progress=False)
    n = alone.score.size if kind == "dense" else int(alone.evaluated.sum())
    assert sum(counts) <= n + 4, counts  # at most the chunks both were computing at the very same moment
    assert semkit.open(store).score.equals(alone.score)


@pytest.mark.parametrize("where, fragment", [
    ("FILE/m.nc", "FILE is a file, not a folder"),
    ("FILE/deeper/m.zarr", "FILE is a file, not a folder"),
    ("/proc/semkit-test/m.nc", "/proc cannot hold files or folders"),
])
def test_a_store_path_that_cannot_be_written_is_named(tmp_path, where, fragment):
    (tmp_path / "file").write_text("")
    where, fragment = (s.replace("FILE", str(tmp_path / "file")) for s in (where, fragment))
    calls = [lambda: semkit.semantic_map(cosine, space=SPACE, step=30, store=where, key="cos", progress=False),
             lambda: semkit.find_regions(cosine, [[10, 10]], ("naive",), space=SPACE, iterations=2, progress=False,
                                         store=where.replace(".zarr", ".nc"))]
    for call in calls:
        with pytest.raises(StoreError, match="cannot write the store .*" + fragment.replace("/", ".")):
            call()


@pytest.mark.parametrize("text, fragment", [
    ("store: null\nnetworks: [efficientnet_lite0]\nshapes: [vase]\n", "`store` must be a .zarr folder path"),
    ("store: s.zarr\nnetworks: [efficientnet_lite0]\nshapes: [1, 2]\n",
     "`shapes` must be a list of gallery names or mesh files, e.g. [a, b] (a list even for one); got [1, 2]"),
    ("store: s.zarr\nnetworks: [efficientnet_lite0]\nshapes: coffee_mug\n",
     "`shapes` must be a list of gallery names or mesh files, e.g. [coffee_mug]"),
    ("store: s.zarr\nnetworks: efficientnet_lite0\nshapes: [vase]\n", "`networks` must be a list of network names"),
    ("store: s.zarr\nnetworks: [efficientnet_lite0]\nshapenet: 5\n", "`shapenet` must be a ShapeNetCore folder path"),
    ("store: s.zarr\nnetworks: [efficientnet_lite0]\nshapes: [vase]\nper_class: two\n", "`per_class` must be a whole"),
])
def test_sweep_options_of_the_wrong_type_are_one_line_errors(tmp_path, capsys, text, fragment):
    config = tmp_path / "sweep.yaml"
    config.write_text(text)
    status, err = run_cli(capsys, "sweep", str(config))
    assert status == 2 and fragment in err and "Traceback" not in err and "usage: semkit sweep" in err, err


def test_the_explorer_wraps_periodic_values_and_names_a_value_that_is_no_number(lite0):
    import re

    from semkit.app import Explorer

    with Explorer(["vase"], [lite0], step=(90, 50), image_size=32) as explorer:
        explorer.set(azimuth=370)
        assert explorer.point["azimuth"] == 10 and "azimuth 10," in explorer.prediction_html()
        explorer.set(azimuth=-30)
        assert explorer.point["azimuth"] == 330
        for value in ("north", None, [1, 2]):
            with pytest.raises(ValueError, match=f"azimuth must be a number \\(deg\\), got {re.escape(repr(value))}"):
                explorer.set(azimuth=value, elevation=40)
        assert explorer.point == {"azimuth": 330, "elevation": 20}  # nothing changed
