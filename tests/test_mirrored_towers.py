"""`--strategy mirrored_towers`: MirroredStrategy over pairs of devices, the towers on each
pair; and the same `--seed` giving the same network under every strategy.

The checks on 4 logical CPUs (two replicas of a pair each) run in their own process
(four_devices.py): this process has 2 (conftest.py), and TF fixes the count at start-up.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from alexnet_tf import build_alexnet, copy_weights
from alexnet_tf.config import Config, TrainConfig
from alexnet_tf.distribute import strategies
from alexnet_tf.errors import UserError
from alexnet_tf.model.optimizer import PaperSGD
from alexnet_tf.training import loop
from alexnet_tf.training.run import tower_devices
from alexnet_tf.training.steps import make_train_step

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE, CLASSES, BATCH, SEED = 67, 6, 4, 7


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """{check: "ok" or its traceback} from four_devices.py, run once."""
    out = tmp_path_factory.mktemp("four_devices")
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "four_devices.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    path = out / "results.json"
    assert path.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    "check",
    [
        "towers_sit_on_each_replicas_pair",
        "steps_equal_one_device_on_the_same_global_batch",
        "evaluation_scores_every_image_once",
        "mixed_precision_trains_and_sends_tower_b_weights_in_16_bits",
        "a_resumed_run_equals_the_run_that_never_stopped",
        "device_augmentation_feeds_the_host_paths_input",
    ],
)
def test_on_four_devices(four_devices, check):
    assert four_devices[check] == "ok", four_devices[check]


@pytest.mark.parametrize("count", [1, 3])
def test_an_odd_device_count_is_refused_in_one_line(monkeypatch, count):
    monkeypatch.setattr(
        strategies, "local_devices", lambda: tuple(f"/CPU:{i}" for i in range(count))
    )
    with pytest.raises(UserError) as refused:
        strategies.make_placement("mirrored_towers")
    assert "\n" not in str(refused.value)
    assert "needs an even number of devices" in str(refused.value)
    assert f"found {count}" in str(refused.value)


def test_auto_keeps_choosing_mirrored_on_several_gpus_and_says_why(monkeypatch, caplog):
    gpus = ["GPU:0", "GPU:1", "GPU:2", "GPU:3"]  # only counted: the strategy takes the CPUs
    monkeypatch.setattr(strategies.tf.config, "list_physical_devices", lambda kind: gpus)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with caplog.at_level("INFO", logger=strategies.__name__):
        assert strategies.make_placement("auto").kind == "mirrored"
    assert "--strategy auto chose mirrored (4 GPU(s)" in caplog.text
    assert "faster than towers or mirrored_towers" in caplog.text


def test_xla_is_refused_in_one_line(tmp_path):
    cfg = Config(
        train=TrainConfig(
            model_dir=str(tmp_path / "run"), strategy="mirrored_towers", jit_compile=True
        )
    )
    with pytest.raises(UserError) as refused:
        loop.train_and_evaluate(cfg)
    assert str(refused.value).startswith(
        "--jit_compile cannot compile a --strategy mirrored_towers step"
    )
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "run").exists()  # refused before anything was written


_TWO_STEPS = {}


def two_steps(kind):
    """The model of `--seed SEED` after two steps (dropout 0) under strategy `kind`,
    as the trainer builds and steps it: (initial, final) weights in the plain layout."""
    if kind not in _TWO_STEPS:
        _TWO_STEPS[kind] = _two_steps(kind)
    return _TWO_STEPS[kind]


def _two_steps(kind):
    placement = strategies.make_placement(kind)
    with placement.strategy.scope():
        model = build_alexnet(
            CLASSES, SIZE, dropout=0.0, seed=SEED, tower_devices=tower_devices(placement)
        )
        optimizer = PaperSGD()  # the paper's recipe: lr 0.01, momentum 0.9, decay 5e-4
        optimizer.build(model.trainable_variables)
    initial = plain_weights(model)
    step = make_train_step(model, optimizer, placement.strategy, BATCH)
    rng = np.random.RandomState(0)
    images = rng.normal(0, 1, (2 * BATCH, SIZE, SIZE, 3)).astype("float32")
    labels = (np.arange(2 * BATCH) % CLASSES).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH)
    for x, y in placement.strategy.experimental_distribute_dataset(dataset):
        step(x, y)
    return initial, plain_weights(model)


def plain_weights(model):
    plain = build_alexnet(CLASSES, SIZE, dropout=0.0)
    copy_weights(model, plain)
    return plain.get_weights()


@pytest.mark.parametrize("kind", ["towers", "mirrored_towers"])
def test_the_same_seed_gives_the_same_network_as_one_device(kind):
    # Two logical CPUs here: towers on both; mirrored_towers is one replica of the pair.
    want_initial, want = two_steps("one_device")
    got_initial, got = two_steps(kind)
    for a, b in zip(got_initial, want_initial, strict=True):
        np.testing.assert_array_equal(a, b)  # one draw, sliced per tower: bit for bit
    for a, b, start in zip(got, want, want_initial, strict=True):
        # The towers sum a layer's gradient in another order (per tower, then joined):
        # float32 rounding, ~1e-6 of a variable's displacement (tests/test_steps.py
        # measured 1.4e-6 after three steps); 1e-4 of it here. Other initial weights
        # differ by the weights themselves, hundreds of times the displacement.
        moved = np.abs(b - start).max()
        assert moved > 0
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * moved)
