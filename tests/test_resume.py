"""A resumed run equals the run that never stopped: weights, optimizer slots, figures.

Each test trains a tiny run without stopping, keeping a checkpoint at every step. A
kill after step k leaves what that run's folder held after its step-k checkpoint, so
the test copies the folder as it was then (later checkpoints and the final export
removed) and resumes the copy. Both runs' final checkpoints must then hold the same
values, bitwise: resuming replays the same batches, the same dropout masks and the
same arithmetic. The signal tests in test_train_cli.py stop real processes.
"""

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from imagefiles import image_folder
from runcompare import assert_same_run
from test_summaries import event_image

from alexnet_tf.config import CHECKPOINT_DIR, Config, DataConfig, TrainConfig
from alexnet_tf.data import records
from alexnet_tf.training import loop

STEPS, EPOCHS = 3, 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return image_folder(root, ("ant", "bee", "cat"), size=(40, 52), splits={"train": 8, "val": 3})


@pytest.fixture(scope="module")
def raw_dir(data_dir, tmp_path_factory):
    """The same images as raw-pixel shards (`prepare --format raw`) at the runs' resize."""
    out = str(tmp_path_factory.mktemp("raw") / "shards")
    cfg = config(data_dir, "unused", "one_device").data
    records.prepare(cfg, out, images_per_shard=6, image_format="raw", progress=None)
    return out


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def config(data_dir, model_dir, strategy, epochs=EPOCHS, augment_on="auto"):
    return Config(
        data=DataConfig(
            dataset="folder",
            data_dir=data_dir,
            image_size=67,
            resize=76,
            stats_images=0,
            augment_on=augment_on,
        ),
        train=TrainConfig(
            model_dir=str(model_dir),
            epochs=epochs,
            batch_size=4,
            steps_per_epoch=STEPS,
            checkpoint_every=1,  # three kept: steps 4-6 of 6, so a kill after step 4 can be made
            progress_seconds=60.0,
            strategy=strategy,
        ),
    )


def _number(name):
    return int(name.split(".")[0][5:])  # ckpt-12.index -> 12


def killed_after(whole, step, copy):
    """`copy`: the folder `whole` as a kill right after its step-`step` checkpoint left it."""

    def later_checkpoints(folder, names):
        del folder
        return [n for n in names if n.startswith("ckpt-") and _number(n) > step]

    shutil.copytree(whole, copy, ignore=later_checkpoints)
    for name in ("model.keras", "saved_model", "result.json", "classes.json"):
        path = copy / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    history = json.loads((copy / "history.json").read_text())
    (copy / "history.json").write_text(json.dumps([e for e in history if e["steps"] <= step]))
    directory = copy / CHECKPOINT_DIR
    assert (directory / f"ckpt-{step}.index").is_file()
    tf.compat.v1.train.update_checkpoint_state(str(directory), str(directory / f"ckpt-{step}"))
    return copy


_WHOLE = {}


def whole_run(data_dir, tmp_path_factory, strategy, augment_on="auto"):
    """The run that never stops, with a checkpoint at every step (once per data, strategy
    and augmentation place)."""
    key = (data_dir, strategy, augment_on)
    if key not in _WHOLE:
        model_dir = tmp_path_factory.mktemp(f"whole_{strategy}_{augment_on}") / "run"
        loop.train_and_evaluate(config(data_dir, model_dir, strategy, augment_on=augment_on))
        _WHOLE[key] = model_dir
    return _WHOLE[key]


@pytest.mark.parametrize("strategy", ["one_device", "mirrored", "towers"])
def test_a_run_resumed_mid_epoch_equals_the_run_that_never_stopped(
    data_dir, tmp_path, tmp_path_factory, strategy
):
    whole = whole_run(data_dir, tmp_path_factory, strategy)
    step = STEPS + 1  # one step into the second epoch
    resumed = killed_after(whole, step, tmp_path / "resumed")
    loop.train_and_evaluate(config(data_dir, resumed, strategy))
    assert_same_run(whole, resumed, EPOCHS)


def test_a_run_on_raw_shards_resumed_mid_epoch_on_two_replicas_equals_the_whole(
    raw_dir, tmp_path, tmp_path_factory
):
    whole = whole_run(raw_dir, tmp_path_factory, "mirrored")
    resumed = killed_after(whole, STEPS + 1, tmp_path / "resumed")
    loop.train_and_evaluate(config(raw_dir, resumed, "mirrored"))
    assert_same_run(whole, resumed, EPOCHS)


def test_a_device_augmented_run_resumes_exactly_and_pictures_what_the_net_saw(
    data_dir, tmp_path, tmp_path_factory
):
    whole = whole_run(data_dir, tmp_path_factory, "mirrored", augment_on="device")
    resumed = killed_after(whole, STEPS + 1, tmp_path / "resumed")
    loop.train_and_evaluate(config(data_dir, resumed, "mirrored", augment_on="device"))
    assert_same_run(whole, resumed, EPOCHS)
    assert json.loads((whole / "run.json").read_text())["data"]["augment_on"] == "device"
    # The inputs grid shows the device's augmentation: the host run's picture of the same
    # crops, up to the half grey level of the uint8 handover (40x52 files are resized)
    # and the picture's own rounding to 8 bits.
    host = whole_run(data_dir, tmp_path_factory, "mirrored")
    seen, expected = (event_image(run / "train", "inputs").astype(int) for run in (whole, host))
    assert seen.shape == expected.shape == (69, 545, 3)  # 2 crops of 67 (replica 0), 8 columns
    assert np.abs(seen - expected).max() <= 1


def test_extending_a_finished_run_with_more_epochs_equals_the_longer_run(
    data_dir, tmp_path, tmp_path_factory
):
    whole = whole_run(data_dir, tmp_path_factory, "one_device")
    short = config(data_dir, tmp_path / "extended", "one_device", epochs=1)
    loop.train_and_evaluate(short)
    longer = dataclasses.replace(short, train=dataclasses.replace(short.train, epochs=EPOCHS))
    loop.train_and_evaluate(longer)
    assert_same_run(whole, tmp_path / "extended", EPOCHS)


def test_mirrored_replicas_draw_their_own_dropout_masks():
    # Keras' Dropout draws from one mirrored seed state: every replica would drop the
    # same units of its own images. ReplicaDropout folds the replica in.
    from conftest import TWO_CPUS

    from alexnet_tf.distribute.strategies import mirrored_strategy
    from alexnet_tf.model.layers import ReplicaDropout, seed_states

    strategy = mirrored_strategy(TWO_CPUS)
    with strategy.scope():
        layer = ReplicaDropout(0.5, seed=3)
        layer.build((None, 256))

    @tf.function
    def masks():
        return strategy.run(lambda: layer(tf.ones((1, 256)), training=True))

    first, second = (m.numpy() for m in strategy.experimental_local_results(masks()))
    assert set(np.unique(first)) == {0.0, 2.0}  # inverted dropout at rate 0.5
    assert not np.array_equal(first, second)
    # One shared state, advanced once per call on every replica: what a checkpoint keeps.
    states = [
        s.numpy() for s in strategy.experimental_local_results(layer.seed_generator.state.value)
    ]
    assert np.array_equal(states[0], states[1]) and states[0][1] == 1
    assert list(seed_states(keras.Sequential([layer]))) == [f"{layer.name}/0"]


@pytest.mark.parametrize("strategy", ["one_device", "towers"])
def test_a_fine_tuning_run_resumes_exactly_and_keeps_its_frozen_layers(
    data_dir, tmp_path, tmp_path_factory, strategy
):
    # train.py --init_from RUN --train_layers fc7,fc8: the resumed run must not start
    # from RUN's weights again, nor unfreeze what the first start froze.
    source = whole_run(data_dir, tmp_path_factory, "one_device")  # a finished run
    cfg = config(data_dir, tmp_path / "whole", strategy)
    train = dataclasses.replace(cfg.train, init_from=str(source), train_layers=("fc7", "fc8"))
    cfg = dataclasses.replace(cfg, train=train)
    loop.train_and_evaluate(cfg)
    resumed = killed_after(tmp_path / "whole", STEPS + 1, tmp_path / "resumed")
    loop.train_and_evaluate(
        dataclasses.replace(cfg, train=dataclasses.replace(train, model_dir=str(resumed)))
    )
    assert_same_run(tmp_path / "whole", resumed, EPOCHS)
    start = keras.saving.load_model(source / "model.keras", compile=False)
    for run in (tmp_path / "whole", resumed):
        end = keras.saving.load_model(run / "model.keras", compile=False)
        for name in ("conv1", "conv2", "conv5", "fc6"):
            for old, new in zip(
                start.get_layer(name).get_weights(), end.get_layer(name).get_weights(), strict=True
            ):
                assert np.array_equal(old, new), f"{name} moved in {run.name}"
        assert not np.array_equal(
            start.get_layer("fc7").get_weights()[0], end.get_layer("fc7").get_weights()[0]
        )
