"""The explorer's logic, driven as the widgets drive it, without a browser."""

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from semkit.app import Explorer


@pytest.fixture(scope="module")
def explorer(lite0):
    return Explorer(["coffee_mug", "vase"], [lite0], step=(45, 25), image_size=64)


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


def test_the_widgets_drive_the_explorer(explorer):
    box = explorer.widget()
    parts = box.semkit
    slider, prediction, image, status = parts["sliders"]["azimuth"], parts["prediction"], parts["image"], parts["status"]
    before_text, before_image = prediction.value, image.value
    slider.value = 200
    assert explorer.point["azimuth"] == 200
    assert prediction.value != before_text and "azimuth 200" in prediction.value
    assert image.value != before_image and image.value[:4] == b"\x89PNG"
    assert "render + classify" in status.value
    parts["algorithm"].value = "oir_b"
    parts["button"].click()
    assert explorer.regions is not None and "oir_b (" in status.value
    parts["shape"].value = "coffee_mug" if explorer.shape == "vase" else "vase"
    assert explorer.regions is None and explorer.shape in prediction.value


def test_the_explorer_on_shapenet_meshes(shapenet_root, lite0, tmp_path):
    """ShapeNet files (named class/model_id) as shapes: labelled by their class, maps kept under file-safe names."""
    chair = shapenet_root / "chair" / "341fcdd8a40a2612456cbf78e1e89022" / "models" / "model_normalized.obj"
    ex = Explorer([str(chair)], [lite0], step=(90, 50), image_size=48, store=tmp_path)
    assert ex.shape == "chair/341fcdd8a40a2612456cbf78e1e89022" and ex.function().label == 559
    ex.set(azimuth=120, elevation=20)
    assert "chair/341fcdd8a40a2612456cbf78e1e89022" in ex.prediction_html() and ex.image.shape == (48, 48, 3)
    assert ex.map().score.shape == (4, 3)
    assert [p.name for p in tmp_path.glob("*.nc")] == ["efficientnet_lite0__chair_341fcdd8a40a2612456cbf78e1e89022.nc"]
    ex.grow("oir_b")
    assert ex.regions.attrs["shape"] == ex.shape


def test_closing_the_explorer_releases_its_widgets_figures_and_functions(explorer):
    """Each open/widget/close cycle used to keep ~20 MB: widgets stayed registered (holding the explorer, its
    functions and networks), figures stayed open. Now nothing of a closed explorer stays alive."""
    import gc
    import weakref

    import matplotlib.pyplot as plt
    from ipywidgets.widgets.widget import _instances

    box = explorer.widget()
    fig = explorer.map_figure()
    made = {id(box), *(id(w) for w in box.semkit.values() if not isinstance(w, dict)),
            *(id(w) for w in box.semkit["sliders"].values())}
    function = weakref.ref(explorer.function())
    explorer.close()
    gc.collect()
    assert not made & {id(w) for w in _instances.values()}  # no widget of it stays registered
    assert not plt.fignum_exists(fig.number) and function() is None  # its figures closed, its functions dropped
    assert explorer.update().image.shape == (64, 64, 3)  # a closed explorer still answers
