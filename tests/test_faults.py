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
    ("a min_score that is no probability", lambda: semkit.robustness_radius(cosine, [[0, 0]], space=SPACE, criterion="score >= 5"),
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



# ------------------------------------------------------------ issue 35: optional backends' tests, docs that hold, benchmarks
def test_a_keyword_the_renderer_no_longer_takes_is_a_type_error_for_an_optional_backend_installed_or_not():
    """Python refuses an unknown keyword before the backend is checked, so it never hides behind "not installed"."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'device'"):
        semkit.Renderer("pytorch3d", image_size=32, device="cpu")


def test_an_optional_backend_that_is_not_installed_is_named_when_the_renderer_is_made(monkeypatch):
    from semkit.render import renderer as renderer_module

    monkeypatch.setattr(renderer_module, "pytorch3d_available", lambda: False)
    with pytest.raises(ImportError, match="pytorch3d backend needs pytorch3d.*the embree backend works without it"):
        semkit.Renderer("pytorch3d", image_size=32)


def test_no_test_skips_wholesale_for_want_of_pytorch3d():
    """CI has no pytorch3d: a test skipped before its calls run would rot unseen (tests/test_pytorch3d.py instead makes
    its renderers and expects the not-installed error)."""
    import re

    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text()
        assert not re.search(r"skipif\([^)]*pytorch3d|importorskip\(['\"]pytorch3d", text), path.name


def test_the_docs_that_the_readme_notebooks_package_tests_and_benchmarks_cite_exist():
    import re

    sources = [ROOT / "README.md", *ROOT.glob("notebooks/*.md"), *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("docs/*.md"),
               *ROOT.glob("semkit/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py")]
    missing = {(path.relative_to(ROOT).as_posix(), cited) for path in sources
               for cited in re.findall(r"\b(?:docs|reference)/[\w/.-]*?\.(?:md|json)\b", path.read_text())
               if not (ROOT / cited).is_file()}
    assert not missing, f"cited but not in the repository: {sorted(missing)}"


def test_the_notebooks_readme_lists_every_notebook_and_what_make_report_runs():
    from semkit.app.reports import REPORT_NOTEBOOKS

    text = " ".join((ROOT / "notebooks" / "README.md").read_text().split())
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"`{notebook.name}`" in text, notebook.name
    numbers = [name[:2] for name in REPORT_NOTEBOOKS]
    assert ", ".join(numbers[:-1]) + " and " + numbers[-1] in text


def test_the_benchmark_scripts_import_one_way():
    """No script imports one that imports it back (run.py and guarantees.py share benchmarks/common.py instead)."""
    import ast

    scripts = {path.stem: path for path in (ROOT / "benchmarks").glob("*.py")}
    imports = {}
    for name, path in scripts.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
        imports[name] = found & set(scripts)

    def reaches(start: str, target: str, seen: set) -> bool:
        return any(d == target or (d not in seen and reaches(d, target, seen | {d})) for d in imports[start])

    cycles = sorted(name for name in scripts if reaches(name, name, {name}))
    assert not cycles, f"benchmark scripts in an import cycle: {cycles}"

# ------------------------------------------------------------ issue 35: scene files (glTF, OBJ, PLY)
def tiny_gltf(tmp_path, change=None, name="tiny.gltf"):
    """A .gltf of one triangle, its buffer a base64 data URI, after ``change(json)``."""
    import base64
    import json

    corners = np.float32([[0, 0, 0], [1, 0, 0], [0, 1, 0]]).tobytes()
    gltf = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
            "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
            "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"}],
            "bufferViews": [{"buffer": 0, "byteLength": 36}],
            "buffers": [{"byteLength": 36, "uri": "data:application/octet-stream;base64," + base64.b64encode(corners).decode()}]}
    if change is not None:
        change(gltf)
    (tmp_path / name).write_text(json.dumps(gltf))
    return tmp_path / name


def _set(path, value):
    """A change that sets gltf[path[0]][path[1]]... to ``value``."""
    def change(gltf):
        target = gltf
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


GLTF_BATTERY = [
    ("a glTF node that is its own descendant",
     _set(["nodes"], [{"mesh": 0, "children": [1]}, {"children": [0]}]), "node 0 is its own descendant (nodes 0 -> 1 -> 0)"),
    ("a glTF that requires an extension semkit lacks", _set(["extensionsRequired"], ["EXT_mesh_gpu_instancing"]),
     "requires the glTF extension(s) ['EXT_mesh_gpu_instancing'], which semkit does not support (it supports KHR_materials_*"),
    ("a glTF primitive naming an accessor that is not there", _set(["meshes", 0, "primitives", 0, "attributes", "POSITION"], 5),
     "primitive 0 of mesh 0's POSITION names accessor 5, but the file has 1 accessors"),
    ("a glTF accessor naming a bufferView that is not there", _set(["accessors", 0, "bufferView"], 3),
     "accessor 0 names bufferView 3, but the file has 1 bufferViews"),
    ("a glTF accessor of an unknown component type", _set(["accessors", 0, "componentType"], 9999),
     "accessor 0 has componentType 9999"),
    ("a glTF buffer whose base64 is corrupt", _set(["buffers", 0, "uri"], "data:application/octet-stream;base64,QUJDRA="),
     "base64 data URI is corrupt"),
    ("a glTF accessor that runs past its buffer", _set(["accessors", 0, "count"], 30), "truncated or corrupt"),
]


@pytest.mark.parametrize("case, change, fragment", GLTF_BATTERY, ids=[row[0] for row in GLTF_BATTERY])
def test_broken_gltf_files_are_named_errors(tmp_path, case, change, fragment):
    """Each is one MeshError naming the file and what is wrong; a cycle cannot hang (the load runs in a thread)."""
    import threading

    from semkit.scene import MeshError, load_mesh

    path, outcome = tiny_gltf(tmp_path, change), []

    def load():
        try:
            load_mesh(path)
        except Exception as e:  # noqa: BLE001 (the test checks its type)
            outcome.append(e)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), f"{case}: loading did not finish"
    assert len(outcome) == 1 and type(outcome[0]) is MeshError, outcome
    assert str(path) in str(outcome[0]) and fragment in str(outcome[0])


def test_a_missing_gltf_texture_warns_and_falls_back_to_the_base_colour(tmp_path):
    from semkit.scene import MaterialWarning, load_mesh

    def textured(gltf):
        gltf["materials"] = [{"pbrMetallicRoughness": {"baseColorFactor": [1, 0, 0, 1], "metallicFactor": 0,
                                                       "baseColorTexture": {"index": 0}}}]
        gltf["textures"], gltf["images"] = [{"source": 0}], [{"uri": "lost.png"}]
        gltf["meshes"][0]["primitives"][0].update(material=0, attributes={"POSITION": 0, "TEXCOORD_0": 1})
        gltf["accessors"].append({"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC2"})

    with pytest.warns(MaterialWarning, match="lost.png is missing or unreadable; its faces use their base colour"):
        mesh = load_mesh(tiny_gltf(tmp_path, textured))
    assert not mesh.materials.textured and np.allclose(mesh.materials.kd, [1, 0, 0])


@pytest.mark.parametrize("faces, fragment", [
    ("f 0 1 2", "names vertex 0: OBJ counts vertices from 1"),
    ("f 1 2 3", "names a vertex not yet defined (only 0 'v' lines come before it)"),
])
def test_obj_faces_naming_vertex_zero_or_vertices_not_yet_defined_are_refused(tmp_path, faces, fragment):
    from semkit.scene import MeshError, load_mesh

    path = tmp_path / "early.obj"
    path.write_text(f"{faces}\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n")
    with pytest.raises(MeshError, match="line 1 of .*early.obj") as caught:
        load_mesh(path)
    assert fragment in str(caught.value)


def test_a_ply_with_face_colours_only_keeps_them(tmp_path):
    from semkit.scene import load_mesh

    header = ["ply", "format ascii 1.0", "element vertex 4", "property float x", "property float y", "property float z",
              "element face 2", "property list uchar int vertex_indices", "property uchar red", "property uchar green",
              "property uchar blue", "end_header"]
    body = ["0 0 0", "1 0 0", "1 1 0", "0 1 1", "3 0 1 2 255 0 0", "3 0 2 3 0 0 255"]
    (tmp_path / "faces.ply").write_text("\n".join(header + body) + "\n")
    mesh = load_mesh(tmp_path / "faces.ply")
    assert np.allclose(mesh.materials.kd, [[1, 0, 0], [0, 0, 1]])
    image = semkit.Renderer("embree", image_size=32, materials=True).render(mesh, azimuth=[0], elevation=[10]).numpy()
    assert image[0, 0].max() > 0.2 and image[0, 2].max() > 0.2 and image[0, 1].max() < 0.01  # red and blue, no green
# ------------------------------------------------------------ issue 35: criteria, spaces and Sobol in trust
def other_class(f):
    return semkit.Criterion.top1(label=(f.label + 1) % 1000)


def refused_everywhere(f, criterion):
    """Every entry point that takes a criterion, each called with ``criterion`` on f (a SemanticFunction)."""
    view = [[30.0, 20.0]]
    return {
        "find_failures": lambda: semkit.find_failures(f, view, 20, criterion=criterion, progress=False),
        "robustness_radius": lambda: semkit.robustness_radius(f, view, criterion=criterion, progress=False),
        "robust_accuracy": lambda: semkit.robust_accuracy(f, [0], criterion=criterion, n_samples=2, progress=False),
        "decision_noise": lambda: semkit.decision_noise(f, 1, criterion=criterion, n_samples=2, progress=False),
        "Smoothed": lambda: semkit.trust.Smoothed(f, 5, criterion=criterion),
        "sensitivity": lambda: semkit.trust.sensitivity(f, criterion=criterion, n_samples=2, progress=False),
        "verified boxes": lambda: semkit.find_regions(f, view, Verified(), criterion=criterion, progress=False),
        "Criterion.resolve": lambda: semkit.Criterion.resolve(criterion, f=f),
        "Criterion.evaluate": lambda: criterion.evaluate(f, np.array(view)),
    }


@pytest.mark.parametrize("entry", list(refused_everywhere(None, None)))
def test_a_criterion_naming_another_class_than_fs_is_refused_not_judged_on_fs_score(vase_lite0, entry):
    f = vase_lite0
    for criterion in (other_class(f), semkit.Criterion.margin(0.05, label=(f.label + 1) % 1000)):
        before = f.queries
        with pytest.raises(ValueError) as info:
            refused_everywhere(f, criterion)[entry]()
        message = str(info.value)
        assert f"judges class {criterion.label}, but f scores class {f.label}" in message, message
        assert f"SemanticFunction(shape, network, label={criterion.label})" in message
        assert f.queries == before  # refused before any view was rendered


def test_a_criterion_naming_fs_own_class_is_taken(vase_lite0):
    own = semkit.Criterion.margin(0.05, label=vase_lite0.label)
    assert semkit.Criterion.resolve(own, f=vase_lite0) == own


def test_a_criterion_naming_another_class_than_a_maps_is_refused():
    labelled = map_with_attrs(label=0, label_name="zero")
    labelled["correct"] = labelled.score >= 0.5
    assert float(semkit.robust_accuracy(labelled, [0], criterion=semkit.Criterion.top1(label=0))[0]) > 0
    for call in (lambda c: semkit.robust_accuracy(labelled, [0], criterion=c),
                 lambda c: semkit.decision_noise(labelled, 30, criterion=c),
                 lambda c: semkit.trust.sensitivity(labelled, criterion=c)):
        with pytest.raises(ValueError, match="judges class 2, but this map holds the scores and top-1 answers of class 0"):
            call(semkit.Criterion.top1(label=2))


@pytest.mark.parametrize("entry, call", [
    ("Smoothed", lambda f, s: semkit.trust.Smoothed(f, 5, space=s)),
    ("find_failures", lambda f, s: semkit.find_failures(f, [[30.0]], 20, space=s, progress=False)),
    ("robustness_radius", lambda f, s: semkit.robustness_radius(f, [[30.0]], space=s, progress=False)),
    ("sensitivity", lambda f, s: semkit.trust.sensitivity(f, space=s, n_samples=2, progress=False)),
    ("robust_accuracy", lambda f, s: semkit.robust_accuracy(f, [0], space=s, n_samples=2, progress=False)),
])
def test_a_space_other_than_fs_own_is_refused_not_ignored(vase_lite0, entry, call):
    with pytest.raises(ValueError, match=r"space= is Space\(azimuth=.*but f has its own Space .*elevation.*"
                                         r"SemanticFunction\(\.\.\., space=\.\.\.\)"):
        call(vase_lite0, Space.paper_1d())


def constant(p):
    return np.full(len(p), 0.1)  # its mean is 0.1 up to rounding: a variance of about 1e-34 before the fix


def test_sobol_indices_of_a_constant_f_are_undefined_and_say_so():
    from semkit.trust import sensitivity, sensitivity_summary

    space = Space({"a": (0.0, 1.0), "b": (0.0, 1.0)})
    for result in (sensitivity(constant, space=space, n_samples=64, n_resamples=10, progress=False),
                   sensitivity(semkit.semantic_map(constant, space=SPACE, step=30, progress=False))):
        assert np.isnan(result.S1).all() and np.isnan(result.ST).all() and float(result.variance.max()) == 0
        summary = sensitivity_summary(result)
        assert "variance 0" in summary and "undefined" in summary and "explains" not in summary


def test_sobol_indices_of_a_map_with_missing_views_are_refused():
    m = small_map()
    m["score"] = m.score.where(m.azimuth != 0)  # 4 views never computed
    with pytest.raises(ValueError, match=r"4 of 48 views of this map have no value \(NaN\).*finish the map"):
        semkit.trust.sensitivity(m)


def test_a_bool_is_no_sigma_or_radius():
    with pytest.raises(TypeError, match="sigma .* got True: True and False are no numbers"):
        semkit.trust.Smoothed(cosine, True, space=SPACE, criterion="score >= 0.5")
    with pytest.raises(TypeError, match="radius takes numbers"):
        semkit.find_failures(cosine, [[0.0, 0.0]], [10, False], space=SPACE, criterion="score >= 0.5", progress=False)


def test_random_state_is_recorded_as_given():
    fresh = "None (fresh entropy: not reproducible)"
    kwargs = dict(space=SPACE, criterion="score >= 0.5", progress=False)
    assert semkit.find_failures(cosine, [[0.0, 0.0]], 10, max_queries=5, random_state=None, **kwargs).attrs["random_state"] == fresh
    assert semkit.robustness_radius(cosine, [[0.0, 0.0]], max_steps=1, random_state=None, **kwargs).attrs["random_state"] == fresh
    assert semkit.robust_accuracy(cosine, [0], n_samples=2, random_state=None, **kwargs).attrs["random_state"] == fresh
    assert semkit.robust_accuracy(cosine, [0], n_samples=2, random_state=7, **kwargs).attrs["random_state"] == 7
    smoothed = semkit.trust.Smoothed(cosine, 5, space=SPACE, criterion="score >= 0.5")
    assert smoothed.predict([[0.0, 0.0]], n=10, random_state=None, progress=False).attrs["random_state"] == fresh
    generator = semkit.robustness_radius(cosine, [[0.0, 0.0]], max_steps=1, random_state=np.random.default_rng(1), **kwargs)
    assert generator.attrs["random_state"].startswith("a numpy Generator (its state is not recorded")


def test_a_store_made_under_another_criterion_says_criterion(tmp_path):
    import warnings

    store = tmp_path / "boxes.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for minimum in (0.5, 0.6):
            call = lambda: semkit.find_regions(passes_everywhere, [[100.0, 40.0]], Verified(step=10), space=SPACE,  # noqa: E731
                                               criterion=f"score >= {minimum}", store=store, key="k", progress=False)
            if minimum == 0.5:
                call()
                continue
            with pytest.raises(StoreError, match=r"differs in algorithms\[verified\]\.criterion"):
                call()
# ------------------------------------------------------------ issue 35: validation and classify
def tiny(**options):
    return semkit.Classifier(nn.Identity(), input_size=options.pop("input_size", 8), **options)


BATTERY_35 = [
    ("the same class name twice", lambda: tiny(labels=["mug", "mug", "vase"]), ValueError, "'mug' at positions [0, 1]"),
    ("one class name as a string", lambda: tiny(labels="mug"), TypeError, "pass labels=['mug']"),
    ("one class name as a string for open_clip",
     lambda: semkit.load_classifier("open_clip/ViT-B-32", weights="random", labels="mug"), TypeError,
     "pass labels=['mug']"),
    ("the same class name twice for open_clip",
     lambda: semkit.load_classifier("open_clip/ViT-B-32", weights="random", labels=["mug", "vase", "mug"]), ValueError,
     "'mug' at positions [0, 2]"),
    ("relabelling a network with a string", lambda: semkit.load_classifier("efficientnet_lite0", labels="mug"), TypeError,
     "a list of class names"),
    ("a zero std", lambda: tiny(std=(0, 1, 1)), ValueError, "std must hold positive finite numbers"),
    ("a NaN std", lambda: tiny(std=(1, float("nan"), 1)), ValueError, "std must hold positive finite numbers"),
    ("a mean of two channels", lambda: tiny(mean=(0.5, 0.5)), ValueError,
     "mean must be 3 numbers, one per RGB channel (or 1 for all three), got 2 numbers"),
    ("an input size of 0", lambda: tiny(input_size=0), ValueError, "input_size must be a whole number of at least 1"),
    ("an input size as text", lambda: tiny(input_size="224"), TypeError, "pass the number 224"),
    ("no network name", lambda: semkit.load_classifier(None), TypeError,
     "'timm/<name>', 'open_clip/<name>', or a semkit.Classifier"),
    ("a loaded classifier given to load_classifier", lambda: semkit.load_classifier(tiny(name="mine")), TypeError,
     "the Classifier 'mine', loaded already"),
    ("a confidence of True", lambda: semkit.trust.Guarantee(confidence=True), TypeError,
     "confidence must be a number in (0, 1), got True: pass a number, not a bool"),
    ("a NaN confidence", lambda: semkit.trust.Guarantee(confidence=float("nan")), ValueError,
     "confidence must be a number in (0, 1), got nan"),
    ("a sample count as text", lambda: semkit.decision_noise(cosine, 1, criterion="score >= 0.5", space=SPACE,
                                                              n_samples="100"), TypeError,
     "n_samples must be a whole number of at least 1, got '100': pass the number 100"),
    ("a fractional number of attempts", lambda: Verified(attempts=2.5), ValueError,
     "attempts must be a whole number of at least 1, got 2.5"),
    ("a field of view of NaN", lambda: semkit.Renderer(image_size=32, fov=float("nan")), ValueError,
     "fov must be a finite number, got nan"),
    ("a bool as the render threads", lambda: semkit.Renderer("embree", image_size=32, threads=True), TypeError,
     "threads must be a whole number of at least 1, got True"),
]


@pytest.mark.parametrize("case, call, error, fragment", BATTERY_35, ids=[row[0] for row in BATTERY_35])
def test_issue_35_bad_input_gets_a_clear_error(case, call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value), f"{case}: {info.value}"


def test_one_mean_or_std_serves_all_three_channels():
    one, three = tiny(mean=(0.5,), std=0.25), tiny(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert torch.equal(one.mean, three.mean) and torch.equal(one.std, three.std) and one.mean.shape == (1, 3, 1, 1)
    assert one.fingerprint() == three.fingerprint()


def test_numpy_scalars_are_counts_and_confidences():
    guarantee = semkit.trust.Guarantee(confidence=np.float32(0.9), max_failure=np.float64(0.05), tests=np.int64(2))
    assert guarantee.tests == 2 and tiny(input_size=np.int64(16)).input_size == 16
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


# ------------------------------------------------------------ issue 35: one word for algorithm
def test_picking_one_algorithm_of_regions_srvr_and_checks_keeps_that_algorithm_only():
    """Region results, SRVR and check_regions are over ``algorithm``: plain ``.sel(algorithm="oir_b")`` picks one.
    (Named ``method``, xarray's own ``sel(method=)`` took "oir_b" as its fill rule and kept every algorithm.)"""
    f = lambda p: np.exp(-np.sum(((np.atleast_2d(p) - [180, 30]) / [60, 20]) ** 2, axis=1))  # noqa: E731
    regions = semkit.find_regions(f, [[180, 30]], ("naive", "oir_b"), space=SPACE, iterations=5, progress=False)
    grid = semkit.semantic_map(f, space=SPACE, step=30, progress=False)
    for name, result in {"regions": regions, "srvr": semkit.srvr(regions),
                         "check_regions": semkit.check_regions(regions, grid, criterion="score >= 0.5")}.items():
        picked = result.sel(algorithm="oir_b")
        assert "algorithm" not in picked.dims and picked.algorithm.item() == "oir_b", name
        assert "method" not in result.dims, name
    worst = semkit.find_failures(f, [[180, 30]], 10, space=SPACE, criterion="score >= 0.5", max_queries=8,
                                 algorithm="random", progress=False)
    assert "RandomSearch" in worst.attrs["algorithm"] and "method" not in worst.attrs


# ---- issue 34: the paper's released maps
def _paper_checkpoint(root: Path, grids: dict[str, np.ndarray]) -> Path:
    """A checkpoint/ folder of one map per network (class 0, object 0), each on its own azimuths."""
    for network, azimuth in grids.items():
        xx, yy = np.meshgrid(azimuth, np.arange(-10, 90, 3))
        path = root / network / "0" / "0" / "map.pt"
        path.parent.mkdir(parents=True)
        torch.save({"xx": xx, "yy": yy, "z": np.full(xx.shape, 0.5, np.float32), "class_nb": 0, "shape_id": "a1",
                    "network_name": network}, path)
    return root


@pytest.mark.parametrize("case, change, fragment", [
    ("the paper's maps on two grids", lambda root: None, "holds another grid"),
    ("a paper map that is no torch file", lambda root: (root / "VGG" / "0" / "0" / "map.pt").write_text("notes"),
     "not a torch file"),
    ("a folder that holds neither a store nor the paper's maps", lambda root: [p.unlink() for p in root.rglob("*.pt")],
     "neither a .zarr store nor the paper's checkpoint/ folder"),
])
def test_the_papers_checkpoint_folder_that_semkit_cannot_read_is_named(tmp_path, case, change, fragment):
    root = _paper_checkpoint(tmp_path / "checkpoint", {"AlexNet": np.arange(0, 360, 3), "VGG": np.arange(0, 360, 6)})
    change(root)
    with pytest.raises(StoreError, match=fragment):
        semkit.open(root)


# ------------------------------------------------------------ the last read: names that differ by case
def test_an_exact_class_name_wins_over_one_that_differs_by_case():
    """ImageNet names a dog 'Cardigan' (264) and a sweater 'cardigan' (474): each finds its own class."""
    from semkit.classify import imagenet_labels, resolve_label

    labels = imagenet_labels()
    assert (resolve_label("cardigan", labels), resolve_label("Cardigan", labels)) == (474, 264)
    assert resolve_label("Coffee_Mug", labels) == resolve_label("coffee mug", labels) == 504


def test_a_space_other_than_a_groups_own_is_refused():
    group = semkit.SemanticFunctions("vase", ["efficientnet_lite0", "efficientnet_lite1"],
                                     renderer=semkit.Renderer(image_size=32))
    with pytest.raises(ValueError, match="have their own Space"):
        semkit.semantic_map(group, space=Space.of("azimuth", "light_intensity"), step=90, progress=False)


# ------------------------------------------------------------ issue 34: the report notebooks on Dask
@pytest.mark.parametrize("args, fragment", [
    (["-p", "scheduler", "8786"], "scheduler = 8786 must be 'local' (a Dask LocalCluster) or a scheduler's address"),
    (["-p", "workers", "0"], "workers = 0 must be at least 1"),
    (["-p", "networks", "[efficientnet_lite0, on]"], "networks = ['efficientnet_lite0', True] must hold names only"),
])
def test_a_report_refuses_a_scheduler_workers_or_networks_it_cannot_use_before_any_notebook_runs(tmp_path, capsys, args,
                                                                                                 fragment):
    status, err = run_cli(capsys, "report", "--out", str(tmp_path / "r"), "--figures", str(tmp_path / "f"), *args)
    assert status == 2 and "usage: semkit report" in err and fragment in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


def test_report_network_names_reach_the_notebooks_as_written(tmp_path, capsys):
    """timm and open_clip names (with their slashes, dots and colons) pass from -p networks to the notebooks unchanged."""
    import json

    import nbformat

    folder = tmp_path / "nbs"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('smoke = False\nnetworks = ["efficientnet_lite0"]\nout = "r"\nfigures = "f"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell('import json, pathlib\npathlib.Path(out, "networks.json").write_text(json.dumps(networks))')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "01_semantic_maps.ipynb")  # the first report notebook; the others are missing
    names = ["timm/resnet18.a1_in1k", "open_clip/ViT-B-32", "open_clip/hf-hub:timm/ViT-B-16-SigLIP", "resnet50"]
    status, err = run_cli(capsys, "report", "--notebooks", str(folder), "--out", str(tmp_path / "r"), "--figures",
                          str(tmp_path / "f"), "-p", "networks", f"[{', '.join(names)}]")
    assert status == 1 and "02_robust_regions.ipynb not found" in err, err
    assert json.loads((tmp_path / "r" / "networks.json").read_text()) == names


def test_a_report_on_a_scheduler_that_nobody_answers_at_names_the_address(tmp_path):
    from semkit.app.reports import ReportError, run_reports

    with pytest.raises(ReportError, match=r"03_network_comparison.ipynb failed .* ConnectionError: no Dask scheduler "
                                          r"answered at 'tcp://127.0.0.1:9'"):
        run_reports(ROOT / "notebooks", tmp_path, {"smoke": True, "out": str(tmp_path), "figures": str(tmp_path / "f"),
                                                   "scheduler": "tcp://127.0.0.1:9"},
                    names=["03_network_comparison.ipynb"], html=False, progress=False)


def test_a_shape_made_in_memory_cannot_go_to_dask_workers():
    from semkit.app.reports import loadable

    vase = gallery.load("vase")
    moved = semkit.Mesh(vase.vertices + 0.1, vase.faces, name="vase", label=vase.label)
    with pytest.raises(ValueError, match="shape 'vase' was made in memory .* save it to a mesh file"):
        loadable([vase, moved])
# ------------------------------------------------------------ issue 32: network precision
BATTERY_32_PRECISION = [
    ("a misspelt precision", lambda: semkit.load_classifier("efficientnet_lite0", precision="bf16"), ValueError,
     "choose one of 'float32', 'bfloat16', 'float16'"),
    ("a torch dtype as the precision", lambda: tiny(precision=torch.bfloat16), ValueError,
     "choose one of 'float32', 'bfloat16', 'float16'"),
    ("bfloat16 asked of the ONNX Runtime engine", lambda: tiny(precision="bfloat16", engine="onnxruntime"), ValueError,
     "engine='onnxruntime' runs float32 only"),
    ("float16 on a CPU", lambda: tiny(input_size=4, labels=["a", "b", "c"], precision="float16")(torch.rand(1, 3, 1, 1)),
     ValueError, "runs on a GPU only"),
    ("float16 asked of the OpenVINO engine", lambda: tiny(precision="float16", engine="openvino"), ValueError,
     "engine='openvino' runs float32 or bfloat16 on a CPU"),
    ("an engine set to a misspelt name", lambda: setattr(tiny(), "engine", "open_vino"), ValueError,
     "unknown engine 'open_vino'"),
    ("a study of a Classifier in another precision", lambda: semkit.StudySpec(["vase"], [tiny()], precision="bfloat16"),
     ValueError, "computes in float32, but the study's precision is 'bfloat16'"),
]


@pytest.mark.parametrize("case, call, error, fragment", BATTERY_32_PRECISION, ids=[row[0] for row in BATTERY_32_PRECISION])
def test_issue_32_bad_precision_gets_a_clear_error(case, call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value), f"{case}: {info.value}"


def test_a_bfloat16_map_is_not_read_from_a_float32_store(tmp_path):
    mug, renderer = gallery.load("coffee_mug"), semkit.Renderer(image_size=16)
    network = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 1000))

    def map_in(precision):
        classifier = semkit.Classifier(network, input_size=16, precision=precision)
        return semkit.semantic_map(semkit.SemanticFunction(mug, classifier, renderer=renderer), step=(180, 100),
                                   store=tmp_path / "m.nc", progress=False)

    assert map_in("float32").attrs["precision"] == "float32"
    with pytest.raises(StoreError, match="function.precision"):
        map_in("bfloat16")


def test_numpy_integers_are_micro_batches():
    classifier = tiny()
    classifier.micro_batch = np.int32(2)
    assert classifier.micro_batch == 2
    with pytest.raises(ValueError, match="micro_batch must be a whole number of at least 1"):
        classifier.micro_batch = 0


# ------------------------------------------------------------ issue 32: the gl backend draws a whole batch per pass
def test_gl_draws_a_batch_in_one_pass_as_it_draws_each_view_alone():
    """Tiles of one framebuffer must not bleed into each other, and a view's face ids must not leak into its neighbours'."""
    from semkit.render.renderer import gl_unavailable_reason

    if gl_unavailable_reason() is not None:
        pytest.skip(gl_unavailable_reason())
    vase = gallery.load("vase")
    r = semkit.Renderer("gl", image_size=32, background=(0.1, 0.2, 0.3))
    views = {"azimuth": np.linspace(0, 330, 12), "elevation": np.linspace(-30, 60, 12), "distance": np.linspace(1.2, 4, 12)}
    batch = r.render(vase, **views)
    alone = torch.cat([r.render(vase, **{k: v[i] for k, v in views.items()}) for i in range(12)])
    assert (batch - alone).abs().mean() <= 0.01 and (batch - alone).abs().amax(dim=(1, 2, 3)).max() < 0.5


def test_gl_refuses_threads_naming_the_backend_that_takes_them():
    from semkit.render.renderer import gl_unavailable_reason

    if gl_unavailable_reason() is not None:
        pytest.skip(gl_unavailable_reason())
    with pytest.raises(ValueError, match="threads= is for the embree backend; gl shades whole batches in torch"):
        semkit.Renderer("gl", threads=2)
