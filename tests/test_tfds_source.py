"""TFDS imagenet2012 through a REAL offline prepare from fake ILSVRC-2012 tars."""

import io
import os
import tarfile

import numpy as np
import tensorflow_datasets as tfds
from imagefiles import encode, pattern

from alexnet_tf.config import DataConfig
from alexnet_tf.data import pipeline, statistics, tfds_imagenet
from alexnet_tf.data.layouts import load_source

TRAIN_CLASSES = ("n01440764", "n01443537")  # the first two of TFDS's labels.txt


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _validation_labels(count):
    path = os.path.join(
        os.path.dirname(tfds.__file__), "datasets", "imagenet2012", "validation_labels.txt"
    )
    with open(path) as f:
        return [next(f).strip() for _ in range(count)]


def make_manual_tars(manual_dir):
    """ILSVRC2012_img_train.tar (a tar of per-wnid tars) and ILSVRC2012_img_val.tar (flat,
    real val file names, whose labels TFDS takes from its own validation_labels.txt)."""
    os.makedirs(manual_dir)
    with tarfile.open(os.path.join(manual_dir, "ILSVRC2012_img_train.tar"), "w") as train:
        for c, wnid in enumerate(TRAIN_CLASSES):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as class_tar:
                for i in range(3):
                    _add(class_tar, f"{wnid}_{i}.JPEG", encode(pattern(36, 44, seed=c * 10 + i)))
            _add(train, f"{wnid}.tar", inner.getvalue())
    with tarfile.open(os.path.join(manual_dir, "ILSVRC2012_img_val.tar"), "w") as val:
        for i in range(1, 4):
            _add(val, f"ILSVRC2012_val_{i:08d}.JPEG", encode(pattern(40, 36, seed=50 + i)))


def test_imagenet2012_prepared_from_manual_tars(tmp_path):
    data_dir = str(tmp_path / "tfds")
    make_manual_tars(os.path.join(data_dir, "downloads", "manual"))
    cfg = DataConfig(dataset="imagenet2012", data_dir=data_dir, image_size=24, resize=32)

    train = load_source(cfg, "train")  # prepares on first use
    val = load_source(cfg, "val")  # already prepared: no second prepare
    assert tfds_imagenet.imagenet2012_builder(data_dir).is_prepared()
    assert (train.kind, train.num_examples, val.num_examples) == ("records", 6, 3)
    assert train.num_classes == 1000 and train.class_names[:2] == TRAIN_CLASSES

    stats = statistics.compute_stats(train, resize=32, max_images=0)
    labels = np.concatenate(
        [
            y.numpy()
            for _, y in pipeline.build_dataset(cfg, val, training=False, batch_size=2, stats=stats)
        ]
    )
    names = train.class_names
    # TFDS shuffles records when writing: compare the labels as a multiset.
    assert sorted(names[i] for i in labels) == sorted(_validation_labels(3))
    batches = list(pipeline.build_dataset(cfg, train, training=True, batch_size=4, stats=stats))
    train_labels = np.concatenate([y.numpy() for _, y in batches])
    assert sorted(train_labels) == [0, 0, 0, 1, 1, 1]
    assert batches[0][0].shape == (4, 24, 24, 3)
