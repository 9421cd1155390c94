"""The notebooks run under papermill (smoke settings), and the report runner reports failures clearly."""

import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from semkit.app.cli import main
from semkit.scene import load_shapes
from semkit.app.reports import REPORT_NOTEBOOKS, ReportError, run_reports, setup

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_the_notebooks_are_there_with_a_parameters_cell():
    assert ALL == ["01_semantic_maps.ipynb", "02_robust_regions.ipynb", "03_network_comparison.ipynb", "04_explorer.ipynb",
                   "05_trustworthy_robustness.ipynb", "06_benchmark.ipynb"]
    for name in ALL:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        assert "smoke = False" in tagged[0].source, name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} is committed with outputs"


def code_lines(name: str) -> int:
    """Non-blank, non-comment lines of a notebook's code cells."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def test_the_report_notebooks_hold_parameters_calls_and_plots_only():
    """Their logic lives in the library, where the tests reach it."""
    assert sum(code_lines(name) for name in REPORT_NOTEBOOKS[:3]) <= 115  # 01-03 (imports from semkit.app, semkit.store; 03 stores its regions for 06; 01, 03 take a scheduler)


EXPECTED_FIGURES = {
    "01_semantic_maps.ipynb": ["azimuth_curves.png", "azimuth_curve_coffee_mug.png", "azimuth_averages.png", "maps2d.png", "map2d_park_bench.png",
                               "looks_coffee_mug.png"],
    "02_robust_regions.ipynb": ["regions_park_bench.png"],
    "03_network_comparison.ipynb": ["network_comparison.png"],
    "04_explorer.ipynb": [],
    "05_trustworthy_robustness.ipynb": ["trust_boxes.png", "robust_accuracy.png", "worst_views.png"],
    "06_benchmark.ipynb": ["benchmark_ranks.png"],
}


@pytest.fixture(scope="module")
def smoke_reports(tmp_path_factory):
    """The report notebooks run once, as `semkit report --smoke` does it (one kernel per notebook, with HTML)."""
    root = tmp_path_factory.mktemp("reports")
    out, figures = root / "r", root / "f"
    done = subprocess.run([sys.executable, "-m", "semkit.app.cli", "report", "--smoke", "--out", str(out),
                           "--figures", str(figures)], capture_output=True, text=True, timeout=600)
    return out, figures, done


def test_report_command_runs_every_cell_of_the_reports_into_html(smoke_reports):
    out, figures, done = smoke_reports
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{len(REPORT_NOTEBOOKS)} reports" in done.stdout
    for name in REPORT_NOTEBOOKS:
        html = (out / name).with_suffix(".html")
        assert html.stat().st_size > 100_000 and "<img" in html.read_text()
        executed = nbformat.read(out / name, as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
        assert all(c.execution_count for c in executed.cells if c.cell_type == "code" and c.source.strip()), name
        for figure in EXPECTED_FIGURES[name]:
            assert (figures / figure).stat().st_size > 5_000, figure
    for noise in ("Unable to parse", "WARNING", "TCP", "unknown parameter"):  # quiet: papermill and the kernels
        assert noise not in done.stdout + done.stderr, noise
    assert not list(out.rglob("*.lock"))  # store locks are removed when released


def test_the_comparison_report_writes_means_with_intervals(smoke_reports):
    out, _, done = smoke_reports
    assert done.returncode == 0, done.stderr[-3000:]
    table = (out / "network_comparison.csv").read_text().splitlines()
    assert table[0].startswith("network,accuracy over the space,mean score,robust accuracy r=0,")
    assert table[0].endswith("SRVR naive,SRVR OIR_B,SRVR OIR_W") and "[" in table[1]  # means with their intervals
    assert len(table) == 3  # two networks under smoke settings


def test_the_benchmark_report_writes_ranks_with_intervals_and_agreement(smoke_reports):
    out, _, done = smoke_reports
    assert done.returncode == 0, done.stdout + done.stderr
    import pandas as pd

    table = pd.read_csv(out / "benchmark.csv")
    assert {"rank", "rank_low", "rank_high", "ci_low"} <= set(table.columns) and set(table.network) == {"efficientnet_lite0", "efficientnet_lite1"}
    assert {"decision noise", "worst-view accuracy r=15", "SRVR OIR_B"} <= set(table.metric)  # SRVR: notebook 03's regions
    assert "Kendall's tau" in (out / "benchmark.md").read_text() and (out / "benchmark.nc").exists()


def test_the_explorer_notebook_runs(tmp_path):
    name = "04_explorer.ipynb"
    papermill.execute_notebook(NOTEBOOKS / name, tmp_path / name, parameters={"smoke": True, "store": str(tmp_path / "maps")}, cwd=NOTEBOOKS,
                               progress_bar=False, kernel_name="python3")
    nb = nbformat.read(tmp_path / name, as_version=4)  # papermill raised on any error; here: every cell ran
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code" and c.source.strip())


def test_report_runner_stops_at_a_failing_notebook_and_keeps_the_rest(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    for name, code in (("good.ipynb", "x = 1"), ("bad.ipynb", "raise ValueError('the mesh is broken')")):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell("smoke = False")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(code)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / name)
    with pytest.raises(ReportError, match=r"bad.ipynb failed in cell \d+ with ValueError: the mesh is broken.*1 notebook\(s\) before it"):
        run_reports(folder, tmp_path / "out", {"smoke": True}, names=["good.ipynb", "bad.ipynb", "never.ipynb"], progress=False)
    assert (tmp_path / "out" / "good.ipynb").exists() and (tmp_path / "out" / "good.html").exists()
    assert (tmp_path / "out" / "bad.ipynb").exists()  # with the error in it, for reading
    assert not (tmp_path / "out" / "never.ipynb").exists()


def test_every_parameters_cell_parses_for_papermill(caplog):
    """papermill reads each parameter's name, value and help (no "Unable to parse line" warning)."""
    for name in ALL:
        with caplog.at_level("WARNING", logger="papermill"):
            names = set(papermill.inspect_notebook(NOTEBOOKS / name))
        assert "smoke" in names, name
        assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()], name


def test_report_command_names_bad_folders(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["report", "--shapenet", str(tmp_path / "nowhere")])
    assert "is not a folder" in capsys.readouterr().err


def test_shapes_from_the_gallery_or_shapenet(shapenet_root):
    assert [m.name for m in load_shapes(["vase"])] == ["vase"]
    assert len(load_shapes()) == 8
    with pytest.warns(UserWarning, match="no mesh"):
        meshes = load_shapes(shapenet=shapenet_root, classes=["aeroplane"], per_class=2)
    assert len(meshes) == 2 and all(m.label == 404 for m in meshes)
    with pytest.raises(KeyError, match="no class 'piano'"):
        load_shapes(shapenet=shapenet_root, classes=["piano"])


def test_reports_take_their_shapes_from_a_shapenet_folder(shapenet_root, tmp_path):
    """The reports' only ShapeNet-specific step: setup() picks the folder's models (gallery names are dropped)."""
    out, figures, meshes, image_size = setup(tmp_path / "r", tmp_path / "f", shapes=["vase"], shapenet=shapenet_root,
                                             smoke=True)
    assert out.is_dir() and figures.is_dir() and image_size == 64
    classes = {m.name.split("/")[0] for m in meshes}
    assert len(classes) >= 2 and classes <= {d.name for d in Path(shapenet_root).iterdir() if d.is_dir()}
    assert len(meshes) == len(classes) and all(m.label is not None for m in meshes)  # one labelled model per class
