"""timm networks by name: weights from a file or the Hugging Face hub cache, preprocessing from pretrained_cfg."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

import semkit
from semkit import load_classifier
from semkit.classify import imagenet_labels

timm = pytest.importorskip("timm")
VIEWS = {"azimuth": np.arange(0.0, 360.0, 90.0), "elevation": 30.0}


def _random_timm(name: str) -> torch.nn.Module:
    """timm's model with random weights and a sharpened head, so that probabilities differ from uniform."""
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    head = model.get_classifier()
    with torch.no_grad():
        head.weight.mul_(200.0)
    return model


def _timm_probabilities(model: torch.nn.Module, images: torch.Tensor, mean, std) -> torch.Tensor:
    with torch.no_grad():
        x = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        return model(x).softmax(-1)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_timm_network_from_a_file_gives_timms_probabilities(mug, tmp_path, suffix):
    reference = _random_timm("resnet18")
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(reference.state_dict(), path)
    else:
        torch.save(reference.state_dict(), path)
    c = load_classifier("timm/resnet18", weights=path)
    cfg = reference.pretrained_cfg
    assert c.name == "timm/resnet18" and c.input_size == cfg["input_size"][-1] == 224
    assert c.labels == imagenet_labels()
    f = semkit.SemanticFunction(mug, c)
    assert f.renderer.image_size == 224  # renders made at the network's input size, not resized or cropped
    images = f.renderer.render(mug, **VIEWS)
    with torch.inference_mode():
        probs = c(images)
    expected = _timm_probabilities(reference, images, cfg["mean"], cfg["std"])
    assert expected.max() > 0.1  # a distribution that the wrong preprocessing would change
    assert (probs - expected).abs().max() <= 1e-4
    assert list(c._exported) == [(224, 224)]  # run in ONNX Runtime, as semkit runs it on a CPU
    assert (_timm_probabilities(reference, images, (0.5,) * 3, (0.5,) * 3) - expected).abs().max() > 1e-2


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Sockets that refuse to connect, and a record of every attempt."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"test: no network ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # as HF_HOME / HF_HUB_CACHE set at start-up would
    for variable in ("SEMKIT_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    return cache


def _put_in_hub_cache(cache, repo: str, model: torch.nn.Module) -> None:
    """The layout huggingface_hub's downloads leave: refs/main names the snapshot holding the file."""
    from safetensors.torch import save_file

    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True)
    save_file(model.state_dict(), folder / "snapshots" / commit / "model.safetensors")


@pytest.mark.parametrize("switch", ["SEMKIT_OFFLINE", "HF_HUB_OFFLINE", "download=False"])
def test_timm_offline_uses_the_hub_cache_and_never_asks(mug, hub_cache, monkeypatch, no_network, switch):
    kwargs = {"download": False} if switch == "download=False" else {}
    if switch != "download=False":
        monkeypatch.setenv(switch, "1")
    with pytest.raises(FileNotFoundError, match=f"offline \\({switch}") as err:
        load_classifier("timm/test_resnet", **kwargs)
    message = str(err.value)
    assert "timm/test_resnet (timm/test_resnet.r160_in1k)" in message and str(hub_cache) in message
    assert "weights='/path/to/model.safetensors'" in message

    reference = _random_timm("test_resnet")
    _put_in_hub_cache(hub_cache, "timm/test_resnet.r160_in1k", reference)
    c = load_classifier("timm/test_resnet", **kwargs)
    cfg = reference.pretrained_cfg
    assert c.input_size == 160 and cfg["mean"] == (0.5, 0.5, 0.5)  # its own size and normalization, not ImageNet's
    images = semkit.Renderer(image_size=c.input_size).render(mug, **VIEWS)
    with torch.inference_mode():
        probs = c(images)
    assert (probs - _timm_probabilities(reference, images, cfg["mean"], cfg["std"])).abs().max() <= 1e-4
    assert no_network == []


def test_timm_names_and_weights_that_do_not_fit_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown timm network 'resnet181'.*Did you mean \\['timm/resnet18'"):
        load_classifier("timm/resnet181")
    with pytest.raises(ValueError, match="Invalid pretrained tag \\(a9_in1k\\) for resnet18"):
        load_classifier("timm/resnet18.a9_in1k")
    with pytest.raises(ValueError, match="has no classifier head"):
        load_classifier("timm/vit_small_patch14_dinov2.lvd142m")
    path = tmp_path / "other.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), path)
    with pytest.raises(ValueError, match="do not fit timm/resnet18"):
        load_classifier("timm/resnet18", weights=path)
    with pytest.raises(ValueError, match="unknown network 'resnet181'.*'timm/<name>'"):
        load_classifier("resnet181")
