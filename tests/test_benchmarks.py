"""The benchmark scripts run (at toy sizes) where CI runs, so a lent GPU machine finds them working."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semkit.render import gl_unavailable_reason

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_runs_on_the_cpu_at_toy_sizes(tmp_path, shapenet_root):
    out_json, out_md = tmp_path / "gpu.json", tmp_path / "gpu.md"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--quick", "--networks",
         "efficientnet_lite0", "--json", str(out_json), "--markdown", str(out_md)],
        check=True, capture_output=True, text=True, env={**os.environ, "SEMKIT_SHAPENET": str(shapenet_root)},
    )
    result = json.loads(out_json.read_text())
    assert {r["threads"] for r in result["render"] if r["processes"] == 1} >= {1, 2}
    assert all(r["per_s"] > 0 for r in result["render"] + result["classify"] + result["map"])
    maps = result["map"]
    assert {m["pipeline"] for m in maps} == {True, False}
    assert all(m["points"] == 8 * 3 for m in maps)  # the --quick grid: azimuth step 45 (8) x elevation -10, 35, 80
    if gl_unavailable_reason() is None:  # the gl backend is measured where it runs, its maps beside embree's
        assert [r["backend"] for r in result["render"]].count("gl") == 1 and result["machine"]["gl"]
        assert {m["backend"] for m in maps} == {"embree", "gl"}
        gl_map, embree_map = (next(m for m in maps if m["backend"] == b) for b in ("gl", "embree"))
        assert gl_map["top1_rate"] == embree_map["top1_rate"]  # the same images classify the same
    low = [m for m in maps if m["precision"] == "bfloat16"]  # Lite0 in bfloat16: its own row, its agreement measured
    assert len(low) == 1 and 0 <= low[0]["top1_agreement"] <= 1 and "in bfloat16" in out_md.read_text()
    study = result["study"]  # the --quick study: 2 shapes x 3 networks, azimuth step 90 (4) x elevation -10, 80 (2)
    assert study["shapes"] == 2 and study["views"] == 2 * 4 * 2 and study["classifications"] == 3 * study["views"]
    text = out_md.read_text()
    assert "efficientnet_lite0" in text and "points/s" in text and "paper's study" in text
    assert "A study of 2 ShapeNet shapes x 3 networks" in text


def test_gl_cpu_benchmark_runs_at_toy_sizes_beside_another_checkout(tmp_path, shapenet_root):
    if gl_unavailable_reason() is not None:
        pytest.skip(gl_unavailable_reason())
    out_md = tmp_path / "gl_cpu.md"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gl_cpu.py"), "--quick", "--against", str(ROOT), "--markdown", str(out_md)],
        check=True, capture_output=True, text=True, env={**os.environ, "SEMKIT_SHAPENET": str(shapenet_root)},
    )
    text = out_md.read_text()
    assert text.count("| bench, white on black |") == 1 and "(batch)" in text and "textured bench, materials" in text
    assert "gl against embree on 2 meshes" in text and "| white on black | 2 | 2 |" in text
