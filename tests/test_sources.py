"""Layouts users have, and a one-line UserError naming the path for each structural mistake."""

import dataclasses
import os
import shutil

import numpy as np
import pytest
from imagefiles import encode, image_folder, pattern, write

from alexnet_tf.config import DataConfig
from alexnet_tf.data.layouts import load_source, read_labels_file, resolve_dataset
from alexnet_tf.errors import UserError


def cfg_for(data_dir, **kw):
    return DataConfig(dataset="folder", data_dir=str(data_dir), **kw)


def test_folder_classes_are_sorted_names_and_any_case_extension(tmp_path):
    classes = ("zebra", "ant", "mole", "yak", "cat", "bee")
    root = image_folder(tmp_path / "d", classes=classes, per_class=2)
    write(os.path.join(root, "train", "ant", "upper.JPEG"), encode(pattern(8, 8)))
    write(os.path.join(root, "train", "ant", "shot.PNG"), encode(pattern(8, 8), fmt="PNG"))
    write(os.path.join(root, "train", "ant", "notes.txt"), b"not an image, not listed")
    train = load_source(cfg_for(root), "train")
    assert train.class_names == ("ant", "bee", "cat", "mole", "yak", "zebra")
    names = [os.path.basename(p) for p in train.paths]
    assert names[:4] == ["ant_0.jpg", "ant_1.jpg", "shot.PNG", "upper.JPEG"]
    assert names[-2:] == ["zebra_0.jpg", "zebra_1.jpg"]
    np.testing.assert_array_equal(train.labels, [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    val = load_source(cfg_for(root), "val")
    assert val.num_examples == 6 and val.class_names == train.class_names


def _flat_val(tmp_path):
    root = image_folder(tmp_path / "d", classes=("n01", "n02", "n03"), per_class=2)
    shutil.rmtree(os.path.join(root, "val"))
    for i in range(1, 4):
        write(os.path.join(root, "val", f"ILSVRC2012_val_{i:08d}.JPEG"), encode(pattern(9, 9)))
    return root


def test_flat_val_with_kaggle_csv(tmp_path):
    root = _flat_val(tmp_path)
    labels = tmp_path / "LOC_val_solution.csv"
    labels.write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000002,n01 1 2 3 4 n01 5 6 7 8\n"
        "ILSVRC2012_val_00000001,n03 1 2 3 4\n"
        "ILSVRC2012_val_00000003,n02 1 2 3 4\n"
    )
    val = load_source(cfg_for(root, val_labels=str(labels)), "val")
    np.testing.assert_array_equal(val.labels, [2, 0, 1])


def test_flat_val_with_caffe_val_txt(tmp_path):
    root = _flat_val(tmp_path)
    labels = tmp_path / "val.txt"
    labels.write_text(
        "ILSVRC2012_val_00000001.JPEG 1\nILSVRC2012_val_00000002.JPEG 0\n"
        "ILSVRC2012_val_00000003.JPEG 2\n"
    )
    val = load_source(cfg_for(root, val_labels=str(labels)), "val")
    np.testing.assert_array_equal(val.labels, [1, 0, 2])


def _error(cfg, split):
    with pytest.raises(UserError) as info:
        load_source(cfg, split)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_structural_errors_name_the_path(tmp_path):
    root = image_folder(tmp_path / "d", classes=("a", "b"), per_class=2)
    assert "--data_dir" in _error(cfg_for(tmp_path / "nope"), "train")
    assert str(tmp_path / "nope") in _error(cfg_for(tmp_path / "nope"), "train")

    no_val = image_folder(tmp_path / "noval", splits={"train": 1})
    assert "no val/ folder" in _error(cfg_for(no_val), "val")
    no_train = tmp_path / "notrain"
    (no_train / "val" / "a").mkdir(parents=True)
    assert "no train/ folder" in _error(cfg_for(no_train), "train")

    (tmp_path / "empty" / "train").mkdir(parents=True)
    message = _error(cfg_for(tmp_path / "empty"), "train")
    assert "has no class folders" in message and str(tmp_path / "empty" / "train") in message

    os.makedirs(os.path.join(root, "train", "c"))
    message = _error(cfg_for(root), "train")
    assert os.path.join(root, "train", "c") in message and "no .jpg/.jpeg/.png" in message


def test_train_and_val_class_sets_must_match(tmp_path):
    root = image_folder(tmp_path / "d", classes=("a", "b"), per_class=2)
    shutil.move(os.path.join(root, "val", "b"), os.path.join(root, "val", "x"))
    message = _error(cfg_for(root), "val")
    assert "differ" in message and "'b'" in message and "'x'" in message and root in message


def test_flat_val_without_labels_file_says_how(tmp_path):
    assert "--val_labels" in _error(cfg_for(_flat_val(tmp_path)), "val")


def test_labels_out_of_range_or_missing(tmp_path):
    root = _flat_val(tmp_path)
    labels = tmp_path / "val.txt"
    labels.write_text(
        "ILSVRC2012_val_00000001 0\nILSVRC2012_val_00000002 7\nILSVRC2012_val_00000003 1\n"
    )
    message = _error(cfg_for(root, val_labels=str(labels)), "val")
    assert str(labels) in message and "ILSVRC2012_val_00000002" in message and "7" in message
    labels.write_text("ILSVRC2012_val_00000001 n09\n")
    assert "n09" in _error(cfg_for(root, val_labels=str(labels)), "val")
    labels.write_text("ILSVRC2012_val_00000001 0\n")
    assert "no label for" in _error(cfg_for(root, val_labels=str(labels)), "val")
    assert "does not exist" in _error(cfg_for(root, val_labels=str(tmp_path / "no.txt")), "val")


def test_read_labels_file_keys_by_stem(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a/b/x.JPEG 3\ny n02\n")
    assert read_labels_file(str(path)) == {"x": 3, "y": "n02"}


def test_record_dataset_errors_and_autodetection(tmp_path):
    cfg = DataConfig(dataset="tfrecord", data_dir=str(tmp_path))
    assert "train-*" in _error(cfg, "train")
    (tmp_path / "train-00000-of-00001").write_bytes(b"")
    assert resolve_dataset(dataclasses.replace(cfg, dataset="folder")) == "tfrecord"
    assert "needs --data_dir" in _error(dataclasses.replace(cfg, data_dir=None), "train")
