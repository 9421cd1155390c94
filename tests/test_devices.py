"""One GPU per Dask worker: the pinning, run on the CPU with the same code path (the devices are the edge)."""

import os

import numpy as np
import pytest

import semkit
from semkit.studies import devices


def test_a_machine_without_a_gpu_pins_nothing():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU machine: it has devices to pin")
    assert devices.gpu_devices() == []


def test_each_local_worker_is_pinned_to_one_gpu_and_a_study_runs_there(monkeypatch, tmp_path):
    """Two GPUs (named, as none is here): a LocalCluster of one worker per GPU, worker i on GPU i; a study on it
    makes the maps it makes in this process."""
    monkeypatch.setattr(devices, "gpu_devices", lambda: [0, 1])
    cluster, client = devices.local_cluster(None)
    try:
        pinned = client.run(lambda: (os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get(devices.GL_DEVICE)))
        assert sorted(pinned.values()) == [("0", "0"), ("1", "1")]
    finally:
        client.close()
        cluster.close()
    kwargs = {"kind": semkit.Maps(step=(120, 50)), "image_size": 32, "progress": False}
    on_dask = semkit.study(["vase"], ["efficientnet_lite0"], store=tmp_path / "dask.zarr", scheduler="local", **kwargs)
    here = semkit.study(["vase"], ["efficientnet_lite0"], store=tmp_path / "here.zarr", **kwargs)
    np.testing.assert_allclose(on_dask.score.values, here.score.values, atol=1e-5)


def test_a_worker_plugin_spreads_more_workers_than_gpus_round_robin():
    plugin = devices.PinDevice([3, 5])

    class Worker:
        def __init__(self, name):
            self.name = name

    seen = {}
    for name in (0, 1, 2):
        before = dict(os.environ)
        try:
            plugin.setup(Worker(name))
            seen[name] = os.environ["CUDA_VISIBLE_DEVICES"]
        finally:
            os.environ.clear()
            os.environ.update(before)
    assert seen == {0: "3", 1: "5", 2: "3"}
