"""Networks beyond the ImageNet CNNs: open_clip zero-shot classifiers, untrained weights, a user's own classes.

Most open_clip tests use a tiny architecture registered here (two layers per tower, 32-pixel input) with random
weights, offline; ViT-B-32 itself is built once, untrained; real weights only when the hub cache holds them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import semkit
from semkit import Classifier, Renderer, SemanticFunction, load_classifier
from semkit.classify import imagenet_labels, resolve_label
from semkit.classify import clip
from semkit.space import Space

open_clip = pytest.importorskip("open_clip")
TINY = "semkit-tiny-clip"
ONE_TEMPLATE = ["a photo of a {}."]


@pytest.fixture(scope="module", autouse=True)
def tiny_architecture(tmp_path_factory):
    """Register a tiny CLIP configuration with open_clip (as a user's own JSON config would be)."""
    path = tmp_path_factory.mktemp("clip-config") / f"{TINY}.json"
    path.write_text(json.dumps({
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }))
    open_clip.add_model_config(path)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("SEMKIT_OFFLINE", "1")


def test_open_clip_untrained_over_imagenet_offline_with_cached_prompts(offline, monkeypatch):
    c = load_classifier(f"open_clip/{TINY}", weights="random", templates=ONE_TEMPLATE, progress=False)
    assert c.labels == imagenet_labels() and c.weights == "random" and c.untrained and c.input_size == 32
    p = c(torch.rand(2, 3, 48, 48))
    assert p.shape == (2, 1000) and torch.allclose(p.sum(1), torch.ones(2), atol=1e-5)
    assert c.engines() == {(32, 32): "onnxruntime"}  # the image tower exports faithfully
    kept = list((semkit.classify.engine.cache_dir() / "clip").glob("*.pt"))
    assert kept, "the class embeddings are kept in $SEMKIT_CACHE"

    def no_text_tower(*args):
        raise AssertionError("the class embeddings were computed again")

    monkeypatch.setattr(clip, "encode_text", no_text_tower)
    again = load_classifier(f"open_clip/{TINY}", weights="random", templates=ONE_TEMPLATE, progress=False)
    assert torch.equal(again.module.classes, c.module.classes) and again.fingerprint() == c.fingerprint()


def test_open_clip_over_the_users_labels_inside_a_semantic_function(offline, mug):
    labels = ["coffee mug", "vase", "folding chair"]
    c = load_classifier(f"open_clip/{TINY}", weights="random", labels=labels, templates=["a {}", "a photo of a {}."],
                        progress=False)
    c.engine = "torch"
    assert c.labels == tuple(labels) and c.module.classes.shape == (3, 32)
    f = SemanticFunction(mug, c, "Vase", renderer=Renderer(image_size=32), space=Space.paper_1d())
    assert f.label == 1 and f.label_name == "vase"
    scores = f(np.array([[0.0], [90.0]]))
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()
    assert f.describe()["weights"] == "random"
    with pytest.raises(ValueError, match=r"did you mean \['vase'\]"):
        SemanticFunction(mug, c, "vas", renderer=Renderer(image_size=32), space=Space.paper_1d())


def test_prompts_templates_and_names_are_checked(offline):
    assert len(clip._templates(None, open_clip)) == 80 and all(t.count("{}") == 1 for t in clip._templates(None, open_clip))
    with pytest.raises(ValueError, match="one '\\{\\}'"):
        load_classifier(f"open_clip/{TINY}", weights="random", templates=["no slot"])
    with pytest.raises(ValueError, match=r"open_clip/ViT-B-32"):
        load_classifier("open_clip/ViT-B-33", weights="random")
    with pytest.raises(ValueError, match="has no weights 'laion9b'"):
        load_classifier("open_clip/ViT-B-32", weights="laion9b")
    with pytest.raises(ValueError, match="templates= are the prompts of an open_clip"):
        load_classifier("efficientnet_lite0", templates=ONE_TEMPLATE)


def test_trimmed_text_encoding_equals_open_clips():
    model = open_clip.create_model(TINY).eval()
    tokens = open_clip.get_tokenizer(TINY)(["a photo of a folding chair.", "a mug", "a bad photo of the big vase."])
    with torch.no_grad():
        assert torch.allclose(clip.encode_text(model, tokens), model.encode_text(tokens), atol=1e-5)


def test_missing_weights_offline_say_where_they_go(offline, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"offline \(SEMKIT_OFFLINE=1\).*laion/CLIP-ViT-B-32-laion2B-s34B-b79K"):
        load_classifier("open_clip/ViT-B-32", weights="laion2b_s34b_b79k")


def test_vit_b_32_untrained_offline(offline):
    """The real architecture, built once, untrained: 224-pixel input, its own mean and std, the users' labels."""
    c = load_classifier("open_clip/ViT-B-32", weights="random", labels=["mug", "vase"], templates=["{}"], progress=False)
    c.engine = "torch"  # (its ONNX export takes a minute; the tiny model covers that)
    assert c.input_size == 224 and np.allclose(c.mean.flatten(), [0.48145466, 0.4578275, 0.40821073])
    p = c(torch.rand(1, 3, 32, 32))
    assert p.shape == (1, 2) and torch.allclose(p.sum(), torch.tensor(1.0))


def test_real_weights_when_the_hub_cache_holds_them(mug):
    repo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    if semkit.classify.weights.hub_cached_file(repo, ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")) is None:
        pytest.skip(f"the weights of {repo} are not in the Hugging Face hub cache")
    c = load_classifier("open_clip/ViT-B-32", weights="laion2b_s34b_b79k", labels=["coffee mug", "airliner", "park bench"],
                        download=False, progress=False)
    p = c(Renderer(image_size=224, materials=True, background=0.5).render(mug, azimuth=[30.0, 120.0], elevation=20.0))
    assert p.mean(0).argmax() == 0, p  # a mug, rather than an airliner or a bench


def test_untrained_weights_for_torchvision_timm_and_bundled_offline(offline):
    for name in ("resnet18", "timm/mobilenetv3_small_050", "efficientnet_lite0"):
        if name.startswith("timm/"):
            pytest.importorskip("timm")
        c = load_classifier(name, weights="random")
        c.engine = "torch"
        assert c.weights == "random", name
        p = c(torch.rand(1, 3, 32, 32))
        assert p.shape == (1, 1000) and torch.allclose(p.sum(), torch.tensor(1.0)), name
    assert load_classifier(name, weights="random").fingerprint() == c.fingerprint(), "the same weights every time"
    assert load_classifier(name).fingerprint() != c.fingerprint()


def test_a_users_own_three_class_network_end_to_end(mug, tmp_path):
    """Maps, regions and their attrs name the network's own classes; label= takes them by name."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                 torch.nn.Linear(4, 3))
    c = Classifier(module, input_size=32, name="shapes3", labels=["cube", "sphere", "mug"], engine="torch")
    assert c.resolve_label("MUG") == 2
    with pytest.raises(ValueError, match=r"did you mean \['sphere'\]"):
        c.resolve_label("spheres")
    with pytest.raises(ValueError, match="the network's 3 labels are \\['cube', 'sphere', 'mug'\\]"):
        resolve_label("folding chair", c.labels)
    f = SemanticFunction(mug, c, "mug", renderer=Renderer(image_size=32), space=Space.paper_1d())
    maps = semkit.semantic_map(f, step=90.0, progress=False)
    assert maps.attrs["label_name"] == "mug" and maps.attrs["network"] == "shapes3" and maps.sizes["azimuth"] == 4
    assert "weights" not in maps.attrs
    regions = semkit.find_regions(f, [[0.0]], "naive", iterations=2, progress=False)
    assert regions.attrs["label_name"] == "mug"


def test_reports_refuse_untrained_networks():
    from semkit.app.reports import ReportError, run_reports

    c = Classifier(torch.nn.Flatten(), input_size=1, name="untrained", labels=["a", "b", "c"], weights="random")
    with pytest.raises(ReportError, match="random weights"):
        run_reports(parameters={"networks": [c]})
    with pytest.raises(ReportError, match="random weights"):
        run_reports(parameters={"weights": "random"})
