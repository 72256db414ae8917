"""The demo data: deterministic, in ImageNet's layout, read by the same code path."""

import os

import numpy as np
import pytest

from alexnet_tf.config import DataConfig
from alexnet_tf.data import demo, pipeline
from alexnet_tf.data.inputs import prepare_inputs
from alexnet_tf.data.layouts import load_source
from alexnet_tf.errors import UserError


def test_demo_data_generated_once_deterministic_and_readable(tmp_path):
    a = demo.ensure_demo_data(str(tmp_path / "a"), train_per_class=3, val_per_class=1)
    b = demo.ensure_demo_data(str(tmp_path / "b"), train_per_class=3, val_per_class=1)
    cfg = DataConfig(dataset="demo", data_dir=a, image_size=16, resize=20)
    train, val = load_source(cfg, "train"), load_source(cfg, "val")
    assert train.num_classes == len(demo.CLASSES) == 10
    assert (train.num_examples, val.num_examples) == (30, 10)
    for path in train.paths:
        with open(path, "rb") as f, open(path.replace(a, b), "rb") as g:
            assert f.read() == g.read()
    stamp = os.path.getmtime(train.paths[0])
    assert demo.ensure_demo_data(a) == a and os.path.getmtime(train.paths[0]) == stamp
    inputs = prepare_inputs(cfg, str(tmp_path / "run"))
    labels = np.concatenate(
        [
            y
            for _, y in pipeline.build_dataset(
                cfg, inputs.val, training=False, batch_size=4, stats=inputs.stats
            )
        ]
    )
    np.testing.assert_array_equal(labels, np.arange(10))


def test_demo_refuses_a_foreign_nonempty_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(UserError, match="not empty"):
        demo.ensure_demo_data(str(tmp_path))


def test_default_dir_is_a_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert demo.default_dir() == os.path.join(str(tmp_path), "alexnet_tf", demo.VERSION)
