"""Network precision: float32 unless asked; a lower precision is recorded in results and in the network's
fingerprint, a store made in one precision is never handed back for another, and bfloat16 answers as float32
does on most renders of the real bundled Lite0."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

import semkit
from semkit import SemanticFunction, gallery, semantic_map
from semkit.classify import PRECISIONS
from semkit.classify.engine import openvino_unavailable_reason
from semkit.store import StoreError

needs_openvino = pytest.mark.skipif(openvino_unavailable_reason() is not None, reason=str(openvino_unavailable_reason()))


class Tiny(nn.Module):
    """A real (tiny) network: colour means to 1000 logits."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3, 1000)

    def forward(self, x):
        return self.linear(x.mean((2, 3)))


def tiny(precision="float32"):
    return semkit.Classifier(Tiny(), input_size=32, precision=precision)


def test_float32_is_the_default_and_the_choices_are_three():
    assert PRECISIONS == ("float32", "bfloat16", "float16")
    assert tiny().precision == "float32" and semkit.load_classifier("efficientnet_lite0").precision == "float32"
    lite = semkit.load_classifier("efficientnet_lite0", precision="bfloat16")
    assert lite.precision == "bfloat16" and "precision='bfloat16'" in repr(lite)


@pytest.mark.parametrize("make", [lambda: tiny("bf16"), lambda: semkit.load_classifier("efficientnet_lite0", precision="half"),
                                  lambda: tiny(torch.bfloat16)], ids=["Classifier", "load_classifier", "a torch dtype"])
def test_an_unknown_precision_names_the_three(make):
    with pytest.raises(ValueError, match="unknown precision .*: choose one of 'float32', 'bfloat16', 'float16'"):
        make()


def test_onnx_runtime_takes_float32_only():
    with pytest.raises(ValueError, match="engine='onnxruntime' runs float32 only"):
        semkit.Classifier(Tiny(), input_size=32, precision="bfloat16", engine="onnxruntime")


def test_float16_on_a_cpu_is_refused_with_the_way_out():
    with pytest.raises(ValueError, match="float16', which runs on a GPU only.*precision='bfloat16'"):
        tiny("float16")(torch.rand(1, 3, 32, 32))


def test_the_precision_is_part_of_the_fingerprint_and_float32s_is_unchanged():
    digests = {p: tiny(p).fingerprint() for p in PRECISIONS}
    assert len(set(digests.values())) == 3
    classifier = tiny()
    before = classifier.fingerprint()
    classifier.precision = "bfloat16"
    assert classifier.fingerprint() == digests["bfloat16"] != before


def test_results_record_the_precision(tmp_path):
    mug, renderer = gallery.load("coffee_mug"), semkit.Renderer(image_size=32)
    for precision in ("float32", "bfloat16"):
        f = SemanticFunction(mug, tiny(precision), renderer=renderer)
        result = semantic_map(f, step=(180, 100), progress=False)
        assert result.attrs["precision"] == precision
        regions = semkit.find_regions(f, [[100.0, 30.0]], "naive", iterations=2, progress=False)
        assert regions.attrs["precision"] == precision


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_float32_store_is_never_handed_back_for_bfloat16_nor_the_reverse(tmp_path, suffix):
    mug, renderer = gallery.load("coffee_mug"), semkit.Renderer(image_size=32)
    store = tmp_path / f"map{suffix}"

    def run(precision):
        return semantic_map(SemanticFunction(mug, tiny(precision), renderer=renderer), step=(180, 100), store=store,
                            progress=False)

    first = run("float32")
    with pytest.raises(StoreError, match="differs in function.network_digest, function.precision"):
        run("bfloat16")
    np.testing.assert_array_equal(run("float32").score, first.score)  # the float32 store still answers float32
    other = tmp_path / f"other{suffix}"
    semantic_map(SemanticFunction(mug, tiny("bfloat16"), renderer=renderer), step=(180, 100), store=other, progress=False)
    with pytest.raises(StoreError, match="differs in function.network_digest, function.precision"):
        semantic_map(SemanticFunction(mug, tiny(), renderer=renderer), step=(180, 100), store=other, progress=False)


@pytest.mark.parametrize("engine", ["auto", "torch"])
def test_bfloat16_answers_as_float32_on_most_renders_of_the_real_lite0(lite0, engine):
    """The bundled Lite0 at a small render size: top-1 mostly equal, probabilities close; "auto" runs it in OpenVINO
    where this CPU computes bfloat16 (else PyTorch's autocast), "torch" in PyTorch's autocast."""
    renderer = semkit.Renderer(image_size=64)
    points = np.array([[a, e] for a in range(0, 360, 45) for e in (0, 30)], dtype=float)
    images = torch.cat([renderer.render(gallery.load(name), azimuth=points[:, 0], elevation=points[:, 1])
                        for name in ("coffee_mug", "vase")])
    low = semkit.load_classifier("efficientnet_lite0", precision="bfloat16")
    low.engine = engine
    full, half = lite0(images), low(images)
    expected = "openvino" if engine == "auto" and openvino_unavailable_reason() is None else "torch"
    assert half.dtype == torch.float32 and low.engines() == {(224, 224): expected}
    agreement = float((full.argmax(1) == half.argmax(1)).float().mean())
    assert agreement >= 0.8, agreement
    assert float((full - half).abs().max()) < 0.2
    assert 0 < float((full - half).abs().max())  # bfloat16 is not float32


@needs_openvino
def test_openvino_runs_float32_as_onnx_runtime_does_and_bfloat16_as_another_network(lite0):
    """engine="openvino": float32 equal to ONNX Runtime's to rounding; bfloat16 in OpenVINO is neither float32 nor
    PyTorch's bfloat16 as far as stores go (three fingerprints)."""
    images = torch.rand(6, 3, 224, 224)
    in_openvino = semkit.load_classifier("efficientnet_lite0")
    in_openvino.engine = "openvino"
    torch.testing.assert_close(in_openvino(images), lite0(images), rtol=1e-3, atol=1e-5)
    assert in_openvino.engines() == {(224, 224): "openvino"} and lite0.engines()[(224, 224)] == "onnxruntime"
    assert in_openvino.fingerprint() == lite0.fingerprint()  # float32 is float32, whichever runtime computes it
    low = semkit.load_classifier("efficientnet_lite0", precision="bfloat16")
    prints = {}
    for engine in ("auto", "openvino", "torch"):
        low.engine = engine
        prints[engine] = low.fingerprint()
    assert prints["auto"] == prints["openvino"] != prints["torch"] and lite0.fingerprint() not in prints.values()


def test_without_openvino_bfloat16_runs_in_pytorch_and_a_failing_export_is_not_hidden(monkeypatch):
    from semkit.classify import classifier as module

    monkeypatch.setattr(module, "openvino_unavailable_reason", lambda: "OpenVINO is not installed")
    low = tiny("bfloat16")
    low(torch.rand(2, 3, 32, 32))
    assert low.engines() == {(32, 32): "torch"}
    monkeypatch.setattr(module, "openvino_unavailable_reason", lambda: None)
    failing = tiny("bfloat16")
    monkeypatch.setattr(module.OpenVinoNetwork, "of", lambda *a: (_ for _ in ()).throw(ValueError("no export")))
    with pytest.raises(RuntimeError, match="cannot run in OpenVINO in bfloat16: no export .*engine='torch'"):
        failing(torch.rand(2, 3, 32, 32))


def test_a_bfloat16_map_gives_back_its_function_in_bfloat16():
    f = SemanticFunction("coffee_mug", semkit.load_classifier("efficientnet_lite0", precision="bfloat16"),
                         renderer=semkit.Renderer(image_size=32))
    result = semantic_map(f, step=(180, 100), progress=False)
    again = result.semkit.function()
    assert again.classifier.precision == "bfloat16" and again.classifier.fingerprint() == f.classifier.fingerprint()
    points = np.array([[a, e] for a in result.azimuth.values for e in result.elevation.values])
    np.testing.assert_allclose(again(points), result.score.transpose("azimuth", "elevation").values.ravel(), atol=1e-6)


def test_a_study_in_bfloat16_loads_its_networks_in_it_on_dask_too(tmp_path):
    """StudySpec(precision=): the networks named load in it here and on Dask's workers; the store records it, so a
    float32 study never reads a bfloat16 store; a Classifier of another precision is refused."""
    spec = semkit.StudySpec(["vase"], ["efficientnet_lite0"], semkit.Maps(step=(120, 50)), image_size=32,
                            precision="bfloat16")
    here = semkit.study(spec, progress=False)
    on_dask = semkit.study(spec, store=tmp_path / "dask.zarr", scheduler="local", workers=1, progress=False)
    np.testing.assert_allclose(on_dask.score.values, here.score.values, atol=1e-6)
    settings = json.loads(on_dask.attrs["settings"])
    assert settings["precision"] == "bfloat16" and on_dask.semkit.function().classifier.precision == "bfloat16"
    full = semkit.study(dataclasses.replace(spec, precision="float32"), progress=False)
    assert "precision" not in json.loads(full.attrs["settings"])  # float32 studies keep the settings they had
    assert not np.allclose(full.score.values, here.score.values, atol=1e-6)  # another network, as far as results go
    with pytest.raises(ValueError, match="differs in .*precision"):
        semkit.study(dataclasses.replace(spec, precision="float32"), store=tmp_path / "dask.zarr", progress=False)
    with pytest.raises(ValueError, match="computes in float32, but the study's precision is 'bfloat16'"):
        semkit.StudySpec(["vase"], [semkit.load_classifier("efficientnet_lite0")], precision="bfloat16")
