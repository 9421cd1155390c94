"""Engines, caches and threads are objects with a size and a way to close or clear: no hidden state that changes
behaviour."""

import threading

import pytest
import torch

import semkit
from semkit.classify import ExportCache


def test_a_renderer_closes_its_threads_and_renders_again():
    mesh = semkit.gallery.load("vase")
    others = set(threading.enumerate())  # other tests' renderers may end their threads meanwhile: count ours only
    r = semkit.Renderer(image_size=32, threads=2)
    views = dict(azimuth=[0, 90, 180, 270], elevation=20)
    before = r.render(mesh, **views)
    batches = list(r.render_batches(mesh, [[[0, 20]], [[90, 20]], [[180, 20]]], ahead=True))
    ours = [t for t in threading.enumerate() if t not in others]
    names = [t.name for t in ours]
    assert sum(n.startswith("semkit-render-ahead") for n in names) == 1 and sum(n.startswith("semkit-embree") for n in names) == 2
    r.close()
    assert not any(t.is_alive() for t in ours)  # the render-ahead thread and both embree threads ended
    torch.testing.assert_close(r.render(mesh, **views), before)  # closed is not broken: threads start again
    torch.testing.assert_close(torch.cat(batches), before[:3])
    r.close()


def test_a_classifier_that_falls_back_keeps_its_engine_and_says_where():
    class Branchy(torch.nn.Module):  # a data-dependent branch: its ONNX export cannot be faithful
        def forward(self, x):
            s = x.mean((1, 2, 3))
            return torch.stack([s, -s], 1) if bool(s.sum() > 0) else torch.stack([-s, s], 1)

    c = semkit.Classifier(Branchy(), input_size=8, labels=["a", "b"])
    with pytest.warns(UserWarning, match="runs in PyTorch, not ONNX Runtime, at 8x8"), torch.inference_mode():
        c(torch.rand(2, 3, 8, 8) + 0.5)
    assert c.engine == "auto" and c.engines() == {(8, 8): "torch"}
    c.close()
    assert c.engines() == {}  # sessions dropped; the next call decides again


def test_the_export_cache_keeps_its_size_and_clears():
    cache = ExportCache(size=2)
    for key in "abc":
        cache.put(key, key.encode())
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") == b"c"
    cache.get("b")  # used: kept over c when d arrives
    cache.put("d", b"d")
    assert cache.get("b") == b"b" and cache.get("c") is None
    cache.clear()
    assert len(cache) == 0
