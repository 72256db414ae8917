"""Nothing dropped in silence: a file TF cannot decode while reading is named, listed, counted.

Each test breaks files of its own (a truncated JPEG, a text file named .jpg, and a JPEG
whose inside is damaged, which the header check passes) with the pre-check off, so the
pipeline meets them; what is expected comes from which files the test broke.
"""

import dataclasses
import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from imagefiles import encode, image_folder, pattern, write

from alexnet_tf.config import DataConfig
from alexnet_tf.data import pipeline, statistics
from alexnet_tf.data.inputs import prepare_inputs
from alexnet_tf.data.layouts import load_source
from alexnet_tf.data.transforms import train_transform
from alexnet_tf.errors import UserError
from alexnet_tf.evaluation import scoring
from alexnet_tf.evaluation.eval_step import make_eval_step

S, R = 16, 20


def broken_files(folder, prefix=""):
    """Three files TF cannot decode in `folder` -> their paths."""
    good = encode(pattern(24, 30))
    return [
        write(os.path.join(folder, f"{prefix}truncated.jpg"), good[: len(good) // 2]),
        write(os.path.join(folder, f"{prefix}text.jpg"), b"<html>404 not found</html>"),
        write(os.path.join(folder, f"{prefix}inside.jpg"), good[:60] + b"\xff\xd9"),
    ]


def setup(tmp_path, split, prefix="", **data):
    """A folder with 12 train and 6 val good images plus 3 broken ones in `split`/cat/."""
    root = image_folder(tmp_path / "d", per_class=4, size=(24, 30))
    broken = broken_files(os.path.join(root, split, "cat"), prefix)
    data.setdefault("check_files", "off")
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=S, resize=R, seed=3, **data)
    run_dir = str(tmp_path / "run")
    source = dataclasses.replace(load_source(cfg, split), report_dir=run_dir)
    good = source.subset(~np.isin(source.paths, broken))
    stats = statistics.compute_stats(good, resize=R, max_images=0)
    return cfg, source, broken, stats, run_dir


def warnings_naming(caplog, paths):
    return {p: [r for r in caplog.records if p in r.getMessage()] for p in paths}


def test_training_names_lists_and_counts_each_dropped_file(tmp_path, caplog):
    cfg, source, broken, stats, run_dir = setup(tmp_path, "train")
    indexed = dataclasses.replace(source, labels=np.arange(source.num_examples, dtype=np.int32))
    good = [i for i, p in enumerate(source.paths) if p not in broken]
    with caplog.at_level(logging.WARNING):
        for epoch in (3, 4):  # the second epoch drops them again, without a second line
            out = list(
                pipeline.build_dataset(
                    cfg, indexed, training=True, batch_size=4, stats=stats, epoch=epoch
                )
            )
            labels = np.concatenate([y.numpy() for _, y in out])
            assert sorted(labels) == good
    named = warnings_naming(caplog, broken)
    assert all(len(lines) == 1 and lines[0].levelno == logging.WARNING for lines in named.values())
    counts = sorted(int(lines[0].getMessage().split("(")[1].split()[0]) for lines in named.values())
    assert counts == [1, 2, 3]  # the log counts them
    with open(os.path.join(run_dir, "bad_files_train.json")) as f:
        report = json.load(f)
    assert sorted(d["path"] for d in report["dropped"]) == sorted(broken)
    assert report["num_dropped"] == 3

    # The good files' images are what the epoch's transform gives each (seed, epoch, index).
    fn = train_transform(cfg, stats, 4)
    images = np.concatenate([x.numpy() for x, _ in out])
    for image, index in list(zip(images, labels, strict=True))[:5]:
        expected = fn(tf.io.read_file(source.paths[index]), tf.constant(index, tf.int64))
        np.testing.assert_allclose(image, expected.numpy(), rtol=0, atol=1e-4)


def test_a_resumed_epoch_names_the_files_dropped_in_its_tail(tmp_path, caplog):
    cfg, source, broken, stats, _ = setup(tmp_path, "train")
    order = pipeline.epoch_order(source.num_examples, cfg.seed, 2)
    after = {str(p) for p in source.paths[order][8:]} & set(broken)  # after 2 batches of 4
    with caplog.at_level(logging.WARNING):
        out = list(
            pipeline.build_dataset(
                cfg, source, training=True, batch_size=4, stats=stats, epoch=2, skip_batches=2
            )
        )
    assert sum(len(y) for _, y in out) == source.num_examples - 8 - len(after)
    named = warnings_naming(caplog, broken)
    assert {p for p, lines in named.items() if lines} == after


def tiny_eval_step(num_classes):
    inputs = keras.Input((S, S, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(num_classes)(x))
    strategy = tf.distribute.OneDeviceStrategy("/CPU:0")
    return make_eval_step(model, strategy), strategy


@pytest.mark.parametrize("crops", [1, 10])
def test_scoring_fails_in_one_line_beyond_the_allowance(tmp_path, caplog, crops):
    # The broken files sort last in val/: the last gap of the split is named too.
    cfg, source, broken, stats, run_dir = setup(tmp_path, "val", prefix="zz_")
    step, strategy = tiny_eval_step(source.num_classes)
    with caplog.at_level(logging.WARNING), pytest.raises(UserError) as short:
        scoring.score(step, strategy, cfg, source, stats, crops=crops, batch_size=4)
    message = str(short.value)
    assert "\n" not in message
    assert f"scored 6 of the 9 images of {source.root} planned: 3 failed to decode" in message
    assert "bad_files_val.json" in message
    assert all(len(lines) == 1 for lines in warnings_naming(caplog, broken).values())
    with open(os.path.join(run_dir, "bad_files_val.json")) as f:
        assert sorted(d["path"] for d in json.load(f)["dropped"]) == sorted(broken)

    # Within the allowance (3 of 9 is a third): scored, and the shortfall counted.
    lenient = dataclasses.replace(cfg, max_bad_fraction=0.34)
    result = scoring.score(step, strategy, lenient, source, stats, crops=crops, batch_size=4)
    assert (result["count"], result["dropped"]) == (6, 3)


def test_quick_validation_plans_max_batches_times_the_batch(tmp_path):
    cfg, source, broken, stats, _ = setup(tmp_path, "val", prefix="aa_")  # they sort first
    step, strategy = tiny_eval_step(source.num_classes)
    # 1 batch of 4 planned of 9 files: later good files take the 3 broken ones' places.
    result = scoring.score(step, strategy, cfg, source, stats, batch_size=4, max_batches=1)
    assert (result["count"], result["dropped"]) == (4, 0)
    # 2 batches: 8 planned, but only the 6 good files are there to score.
    with pytest.raises(UserError, match="scored 6 of the 8 images"):
        scoring.score(step, strategy, cfg, source, stats, batch_size=4, max_batches=2)
    # More batches than the split has: planned is the split, 9.
    with pytest.raises(UserError, match="scored 6 of the 9 images"):
        scoring.score(step, strategy, cfg, source, stats, batch_size=4, max_batches=5)


def test_statistics_name_count_and_limit_the_dropped_files(tmp_path, caplog):
    cfg, source, broken, stats, run_dir = setup(tmp_path, "train")
    with caplog.at_level(logging.WARNING), pytest.raises(UserError) as many:
        statistics.compute_stats(source, resize=R, max_images=0, max_bad_fraction=0.1)
    assert "\n" not in str(many.value)
    assert f"3 of the 15 images sampled from {source.root}" in str(many.value)
    assert all(len(lines) == 1 for lines in warnings_naming(caplog, broken).values())
    with open(os.path.join(run_dir, "bad_files_train.json")) as f:
        assert sorted(d["path"] for d in json.load(f)["dropped"]) == sorted(broken)

    # Within the allowance: the statistics of the good files alone, and the count logged.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        lenient = statistics.compute_stats(source, resize=R, max_images=0, max_bad_fraction=0.5)
    assert lenient.num_images == stats.num_images == 12
    np.testing.assert_allclose(lenient.mean_image, stats.mean_image, rtol=1e-6)
    assert any("3 of the 15 images sampled" in r.getMessage() for r in caplog.records)


def test_a_dropped_file_stays_in_the_split_of_the_next_run(tmp_path):
    # Leaving it out of a resumed run's split would change every epoch's order.
    cfg, source, broken, stats, run_dir = setup(tmp_path, "train")
    list(pipeline.build_dataset(cfg, source, training=True, batch_size=4, stats=stats))
    checked = dataclasses.replace(cfg, check_files="header", max_bad_fraction=0.5)
    inputs = prepare_inputs(checked, run_dir)  # the header check: 2 of 3
    inside = broken[2]
    assert inside in inputs.train.paths and inputs.train.num_examples == 13
    with open(os.path.join(run_dir, "bad_files_train.json")) as f:
        report = json.load(f)
    assert sorted(b["path"] for b in report["bad"]) == sorted(broken[:2])
    assert sorted(d["path"] for d in report["dropped"]) == sorted(broken)
