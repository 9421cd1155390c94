"""The explorer's logic, driven as the widgets drive it, without a browser."""

import json
import time

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch

import semkit
from semkit.app import Explorer



@pytest.fixture(scope="module")
def lite1():
    return semkit.load_classifier("efficientnet_lite1")


@pytest.fixture(scope="module")
def explorer(lite0):
    return Explorer(["coffee_mug", "vase"], [lite0], step=(45, 25), image_size=64)


@pytest.fixture(scope="module")
def pair(lite0, lite1):
    """Two networks on the mug, at a view both recognise."""
    ex = Explorer(["coffee_mug"], [lite0, lite1], step=(45, 25), image_size=64)
    ex.set(azimuth=135, elevation=40)
    yield ex
    ex.close()


def test_moving_through_the_space_changes_what_is_shown(explorer):
    explorer.set(shape="coffee_mug", azimuth=30, elevation=20)
    first = (explorer.top5, explorer.score, explorer.image.copy())
    assert explorer.image.shape == (64, 64, 3) and len(explorer.top5) == 5
    assert [p for _, p in explorer.top5] == sorted((p for _, p in explorer.top5), reverse=True)
    explorer.set(azimuth=250)
    assert explorer.score != first[1] and not np.array_equal(explorer.image, first[2])
    assert "azimuth 250" in explorer.prediction_html() and "coffee mug" in explorer.prediction_html()
    explorer.set(shape="vase")
    assert "vase" in explorer.prediction_html() and explorer.function().label_name == "vase"


def test_bad_settings_are_named(explorer):
    with pytest.raises(ValueError, match="unknown shape 'teapot'"):
        explorer.set(shape="teapot")
    with pytest.raises(ValueError, match="elevation=120 is outside"):
        explorer.set(elevation=120)
    with pytest.raises(ValueError, match="unknown setting 'zoom'"):
        explorer.set(zoom=2)
    with pytest.raises(ValueError, match="unknown region algorithm .oir_z."):
        explorer.grow("oir_z")
    with pytest.raises(ValueError, match="axes must be two different parameters"):
        explorer.set(axes=("azimuth", "azimuth"))
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        explorer.set(compare="resnet")
    with pytest.raises(ValueError, match="criterion"):
        explorer.set(criterion="top-one")
    with pytest.raises(ValueError, match="ending in .png"):
        explorer.save_render("view.jpg")
    with pytest.raises(ValueError, match="shapes and networks are lists"):
        Explorer("coffee_mug", ["efficientnet_lite0"])
    with pytest.raises(ValueError, match="as image_size="):
        Explorer(["coffee_mug"], ["efficientnet_lite0"], renderer_options={"image_size": 64})
    with pytest.raises(ValueError, match="two or more"):
        Explorer(["coffee_mug"], ["efficientnet_lite0"], space=semkit.Space.paper_1d())


def test_maps_are_computed_once_and_regions_grow_from_the_current_point(explorer):
    explorer.set(shape="coffee_mug", azimuth=90, elevation=30)
    m = explorer.map()
    queries = explorer.function().queries
    assert explorer.map() is m and explorer.function().queries == queries
    assert m.score.shape == (8, 5)
    regions = explorer.grow("naive", step_rule="adaptive")  # the paper's plain steps barely move on so coarse a map
    lower, upper = regions.lower.values[0, 0], regions.upper.values[0, 0]
    assert (lower <= [90, 30]).all() and ([90, 30] <= upper).all()
    assert explorer.function().queries == queries  # grown on the map, not on the network
    fig = explorer.map_figure()
    assert len(fig.axes[0].patches) >= 1  # the region is drawn
    explorer.set(shape="vase")
    assert explorer.regions is None  # a region belongs to its shape
    explorer.set(shape="coffee_mug")
    before = explorer.image.copy()
    explorer.close()  # threads and sessions go; the explorer still answers, and the same
    assert explorer.map() is m and np.array_equal(explorer.update().image, before)


def test_every_network_answers_at_the_view_from_one_render(pair):
    renders = pair.functions().renders
    ds = pair.predictions(k=3)
    assert ds.class_index.dims == ("network", "rank") and list(ds.network.values) == pair.networks
    assert ds.class_name.shape == (2, 3) and (np.diff(ds.probability.values, axis=1) <= 0).all()
    for name in pair.networks:  # the same numbers as each network classifying the render alone
        probs = pair.classifiers()[pair.networks.index(name)](
            torch.from_numpy(pair.image).permute(2, 0, 1)[None]).detach().numpy()[0]
        assert int(ds.class_index.sel(network=name, rank=1)) == int(probs.argmax())
        assert float(ds.score.sel(network=name)) == pytest.approx(float(probs[pair.function().label]), abs=1e-3)
    assert ds.attrs["criterion"] == "top-1 correct"
    assert bool(ds.passes.sel(network=pair.networks[0])) == (ds.class_index.values[0, 0] == pair.function().label)
    assert pair.functions().renders == renders  # predictions reuse the move's render
    html = pair.prediction_html()
    assert all(name in html for name in pair.networks)
    pair.set(compare=pair.networks[1])
    fig = pair.map_figure()
    labels = fig.legends[0].get_texts() if fig.legends else []
    differ = (pair.map().top1 != pair.map(pair.networks[1]).top1).any()
    assert bool(differ) == any("top-1 differs" in t.get_text() for t in labels)
    pair.set(compare=None)


def test_the_trust_questions_at_the_current_view(pair):
    assert pair.predictions().passes.values[0]  # the view passes: every question has something to say
    radius = pair.robustness_radius(max_steps=2)
    assert radius.attrs["criterion"] == "top-1 correct" and "guarantee" in radius.attrs
    assert list(radius.view.values[0]) == [135, 40] and int(radius.steps.values[0]) >= 0
    failures = pair.find_failures(radius=30, max_queries=24)
    assert int(failures.queries.values[0]) <= 24 and pair.worst_image.shape == (64, 64, 3)
    worst = dict(zip(pair.space.names, failures.point.values[0]))
    assert abs(worst["azimuth"] - 135) <= 30 and abs(worst["elevation"] - 40) <= 30
    box = pair.verified_box(max_queries=600)
    assert box.attrs["criterion"] == "top-1 correct" and "verified" in list(box.algorithm.values)
    lower, upper = box.lower.values[0, 0], box.upper.values[0, 0]
    assert (lower <= [135, 40]).all() and ([135, 40] <= upper).all()
    g = pair.certify(sigma=5, n0=10, n=40)
    assert "smoothed network g" in g.attrs["guarantee"] and "not of the network" in g.attrs["guarantee"]
    assert set(pair.results) == {"robustness_radius", "find_failures", "verified_box", "certify"}
    assert all(r.attrs["network"] == pair.network and r.attrs["shape"] == pair.shape for r in pair.results.values())
    fig = pair.map_figure()
    texts = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "radius" in texts and "worst view found" in texts and "smoothed network" in texts
    pair.set(criterion="top-5")  # another criterion: the answers under the old one go
    assert pair.results == {} and pair.criterion.name == "top-5 correct"
    assert pair.robustness_radius(max_steps=1).attrs["criterion"] == "top-5 correct"
    pair.set(criterion="top-1")


def test_the_state_round_trips_through_json(pair, lite0, lite1, tmp_path):
    pair.set(azimuth=140, compare=pair.networks[1])
    state = json.loads(json.dumps(pair.state))
    again = Explorer.from_state(state, networks=[lite0, lite1])
    try:
        assert again.state == pair.state
        assert again.point == pair.point and np.array_equal(again.image, pair.image)
    finally:
        again.close()
    with pytest.raises(ValueError, match="not an explorer's state"):
        Explorer.from_state({"shapes": ["coffee_mug"]})
    path = pair.save_render(tmp_path / "view.png")
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(path)), (np.clip(pair.image, 0, 1) * 255).astype(np.uint8))
    mesh = semkit.gallery.load("vase")
    memory = semkit.Mesh(mesh.vertices, mesh.faces, name="my vase", label=883)
    with pytest.raises(ValueError, match="made in memory"):
        Explorer([memory], [lite0], image_size=64).state
    pair.set(azimuth=135, compare=None)


def test_more_than_two_parameters_map_a_slice_when_asked(lite0):
    space = semkit.Space.of("azimuth", "elevation", "roll")
    ex = Explorer(["coffee_mug"], [lite0], space=space, step=(90, 50, 90), image_size=64)
    try:
        assert ex.axes == ("azimuth", "elevation") and not ex.has_map()
        ex.set(roll=30)
        m = ex.map()  # asked: the slice at roll 30
        assert ex.has_map() and m.score.dims == ("azimuth", "elevation") and m.attrs["space"]
        ex.set(roll=-30)
        assert not ex.has_map()  # another slice
        ex.set(axes=("azimuth", "roll"))
        assert ex.slice_space().names == ("azimuth", "roll") and ex.slice_space().fixed["elevation"] == ex.point["elevation"]
        assert ex.map().score.dims == ("azimuth", "roll")
        box = ex.widget()
        assert set(box.semkit["x"].options) == {"azimuth", "elevation", "roll"}
        box.semkit["sliders"]["elevation"].value = 10
        assert "map this slice" in box.semkit["status"].value
        box.semkit["map_slice"].click()
        box.semkit["panel"].task.join(120)
        assert ex.has_map()
    finally:
        ex.close()


def test_the_widgets_drive_the_explorer(explorer):
    box = explorer.widget()
    parts = box.semkit
    parts["panel"].task is None or parts["panel"].task.join(120)  # the first map, in the background
    slider, prediction, image, status = parts["sliders"]["azimuth"], parts["prediction"], parts["image"], parts["status"]
    before_text, before_image = prediction.value, image.value
    slider.value = 200
    assert explorer.point["azimuth"] == 200
    assert prediction.value != before_text and "azimuth 200" in prediction.value
    assert image.value != before_image and image.value[:4] == b"\x89PNG"
    assert "render + 1 network" in status.value
    assert parts["map"].point == [200, explorer.point["elevation"]]  # the cursor follows
    parts["algorithm"].value = "oir_b"
    parts["button"].click()
    assert explorer.regions is not None and "oir_b (" in status.value
    parts["shape"].value = "coffee_mug" if explorer.shape == "vase" else "vase"
    assert explorer.regions is None and explorer.shape in prediction.value


def test_clicking_the_map_and_arrow_keys_move_the_view(explorer):
    box = explorer.widget()
    parts = box.semkit
    parts["panel"].task is None or parts["panel"].task.join(120)
    canvas = parts["map"]
    assert canvas.src.startswith("data:image/png;base64,") and canvas.frame["x1"] > canvas.frame["x0"]
    fx, fy = canvas.pixel_of(300, 60)  # where the view (300, 60) lies in the picture
    canvas.click(fx, fy)
    assert explorer.point["azimuth"] == pytest.approx(300, abs=1) and explorer.point["elevation"] == pytest.approx(60, abs=1)
    assert parts["sliders"]["azimuth"].value == explorer.point["azimuth"]  # the sliders follow
    assert "azimuth 300" in parts["prediction"].value
    x, y = canvas.point
    canvas.clicked = [x + canvas.step[0], y, 99]  # the right arrow key, as the browser sends it
    assert explorer.point["azimuth"] == pytest.approx((300 + 45) % 360, abs=1)
    canvas.click(0.001, 0.001)  # outside the axes: nothing moves
    assert explorer.point["azimuth"] == pytest.approx(345, abs=1)


def test_a_trust_button_answers_in_the_background_and_can_be_cancelled(pair):
    box = pair.widget()
    parts, panel = box.semkit, box.semkit["panel"]
    panel.task is None or panel.task.join(120)
    parts["search_radius"].value = 20.0
    parts["find_failures"].click()
    question = panel.task
    assert question is not None and parts["progress"].layout.visibility == "visible"
    question.join(120)
    assert parts["cancel"].disabled and parts["progress"].layout.visibility == "hidden"
    answer = parts["answer"].value
    assert "find failures" in answer and "criterion: top-1 correct" in answer and "queries" in answer
    assert parts["worst"].value[:4] == b"\x89PNG" and parts["worst"].layout.visibility == "visible"
    assert "find_failures" in pair.results
    parts["verified_box"].click()  # a long question, cancelled
    panel.task.cancel()
    panel.task.thread.join(120)
    assert "cancelled" in parts["status"].value
    slider = parts["sliders"]["azimuth"]
    slider.value = 150  # the widgets still answer
    assert pair.point["azimuth"] == 150


def test_the_explorer_on_shapenet_meshes(shapenet_root, lite0, tmp_path):
    """ShapeNet files (named class/model_id) as shapes: labelled by their class, maps kept under file-safe names."""
    chair = shapenet_root / "chair" / "341fcdd8a40a2612456cbf78e1e89022" / "models" / "model_normalized.obj"
    ex = Explorer([str(chair)], [lite0], step=(90, 50), image_size=48, store=tmp_path)
    assert ex.shape == "chair/341fcdd8a40a2612456cbf78e1e89022" and ex.function().label == 559
    ex.set(azimuth=120, elevation=20)
    assert "chair/341fcdd8a40a2612456cbf78e1e89022" in ex.prediction_html() and ex.image.shape == (48, 48, 3)
    assert ex.map().score.shape == (4, 3)
    stored = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.nc"))
    assert stored == ["chair_341fcdd8a40a2612456cbf78e1e89022/azimuth-elevation/efficientnet_lite0.nc"]
    ex.grow("oir_b")
    assert ex.regions.attrs["shape"] == ex.shape
    ex.close()


def test_closing_the_explorer_releases_its_widgets_figures_and_functions(explorer):
    """Each open/widget/close cycle used to keep ~20 MB: widgets stayed registered (holding the explorer, its
    functions and networks), figures stayed open. Now nothing of a closed explorer stays alive."""
    import gc
    import weakref

    import matplotlib.pyplot as plt
    from ipywidgets.widgets.widget import _instances

    box = explorer.widget()
    fig = explorer.map_figure()
    made = {id(box), *(id(w) for w in box.semkit.values() if hasattr(w, "comm")),
            *(id(w) for w in box.semkit["sliders"].values())}
    function = weakref.ref(explorer.function())
    explorer.close()
    gc.collect()
    assert not made & {id(w) for w in _instances.values()}  # no widget of it stays registered
    assert not plt.fignum_exists(fig.number) and function() is None  # its figures closed, its functions dropped
    assert explorer.update().image.shape == (64, 64, 3)  # a closed explorer still answers


def test_an_answer_that_ends_after_the_shape_changed_is_not_drawn_on_the_new_shape(lite0):
    """A question asked about the mug that ends after the vase was picked is labelled the mug's, and not kept."""
    from semkit.app.tasks import Task

    ex = Explorer(["coffee_mug", "vase"], [lite0], step=(90, 50), image_size=48)
    try:
        ended = []
        with ex.lock:  # the question is asked about the mug, then waits for the lock at its first views
            task = Task(lambda: ex.find_failures(radius=20, max_queries=60), lambda result, error: ended.append(error))
            time.sleep(0.5)
            ex.set(shape="vase")  # while it runs
        result = task.join(120)
        assert ended == [None] and result.attrs["shape"] == "coffee_mug"
        assert ex.shape == "vase" and "find_failures" not in ex.results
        assert not hasattr(ex, "worst_image")  # the mug's worst view is not shown as the vase's
        with pytest.raises(TimeoutError, match="still runs"):
            Task(lambda: time.sleep(2), lambda *_: None).join(0.01)
    finally:
        ex.close()
