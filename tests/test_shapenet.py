import shutil

import pytest

import semkit
from semkit.scene.shapenet import PAPER_CLASSES, ShapeNet


def test_sample_classes_labels_and_models(shapenet_root, shapenet_index):
    data = ShapeNet(shapenet_root)
    assert data.classes == sorted(shapenet_index)
    for cls, info in shapenet_index.items():
        assert data.label(cls) == info["imagenet_label"] == PAPER_CLASSES[cls].imagenet
        assert data.models(cls) == sorted(info["paper_object_order"])
        assert [e.model_id for e in data.entries(cls) if e.available] == sorted(info["present"])


def test_entries_without_a_mesh_are_reported(shapenet_root, shapenet_index):
    data = ShapeNet(shapenet_root)
    missing = {(e.cls, e.model_id) for e in data.missing}
    expected = {
        (cls, m) for cls, info in shapenet_index.items() for m in info["paper_object_order"] if m not in info["present"]
    }
    assert missing == expected and len(missing) == 5
    cls, model = sorted(missing)[0]
    with pytest.raises(FileNotFoundError, match=f"{cls}/{model} has no mesh: .*model_normalized.obj is missing"):
        data.load(cls, model)


def test_iterating_skips_missing_entries_with_a_warning(shapenet_root, shapenet_index):
    data = ShapeNet(shapenet_root)
    with pytest.warns(UserWarning, match="skipping ShapeNet entry aeroplane/"):
        meshes = list(data.meshes("aeroplane"))
    assert [m.name for m in meshes] == [f"aeroplane/{m}" for m in sorted(shapenet_index["aeroplane"]["present"])]
    assert all(m.label == 404 for m in meshes)


def test_synset_folders_are_named_as_the_paper(tmp_path, shapenet_root):
    shutil.copytree(shapenet_root / "bottle", tmp_path / "02876657")
    (tmp_path / "my_things" / "m1" / "models").mkdir(parents=True)
    data = ShapeNet(tmp_path)
    assert data.classes == ["bottle", "my_things"]
    assert data.label("bottle") == 898 and data.label("my_things") is None
    mesh = next(data.meshes("bottle"))
    assert mesh.label == 898 and mesh.name.startswith("bottle/")


def test_bad_roots_and_names(tmp_path, shapenet_root):
    with pytest.raises(FileNotFoundError, match="ShapeNet folder not found"):
        ShapeNet(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no class folders"):
        ShapeNet(tmp_path)
    data = ShapeNet(shapenet_root)
    with pytest.raises(KeyError, match="no class 'boat'"):
        data.models("boat")
    with pytest.raises(KeyError, match="no model 'xyz'"):
        data.load("chair", "xyz")


def test_a_shapenet_file_is_named_and_labelled_by_its_class_folder(shapenet_root):
    from semkit.scene.shapenet import load_file

    path = shapenet_root / "chair" / "341fcdd8a40a2612456cbf78e1e89022" / "models" / "model_normalized.obj"
    mesh = load_file(path)
    assert mesh.name == "chair/341fcdd8a40a2612456cbf78e1e89022" and mesh.label == 559
    maps = semkit.study([str(path)], ["efficientnet_lite0"], semkit.Maps(step=(180, 100)), image_size=32, progress=False)
    assert maps.label.values.tolist() == [559] and maps.label_name.values.tolist() == ["folding chair"]
