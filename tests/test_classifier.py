import importlib
from pathlib import Path
import pickle
import sys
import types

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import semkit
from semkit import Classifier, load_classifier
from semkit.classify import imagenet_labels, resolve_label
from semkit.classify import IMAGENET_MEAN, IMAGENET_STD
from semkit.classify.loaders import LITE_MEAN, LITE_STD

SAMPLE_VIEWS = {"azimuth": [30.0, 120.0, 210.0, 300.0], "elevation": 30.0}


def test_labels_are_available_offline():
    labels = imagenet_labels()
    assert len(labels) == 1000
    assert labels[559] == "folding chair" and labels[703] == "park bench" and labels[404] == "airliner"


def test_resolve_label():
    assert resolve_label(559) == 559
    assert resolve_label("Folding Chair") == 559
    assert resolve_label(np.int64(3)) == 3
    with pytest.raises(ValueError, match="unknown class label 'foldingchair'; did you mean \\['folding chair'"):
        resolve_label("foldingchair")
    with pytest.raises(ValueError, match="out of range: there are 1000 classes"):
        resolve_label(1000)
    with pytest.raises(TypeError, match="index or a name"):
        resolve_label(None)


@pytest.mark.parametrize("name,size", [("efficientnet_lite0", 224), ("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_bundled_networks_load_offline(name, size):
    c = load_classifier(name)
    assert c.name == name and c.input_size == size and len(c.labels) == 1000
    probs = c(torch.rand(2, 3, 100, 100))  # any size is resized to the input size
    assert probs.shape == (2, 1000)
    torch.testing.assert_close(probs.sum(1), torch.ones(2))
    assert load_classifier(name.replace("_", "-")).name == name


def _stem_variance_ratio(classifier: Classifier, images: torch.Tensor, mean, std) -> float:
    """Variance of the stem convolution's output over the first BatchNorm's running variance (median over channels).

    The stem has no bias, so its BatchNorm's running statistics were collected on inputs normalized the
    way the weights were trained; inputs normalized the same way give a ratio near 1.
    """
    x = torch.nn.functional.interpolate(images, size=classifier.input_size, mode="bilinear", antialias=True)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        out = classifier.module._conv_stem(x)
    return float((out.var(dim=(0, 2, 3)) / classifier.module._bn0.running_var).median())


@pytest.mark.parametrize("name", semkit.BUNDLED)
def test_lite_input_normalization_is_the_one_the_weights_were_trained_with(name, shapenet_root, shapenet_index):
    """EfficientNet-Lite was trained on (x*255 - 127)/128 (tensorflow/tpu lite builder), not ImageNet mean/std.

    Shown on renders of known class: with that normalization the stem's output matches the
    statistics its BatchNorm saw in training; ImageNet mean/std inflates them about 4x.
    """
    c = load_classifier(name)
    renderer = semkit.Renderer(image_size=c.input_size)
    images = torch.cat(
        [
            renderer.render(semkit.scene.load_mesh(shapenet_root / cls / info["present"][0] / "models" / "model_normalized.obj"), **SAMPLE_VIEWS)
            for cls, info in shapenet_index.items()
        ]
    )
    lite = _stem_variance_ratio(c, images, LITE_MEAN, LITE_STD)
    imagenet = _stem_variance_ratio(c, images, IMAGENET_MEAN, IMAGENET_STD)
    assert 0.5 < lite < 1.6
    assert imagenet > 3.0 * lite
    torch.testing.assert_close(c.mean.flatten(), torch.tensor(LITE_MEAN))


def test_lite_normalization_on_a_photo_of_known_class():
    """matplotlib's Grace Hopper photo (ImageNet class 652, military uniform) is top-1 for all three networks."""
    import matplotlib.cbook

    image = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    x = torch.from_numpy(np.asarray(image) / 255.0).permute(2, 0, 1)[None].float()
    for name in semkit.BUNDLED:
        with torch.inference_mode():
            assert load_classifier(name)(x).argmax().item() == 652, name


def test_renders_of_known_class_are_recognised(chair_mesh, lite0):
    images = semkit.Renderer().render(chair_mesh, azimuth=np.arange(0, 360, 45.0), elevation=30)
    with torch.inference_mode():
        top1 = lite0(images).argmax(1)
    assert (top1 == 559).float().mean() >= 0.75  # folding chair


def test_unknown_networks_get_a_clear_error():
    with pytest.raises(ValueError, match="unknown network 'resnet51'.*Did you mean \\['resnet50'"):
        load_classifier("resnet51")


def _hub_file(tmp_path, monkeypatch, name: str) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = torchvision.models.get_model_weights(name)["IMAGENET1K_V1"]
    path = tmp_path / "hub" / "checkpoints" / entry.url.rsplit("/", 1)[1]
    return path


def test_torchvision_weights_missing_offline_say_where_to_put_them(tmp_path, monkeypatch):
    path = _hub_file(tmp_path, monkeypatch, "resnet50")
    monkeypatch.setenv("SEMKIT_OFFLINE", "1")  # downloads: tests/test_weights.py
    with pytest.raises(FileNotFoundError) as err:
        load_classifier("resnet50")
    message = str(err.value)
    assert message.startswith("offline (SEMKIT_OFFLINE=1)") and "resnet50-0676ba61.pth" in message and str(path) in message and "https://download.pytorch.org" in message
    assert "weights='/path/to/file.pth'" in message


def test_torchvision_weights_from_the_hub_cache(tmp_path, monkeypatch):
    path = _hub_file(tmp_path, monkeypatch, "squeezenet1_1")
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1(weights=None).eval()
    torch.save(reference.state_dict(), path)
    c = load_classifier("squeezenet1_1")
    assert c.input_size == 224 and c.name == "squeezenet1_1"
    x = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        expected = reference((x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        torch.testing.assert_close(c.logits(x), expected)


def test_torchvision_weights_from_a_path_and_inception_style_networks(tmp_path):
    path = tmp_path / "my_googlenet.pth"
    net = torchvision.models.googlenet(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    torch.save(net.state_dict(), path)
    c = load_classifier("googlenet", weights=path)
    assert c.input_size == 224
    c.engine = "torch"  # this test is about the weights and the input transform; ONNX exports are tested on other networks
    assert c(torch.rand(1, 3, 224, 224)).shape == (1, 1000)


def test_weights_are_never_unpickled(tmp_path):
    import argparse

    evil = tmp_path / "evil.pth"
    torch.save({"model": argparse.Namespace(run="anything")}, evil)  # not a plain state dict
    with pytest.raises(ValueError, match="never unpickles arbitrary objects"):
        load_classifier("squeezenet1_1", weights=evil)
    wrong = tmp_path / "wrong.pth"
    torch.save({"x": torch.zeros(2)}, wrong)
    with pytest.raises(ValueError, match="do not fit squeezenet1_1"):
        load_classifier("squeezenet1_1", weights=wrong)
    with pytest.raises(FileNotFoundError, match="weights file for efficientnet_lite0 not found"):
        load_classifier("efficientnet_lite0", weights=tmp_path / "none.pth")
    with pytest.raises(ValueError, match="has no weights 'IMAGENET9K'"):
        load_classifier("resnet50", weights="IMAGENET9K")


def test_any_module_can_be_wrapped():
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 4))
    c = Classifier(model, input_size=32, name="tiny", labels=["a", "b", "c", "d"], preprocess=lambda x: x * 2)
    assert c(torch.rand(5, 3, 64, 64)).shape == (5, 4)
    assert resolve_label("c", c.labels) == 2
    assert not any(p.requires_grad for p in c.parameters())
    with pytest.raises(ValueError, match="images must be \\[B, 3, H, W\\]"):
        c(torch.rand(3, 64, 64))


def test_onnx_runtime_gives_the_networks_probabilities(chair_mesh, lite0):
    """On a CPU, inference runs in ONNX Runtime: same probabilities as PyTorch (to 1e-5), same ranking."""
    images = semkit.Renderer().render(chair_mesh, **SAMPLE_VIEWS)
    in_torch = Classifier(lite0.module, input_size=224, mean=LITE_MEAN, std=LITE_STD, engine="torch")
    with torch.inference_mode():
        fast, reference = lite0(images), in_torch(images)
    assert list(lite0._exported) == [(224, 224)] and not in_torch._exported
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-5)
    assert (fast.argmax(1) == reference.argmax(1)).all()
    # resized inputs, micro-batches and a batch of one
    with torch.inference_mode():
        torch.testing.assert_close(lite0(images[:1]), reference[:1], rtol=0, atol=1e-5)
        torch.testing.assert_close(lite0(torch.rand(5, 3, 100, 100)).sum(1), torch.ones(5))
    # inputs that need gradients run in PyTorch
    x = images[:1].clone().requires_grad_()
    lite0(x)[0, 559].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # the runtime session is not pickled, and is remade where it is used
    again = pickle.loads(pickle.dumps(lite0))
    assert not again._exported
    with torch.inference_mode():
        torch.testing.assert_close(again(images), fast)


class _Branchy(torch.nn.Module):
    """A network whose output depends on a data-dependent branch, which an export cannot keep."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x):
        features = x.mean((2, 3))
        return self.linear(features) if bool(features.sum() > 0.1) else -self.linear(features)


def test_networks_that_do_not_export_faithfully_run_in_pytorch(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMKIT_CACHE", str(tmp_path))
    images = torch.rand(2, 3, 16, 16) + 0.5
    auto = Classifier(_Branchy(), input_size=16, labels=["a", "b"])
    with pytest.warns(UserWarning, match="classifier runs in PyTorch, not ONNX Runtime"), torch.inference_mode():
        probs = auto(images)
    assert auto.engine == "auto" and auto.engines() == {(16, 16): "torch"}  # the choice stays; this size runs in PyTorch
    assert not list(tmp_path.rglob("*.onnx"))  # the unfaithful export is not kept
    with torch.inference_mode():
        torch.testing.assert_close(probs, Classifier(auto.module, input_size=16, labels=["a", "b"], engine="torch")(images))
    strict = Classifier(_Branchy(), input_size=16, labels=["a", "b"], engine="onnxruntime")
    with pytest.raises(RuntimeError, match="classifier cannot run in ONNX Runtime"), torch.inference_mode():
        strict(images)
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'"):
        Classifier(_Branchy(), input_size=16, engine="tensorrt")


NET_SOURCE = '''
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x).mean((2, 3)) * {factor}
'''


def _net_module(folder, factor: float):
    """A network class in a source file, as a library or the user's own code defines one."""
    (folder / "semkit_test_net.py").write_text(NET_SOURCE.format(factor=factor))
    sys.path.insert(0, str(folder))
    try:
        importlib.invalidate_caches()
        module = sys.modules.get("semkit_test_net")
        return importlib.reload(module) if module else importlib.import_module("semkit_test_net")
    finally:
        sys.path.remove(str(folder))


def test_onnx_exports_are_kept_on_disk_and_remade_when_the_code_changes(tmp_path, monkeypatch):
    from semkit.classify import engine as module

    monkeypatch.setenv("SEMKIT_CACHE", str(tmp_path / "cache"))
    module.EXPORTS.clear()  # as in a fresh process
    images = torch.rand(3, 3, 16, 16)
    net = _net_module(tmp_path, 2.0)
    torch.manual_seed(0)
    model = net.Net()

    def run(model):
        with torch.inference_mode():
            c = Classifier(model, input_size=16, labels=list("abcd"), engine="onnxruntime")
            return c(images), Classifier(model, input_size=16, labels=list("abcd"), engine="torch")(images)

    def kept() -> set:
        return set((tmp_path / "cache" / "onnx").glob("*.onnx"))

    fast, reference = run(model)
    torch.testing.assert_close(fast, reference)
    assert len(kept()) == 1 and not list((tmp_path / "cache" / "onnx").glob(".*"))

    # another process loads the export from disk instead of exporting again
    module.EXPORTS.clear()
    export = module.export_onnx
    monkeypatch.setattr(module, "export_onnx", lambda *a: pytest.fail("exported again"))
    torch.testing.assert_close(run(model)[0], fast)

    # edited code and other weights are exported again, beside the first export
    monkeypatch.setattr(module, "export_onnx", export)
    module.EXPORTS.clear()
    edited = _net_module(tmp_path, 3.0).Net()
    edited.load_state_dict(model.state_dict())
    assert repr(edited) == repr(model)
    first = kept()
    torch.testing.assert_close(*run(edited))
    (before,) = kept() - first
    biases = edited.conv.bias.clone(), edited.conv.bias + 1.0
    with torch.no_grad():
        edited.conv.bias.copy_(biases[1])
    torch.testing.assert_close(*run(edited))
    (after,) = kept() - first - {before}

    # a stale file (here, the export before the bias changed) or a broken one is exported again and replaced
    after.write_bytes(before.read_bytes())
    before.write_bytes(b"not onnx")
    for bias in biases:
        with torch.no_grad():
            edited.conv.bias.copy_(bias)
        module.EXPORTS.clear()
        torch.testing.assert_close(*run(edited))
    assert b"not onnx" != before.read_bytes() != after.read_bytes()


def test_exports_stay_in_memory_where_asked_or_where_the_code_has_no_file(tmp_path, monkeypatch):
    from semkit.classify import engine as module

    module.EXPORTS.clear()
    monkeypatch.setenv("SEMKIT_CACHE", "")
    model = _net_module(tmp_path, 2.0).Net()
    with torch.inference_mode():
        Classifier(model, input_size=16, labels=list("abcd"), engine="onnxruntime")(torch.rand(1, 3, 16, 16))
    assert len(module.EXPORTS) == 1 and not list(tmp_path.rglob("*.onnx"))

    monkeypatch.setenv("SEMKIT_CACHE", str(tmp_path / "cache"))
    notebook = types.ModuleType("__notebook__")  # a class typed into a notebook has no source file
    exec(NET_SOURCE.format(factor=5.0), notebook.__dict__)
    monkeypatch.setitem(sys.modules, "__notebook__", notebook)
    with torch.inference_mode():
        Classifier(notebook.Net(), input_size=16, labels=list("abcd"), engine="onnxruntime")(torch.rand(1, 3, 16, 16))
    assert len(module.EXPORTS) == 2 and not (tmp_path / "cache").exists()
