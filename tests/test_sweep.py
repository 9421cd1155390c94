"""Studies on a 2-worker dask LocalCluster (processes): complete, resumed, and with a worker killed mid-study."""

import os
import signal

import numpy as np
import pytest
import xarray as xr
from dask.distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

import semkit
from semkit import Maps, Regions, Space, study
from semkit.app.cli import main

SHAPES = ["coffee_mug", "vase"]
NETWORKS = ["efficientnet_lite0", "efficientnet_lite1"]
SMALL = {"kind": Maps(step=(90, 50)), "image_size": 48}


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with Client(cluster) as c:
        yield c
    cluster.close()


def reference_map(shape, network):
    f = semkit.SemanticFunction(semkit.gallery.load(shape), network, renderer=semkit.Renderer(image_size=48))
    return semkit.semantic_map(f, space=Space.paper(), step=(90, 50), progress=False)


def test_a_complete_sweep_is_one_dataset(tmp_path, client):
    ds = study(SHAPES, NETWORKS, store=tmp_path / "s.zarr", scheduler=client, progress=False, **SMALL)
    assert ds.score.dims == ("network", "shape", "azimuth", "elevation") and ds.score.shape == (2, 2, 4, 3)
    assert (ds.done == 1).all() and ds.attrs["computed"] == 4
    assert ds.label_name.values.tolist() == ["coffee mug", "vase"]
    ref = reference_map("vase", "efficientnet_lite1")
    np.testing.assert_allclose(ds.score.sel(network="efficientnet_lite1", shape="vase"), ref.score, atol=1e-5)
    np.testing.assert_array_equal(ds.top1.sel(network="efficientnet_lite1", shape="vase"), ref.top1)
    assert ds.score.groupby("label_name").mean("shape").sizes["label_name"] == 2  # ready for class averages


def test_a_rerun_computes_only_what_is_missing(tmp_path, client):
    store = tmp_path / "s.zarr"
    first = study(SHAPES, NETWORKS, store=store, scheduler=client, progress=False, **SMALL)
    again = study(SHAPES, NETWORKS, store=store, scheduler=client, progress=False, **SMALL)
    assert again.attrs["computed"] == 0
    xr.testing.assert_identical(first.drop_attrs(), again.drop_attrs())
    # an unfinished task (its done flag unset, its values wiped) is redone, and only it
    region = {"network": slice(1, 2), "shape": slice(0, 1)}
    wiped = xr.Dataset({"done": (("network", "shape"), np.zeros((1, 1), np.int8)),
                        "score": (("network", "shape", "azimuth", "elevation"), np.full((1, 1, 4, 3), np.nan))})
    wiped.to_zarr(store, region={**region, "azimuth": slice(None), "elevation": slice(None)}, consolidated=False)
    assert semkit.open(store).score.isel(network=1, shape=0).isnull().all()
    resumed = study(SHAPES, NETWORKS, store=store, scheduler=client, progress=False, **SMALL)
    assert resumed.attrs["computed"] == 1
    xr.testing.assert_identical(first.drop_attrs(), resumed.drop_attrs())
    with pytest.raises(ValueError, match="other settings"):
        study(SHAPES, NETWORKS, Maps(step=(45, 50)), image_size=48, store=store, scheduler=client, progress=False)


class KillAWorkerMidTask(SchedulerPlugin):
    """When the first sweep task finishes, SIGKILL the other worker, which is running another one."""

    def __init__(self, scheduler, pids):
        self.scheduler, self.pids, self.killed = scheduler, pids, []

    def transition(self, key, start, finish, *args, **kwargs):
        if self.killed or finish != "memory" or not str(key).startswith("semkit-"):
            return
        holders = {ws.address for ws in self.scheduler.tasks[key].who_has or ()}
        for address, worker in self.scheduler.workers.items():
            running = [ts.key for ts in worker.processing if str(ts.key).startswith("semkit-")]
            if running and address not in holders:
                os.kill(self.pids[address], signal.SIGKILL)
                self.killed.append((key, running))
                return


def test_adaptive_map_sweeps(tmp_path, client):
    kw = {"kind": Maps(step=(10, 10), adaptive=True, max_error=0.05), "image_size": 48}
    ds = study(["vase"], ["efficientnet_lite0"], store=tmp_path / "a.zarr", scheduler=client, progress=False, **kw)
    assert ds.evaluated.dims == ("network", "shape", "azimuth", "elevation") and ds.evaluated.dtype == bool
    f = semkit.SemanticFunction(semkit.gallery.load("vase"), "efficientnet_lite0", renderer=semkit.Renderer(image_size=48))
    ref = semkit.semantic_map(f, space=Space.paper(), step=(10, 10), adaptive=True, max_error=0.05, progress=False)
    assert f.queries == int(ds.evaluated.sum()) < ds.evaluated.size
    np.testing.assert_array_equal(ds.evaluated.isel(network=0, shape=0), ref.evaluated)
    np.testing.assert_allclose(ds.score.isel(network=0, shape=0), ref.score, atol=1e-5)
    with pytest.raises(ValueError, match="other settings"):
        study(["vase"], ["efficientnet_lite0"], Maps(step=(10, 10)), image_size=48, store=tmp_path / "a.zarr",
              scheduler=client, progress=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'adaptive'"):
        Regions(adaptive=True)


def test_region_sweeps(tmp_path, client):
    work = Regions(starts=[[30, 20]], algorithms=("naive", "oir_b"), iterations=60, step_rule="adaptive")
    ds = study(["vase"], ["efficientnet_lite0"], work, image_size=48, store=tmp_path / "r.zarr", scheduler=client,
               progress=False)
    assert ds.lower.dims == ("network", "shape", "start", "algorithm", "param")
    assert (ds.upper >= ds.lower).all() and (ds.queries > 0).all()
    assert semkit.srvr(ds).dims == ("network", "shape", "algorithm")


def test_the_sweep_command(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text("kind: map\nstore: out.zarr\nnetworks: [efficientnet_lite0]\nshapes: [vase]\nstep: [120, 50]\n"
                      "image_size: 48\nworkers: 1\n")
    assert main(["sweep", str(config)]) == 0
    ds = semkit.open(tmp_path / "out.zarr")
    assert ds.score.shape == (1, 1, 3, 3) and int(ds.done.sum()) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: x.zarr\nnetworks: [efficientnet_lite0]\nshapes: [vase]\nzoom: 2\n")
    with pytest.raises(SystemExit):
        main(["sweep", str(bad)])


def test_bad_studies_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown study kind"):
        study(SHAPES, NETWORKS, "movie", store=tmp_path / "s.zarr")
    with pytest.raises(ValueError, match=".zarr"):
        study(SHAPES, NETWORKS, store=tmp_path / "s.nc", scheduler="local")
    with pytest.raises(ValueError, match="unknown region algorithm 'oir_x'"):
        Regions(algorithms=("oir_x",))
    with pytest.raises(ValueError, match="workers must be a whole number of at least 1"):
        study(SHAPES, NETWORKS, store=tmp_path / "s.zarr", scheduler="local", workers=0)
    with pytest.raises(TypeError, match=r"shapes is a list, got 'vase': write \['vase'\]"):
        study("vase", NETWORKS)
    assert not (tmp_path / "s.zarr").exists()  # nothing made for a refused study


def test_a_worker_killed_mid_sweep_loses_nothing(tmp_path, client):
    """Last in this module: it kills one of the module's workers (its nanny starts a fresh one)."""
    cluster = client.cluster
    shapes = ["coffee_mug", "vase", "water_bottle"]
    killer = KillAWorkerMidTask(cluster.scheduler, client.run(os.getpid))
    cluster.scheduler.add_plugin(killer, name="kill-a-worker")
    try:
        ds = study(shapes, NETWORKS, store=tmp_path / "s.zarr", scheduler=client, progress=False, **SMALL)
    finally:
        cluster.scheduler.remove_plugin(name="kill-a-worker")
    assert killer.killed, "no worker was running a task when the first one finished"
    (finished, interrupted), = killer.killed
    assert finished not in interrupted
    assert (ds.done == 1).all() and np.isfinite(ds.score).all() and (ds.top1 >= 0).all()
    ref = study(shapes, NETWORKS, store=tmp_path / "ref.zarr", scheduler=client, progress=False, **SMALL)
    xr.testing.assert_allclose(ds.score, ref.score, atol=1e-5)
    xr.testing.assert_equal(ds.top1, ref.top1)
