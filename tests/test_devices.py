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
    before = dict(os.environ)
    devices.PinDevice([]).setup(type("Worker", (), {"name": 0})())
    assert dict(os.environ) == before


def test_each_local_worker_is_pinned_to_one_gpu_and_a_study_runs_there(monkeypatch, tmp_path):
    """Two GPUs (named, as none is here): a LocalCluster of one worker per GPU, worker i on GPU i; a study on it
    makes the maps it makes in this process."""
    monkeypatch.setattr(devices, "gpu_devices", lambda: ["0", "1"])
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
    assert seen == {0: "3", 1: "5", 2: "3"}  # a job's own GPUs (CUDA_VISIBLE_DEVICES=3,5), never others


def test_a_worker_pinned_to_a_gpu_named_by_uuid_leaves_egl_its_first_device(monkeypatch):
    monkeypatch.delenv(devices.GL_DEVICE, raising=False)
    before = dict(os.environ)
    try:
        devices.PinDevice(["GPU-8f2c"]).setup(type("Worker", (), {"name": 0})())
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-8f2c" and devices.GL_DEVICE not in os.environ
    finally:
        os.environ.clear()
        os.environ.update(before)


def test_a_jobs_gpus_are_the_ones_it_was_given(monkeypatch):
    """A job given CUDA_VISIBLE_DEVICES=2,3 pins its workers to GPUs 2 and 3 (torch's device count is the edge)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert devices.gpu_devices() == ["2", "3"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert devices.gpu_devices() == ["0", "1"]
