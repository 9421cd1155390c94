"""Shared fixtures: the ShapeNet sample beside the checkout, small meshes and renderers."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import semkit
from semkit import gallery

ROOT = Path(__file__).resolve().parents[1]
SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
FIGURES = ROOT.parent / "shared" / "reference" / "paper-figures"
# ONNX exports go to this session's own folder, shared by its notebook kernels and Dask workers.
CACHE = tempfile.mkdtemp(prefix="semkit-test-cache-")
os.environ["SEMKIT_CACHE"] = CACHE


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def shapenet_root() -> Path:
    if not SHAPENET.is_dir():
        pytest.skip(f"the ShapeNet sample is not at {SHAPENET} (set SEMKIT_SHAPENET)")
    return SHAPENET


@pytest.fixture(scope="session")
def shapenet_index(shapenet_root) -> dict:
    return json.loads((shapenet_root / "index.json").read_text())


@pytest.fixture(scope="session")
def paper_figures() -> Path:
    if not FIGURES.is_dir():
        pytest.skip(f"the paper's figures are not at {FIGURES}")
    return FIGURES


@pytest.fixture(scope="session")
def mug() -> semkit.Mesh:
    return gallery.load("coffee_mug")


@pytest.fixture(scope="session")
def chair_mesh(shapenet_root) -> semkit.Mesh:
    """A real ShapeNet chair (9,552 faces), the one of the paper's chair figure."""
    return semkit.scene.load_mesh(
        shapenet_root / "chair" / "341fcdd8a40a2612456cbf78e1e89022" / "models" / "model_normalized.obj", label=559
    )


@pytest.fixture(scope="session")
def lite0() -> semkit.Classifier:
    return semkit.load_classifier("efficientnet_lite0")


@pytest.fixture
def box_mesh() -> semkit.Mesh:
    """An axis-aligned box 2 x 1.2 x 1.6 (already normalized: longest side 2, centred)."""
    import trimesh

    box = trimesh.creation.box((2.0, 1.2, 1.6))
    return semkit.Mesh(np.asarray(box.vertices), np.asarray(box.faces), name="box")


def silhouette_iou(a, b, min_brightness: float = 0.05) -> float:
    """IoU of the pixels brighter than ``min_brightness`` (images [3, H, W] or [H, W, 3] arrays/tensors)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ca = 0 if a.shape[0] == 3 else -1
    cb = 0 if b.shape[0] == 3 else -1
    sa, sb = a.mean(axis=ca) > min_brightness, b.mean(axis=cb) > min_brightness
    return float((sa & sb).sum() / max((sa | sb).sum(), 1))
