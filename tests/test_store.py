"""The storage layer: stores of other functions are refused, concurrent writers share one store, damaged or
foreign stores are named, and no module reaches into another's private names."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import semkit
from semkit import Space, find_regions, gallery, semantic_map
from semkit.store import StoreError

SEMKIT = Path(semkit.__file__).parent


def wave(p):
    return (np.sin(np.radians(p[:, 0])) + 1) / 2 * np.exp(-(((p[:, 1] - 20) / 30) ** 2))


# ------------------------------------------------------------ identity
def test_a_store_of_another_lambda_is_refused_not_returned(tmp_path):
    f1 = lambda p: p[:, 0] / 360  # noqa: E731  (both lambdas have the same name)
    f2 = lambda p: p[:, 1] / 100  # noqa: E731
    for suffix in (".nc", ".zarr"):
        store = tmp_path / f"m{suffix}"
        first = semantic_map(f1, space=Space.paper(), step=30, store=store, progress=False)
        with pytest.raises(StoreError, match=r"other settings \(differs in function.canary\)"):
            semantic_map(f2, space=Space.paper(), step=30, store=store, progress=False)
        np.testing.assert_array_equal(semantic_map(f1, space=Space.paper(), step=30, store=store, progress=False).score, first.score)
    # an explicit key replaces the canary: the caller says which function it is
    keyed = tmp_path / "k.nc"
    semantic_map(f1, space=Space.paper(), step=30, store=keyed, key="angle/360", progress=False)
    with pytest.raises(StoreError, match="differs in function.key"):
        semantic_map(f2, space=Space.paper(), step=30, store=keyed, key="elevation/100", progress=False)
    # region searches too
    regions = tmp_path / "r.nc"
    find_regions(f1, [[100, 30]], "naive", space=Space.paper(), iterations=5, store=regions, progress=False)
    with pytest.raises(StoreError, match="differs in function.canary"):
        find_regions(f2, [[100, 30]], "naive", space=Space.paper(), iterations=5, store=regions, progress=False)


class Tiny(nn.Module):
    """A real (tiny) network: colour means to 1000 logits."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.linear = nn.Linear(3, 1000)

    def forward(self, x):
        return self.linear(x.mean((2, 3)))


def test_networks_with_the_same_name_but_other_weights_do_not_share_a_store(tmp_path):
    mug = gallery.load("coffee_mug")
    renderer = semkit.Renderer(image_size=32)
    a, b = (semkit.Classifier(Tiny(seed), input_size=32, engine="torch") for seed in (0, 1))
    assert a.name == b.name == "classifier" and a.fingerprint() != b.fingerprint()
    assert semkit.Classifier(Tiny(0), input_size=32).fingerprint() == a.fingerprint()  # the weights, not the object
    store = tmp_path / "net.nc"
    semantic_map(semkit.SemanticFunction(mug, a, renderer=renderer), step=(180, 100), store=store, progress=False)
    with pytest.raises(StoreError, match="differs in function.network_digest"):
        semantic_map(semkit.SemanticFunction(mug, b, renderer=renderer), step=(180, 100), store=store, progress=False)
    # another mesh of the same name is another function too
    squashed = semkit.Mesh(mug.vertices * [1, 0.5, 1], mug.faces, name=mug.name, label=mug.label)
    with pytest.raises(StoreError, match="differs in function.mesh_digest"):
        semantic_map(semkit.SemanticFunction(squashed, a, renderer=renderer), step=(180, 100), store=store, progress=False)


# --------------------------------------------------------- concurrency
WRITER = """
import sys, time, numpy as np, semkit
def wave(p):
    time.sleep(0.02)
    return (np.sin(np.radians(p[:, 0])) + 1) / 2 * np.exp(-(((p[:, 1] - 20) / 30) ** 2))
for store in sys.argv[1:]:
    ds = semkit.semantic_map(wave, space=semkit.Space.paper(), step=(10, 10), store=store, chunk_size=12, progress=False)
    assert np.isfinite(ds.score).all()
"""


def test_two_processes_computing_one_store_both_finish_and_it_reads_back_correct(tmp_path):
    """Two processes map into the same stores (a .nc file, then a .zarr folder): both finish, the stores are whole."""
    stores = [tmp_path / "shared.nc", tmp_path / "shared.zarr"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SEMKIT.parent), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, *map(str, stores)], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    for store in stores:
        back = semkit.open(store)
        az, el = np.meshgrid(back.azimuth, back.elevation, indexing="ij")
        np.testing.assert_allclose(back.score, wave(np.stack([az.ravel(), el.ravel()], 1)).reshape(az.shape))
        assert not store.with_name(store.name + ".partial").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".lock"))]  # no temporary or lock left behind


def test_store_locks_exclude_each_other_and_leave_no_lock_file(tmp_path):
    """Writers that lock one store in turn (threads, each with its own lock file handle) never overlap."""
    import threading

    from semkit.store import locked

    store, counter = tmp_path / "m.nc", tmp_path / "counter"
    counter.write_text("0")

    def work():
        for _ in range(40):
            with locked(store):
                value = int(counter.read_text())
                os.sched_yield()
                counter.write_text(str(value + 1))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "160"
    assert not (tmp_path / "m.nc.lock").exists()


# ---------------------------------------------------- damaged and foreign
class Counted:
    def __init__(self, stop_after=None):
        self.points, self.stop_after = 0, stop_after

    def __call__(self, p):
        if self.stop_after is not None and self.points >= self.stop_after:
            raise KeyboardInterrupt
        self.points += len(p)
        return wave(p)


def test_a_truncated_chunk_met_on_resume_is_computed_again(tmp_path):
    store = tmp_path / "map.nc"
    n = 36 * 11
    canary = n // 2  # the identity's probes: fixed points and a sample of the grid, half the map at most
    with pytest.raises(KeyboardInterrupt):
        semantic_map(Counted(stop_after=canary + 100), space=Space.paper(), step=(10, 10), store=store, chunk_size=50,
                     progress=False)
    chunks = sorted((tmp_path / "map.nc.partial").glob("chunk-*.npz"))
    assert len(chunks) >= 3
    data = chunks[1].read_bytes()
    chunks[1].write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    chunks[2].write_bytes(b"garbage")
    second = Counted()
    ds = semantic_map(second, space=Space.paper(), step=(10, 10), store=store, chunk_size=50, progress=False)
    missing = n - 50 * (len(chunks) - 2)
    assert missing <= second.points <= canary + missing  # the canary (some of it the missing points), then the rest
    np.testing.assert_array_equal(ds.score, semantic_map(wave, space=Space.paper(), step=(10, 10), progress=False).score)


def test_a_damaged_complete_store_is_named_never_read_as_data(tmp_path):
    store = tmp_path / "map.zarr"
    semantic_map(wave, space=Space.paper(), step=(10, 10), store=store, progress=False)
    chunk = next(p for p in (store / "score").rglob("*") if p.is_file() and not p.name.startswith((".", "zarr")))
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(StoreError, match=f"{store} is not a semkit store it can use .*Delete it"):
        semantic_map(wave, space=Space.paper(), step=(10, 10), store=store, progress=False)
    chunk.unlink()  # a missing chunk reads as fill values: still never returned as a map
    with pytest.raises(StoreError, match=r"damaged: chunks of score \(1 of 1\) are missing"):
        semantic_map(wave, space=Space.paper(), step=(10, 10), store=store, progress=False)


def test_a_path_holding_another_programs_data_gets_a_clear_error(tmp_path):
    junk = tmp_path / "x.nc"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(StoreError, match=r"x.nc is not a semkit store it can use .*delete it|x.nc is not a semkit store it can use .*Delete it"):
        semantic_map(wave, space=Space.paper(), step=30, store=junk, progress=False)
    foreign = tmp_path / "other.zarr"
    import xarray as xr

    xr.Dataset({"t": ("x", np.arange(3.0))}).to_zarr(foreign, consolidated=False)
    with pytest.raises(StoreError, match="other.zarr is not a semkit store .*records no semkit fingerprint"):
        semantic_map(wave, space=Space.paper(), step=30, store=foreign, progress=False)
    with pytest.raises(StoreError, match="x.nc is not a semkit store"):
        find_regions(wave, [[10, 10]], "naive", space=Space.paper(), iterations=3, store=junk, progress=False)
    with pytest.raises(StoreError, match="x.nc is not a semkit store"):
        semkit.open(junk)


# -------------------------------------------------------------- structure
def test_no_module_imports_another_modules_private_names():
    offences = []
    for path in SEMKIT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and (node.level or node.module.startswith("semkit")):
                offences += [f"{path.name}: from {'.' * node.level}{node.module} import {a.name}"
                             for a in node.names if a.name.startswith("_") and a.name != "__version__"]
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and node.value.id in {p.stem for p in SEMKIT.glob("*.py")}:
                offences.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not offences, offences
