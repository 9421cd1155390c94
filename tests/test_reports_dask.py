"""The report notebooks on Dask: `semkit report -p scheduler local` makes the same maps in the same stores."""

import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import semkit
from semkit.app.reports import loadable, run_reports, setup

pytest.importorskip("papermill")
pytest.importorskip("dask.distributed")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COMPARISON, BENCHMARK = "03_network_comparison.ipynb", "06_benchmark.ipynb"
#: notebook 06 without its rendering metrics (worst views, the smoothed network): it reads the stored maps only
QUICK_06 = {"max_queries": 0, "sigma": None}


def report(folder: Path, names: list[str], **parameters) -> Path:
    """The notebooks ``names`` run as `semkit report --smoke` runs them, into ``folder`` (maps in folder/maps)."""
    parameters = {"smoke": True, "out": str(folder), "figures": str(folder / "figures"), **parameters}
    run_reports(NOTEBOOKS, folder, parameters, names=names, html=False, progress=False)
    return folder / "maps" / "comparison.zarr"


def stamps(store: Path) -> dict[str, int]:
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}


def test_the_comparison_report_on_dask_makes_the_maps_it_makes_here_in_the_same_store(tmp_path):
    start = time.perf_counter()
    on_dask = report(tmp_path / "dask", [COMPARISON], scheduler="local", workers=1)
    here = report(tmp_path / "here", [COMPARISON])
    a, b = semkit.open(on_dask), semkit.open(here)
    assert a.attrs["fingerprint"] == b.attrs["fingerprint"]  # one store key, whichever scheduler made it
    assert list(a.shape.values) == list(b.shape.values) and list(a.network.values) == list(b.network.values)
    np.testing.assert_allclose(a.score.values, b.score.values, atol=1e-5)
    xr.testing.assert_equal(a.correct, b.correct)
    assert bool(a.done.all()) and bool(b.done.all())

    before = stamps(on_dask)  # notebook 06, run here, reuses the maps made on Dask: it computes nothing
    report(tmp_path / "dask", [BENCHMARK], **QUICK_06)
    assert stamps(on_dask) == before and (tmp_path / "dask" / "benchmark.csv").exists()
    print(f"notebook 03 on Dask and here, then 06: {time.perf_counter() - start:.0f} s")


def test_the_reports_name_their_shapes_for_dask_workers(tmp_path, shapenet_root):
    """Gallery shapes by name, ShapeNet models by their files: what a worker loads, the same meshes."""
    _, _, meshes, _ = setup(tmp_path / "r", tmp_path / "f", shapes=["vase", "coffee_mug"])
    assert loadable(meshes) == ["vase", "coffee_mug"]
    with pytest.warns(UserWarning, match="no mesh"):  # the sample lacks a few meshes
        _, _, meshes, _ = setup(tmp_path / "r", tmp_path / "f", shapenet=shapenet_root, smoke=True)
    names = loadable(meshes)
    assert all(Path(n).is_absolute() and Path(n).is_file() for n in names)
    again = [semkit.load_shape(n) for n in names]
    assert [m.fingerprint() for m in again] == [m.fingerprint() for m in meshes]
    assert [(m.name, m.label) for m in again] == [(m.name, m.label) for m in meshes]
