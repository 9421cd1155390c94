"""One GPU per Dask worker: a study's LocalCluster on a GPU machine runs a worker per device, each pinned to it.

A worker process sees one GPU: `PinDevice` sets ``CUDA_VISIBLE_DEVICES`` (torch's ``cuda`` is then that
device) and ``SEMKIT_GL_DEVICE`` (the EGL device the gl backend draws on) when the worker starts, before any
task initialises CUDA. Workers are numbered 0, 1, ... by the LocalCluster; worker i takes device i modulo the
devices. On a machine without a GPU there are no devices and nothing is pinned: the same code path runs.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from distributed import WorkerPlugin

from ..render.gl import GL_DEVICE


def gpu_devices() -> list[str]:
    """The CUDA devices this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (indices, or UUIDs on some
    clusters); none without a GPU. A job given ``CUDA_VISIBLE_DEVICES=2,3`` keeps to GPUs 2 and 3."""
    import torch

    if not torch.cuda.is_available():
        return []
    count = torch.cuda.device_count()
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given:
        return [d.strip() for d in given.split(",") if d.strip()][:count]
    return [str(i) for i in range(count)]


class PinDevice(WorkerPlugin):
    """Pin each worker of a LocalCluster to one of ``devices`` (worker i to device i modulo their number).

    CUDA numbers devices in PCI bus order here (``CUDA_DEVICE_ORDER=PCI_BUS_ID``), as EGL lists them, so that an
    index names the same GPU for torch and for the gl backend; a device named by UUID leaves EGL its first device.
    """

    name = "semkit-pin-device"

    def __init__(self, devices: Sequence[str | int]) -> None:
        self.devices = [str(d) for d in devices]

    def setup(self, worker: Any) -> None:
        if not self.devices:
            return
        index = int(worker.name) if str(worker.name).isdigit() else 0
        device = self.devices[index % len(self.devices)]
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        os.environ["CUDA_VISIBLE_DEVICES"] = device
        if device.isdigit():
            os.environ[GL_DEVICE] = device


def local_cluster(workers: int | None):
    """A LocalCluster and its Client: ``workers`` processes (None: one per GPU, or 2 without one), each pinned to a
    GPU where there are GPUs."""
    from dask.distributed import Client, LocalCluster

    devices = gpu_devices()
    cluster = LocalCluster(n_workers=workers or len(devices) or 2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster)
    client.register_plugin(PinDevice(devices))
    return cluster, client
