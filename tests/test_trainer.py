"""The training loop in-process on a tiny generated folder dataset (2 logical CPUs)."""

import dataclasses
import glob
import json
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf
from imagefiles import image_folder

from alexnet_tf import build_alexnet
from alexnet_tf.config import CHECKPOINT_DIR, Config, DataConfig, TrainConfig
from alexnet_tf.errors import TrainingStopped, UserError
from alexnet_tf.training import loop
from alexnet_tf.training import run as training_run
from alexnet_tf.training.signals import Stop, StopSignals

CLASSES = ("ant", "bee", "cat")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return image_folder(root, CLASSES, size=(40, 52), splits={"train": 8, "val": 3})


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def tiny_config(data_dir, model_dir, **train):
    """The real config, shrunk: 67-px crops, batches of 4, two steps an epoch."""
    defaults = dict(
        model_dir=str(model_dir),
        epochs=1,
        batch_size=4,
        steps_per_epoch=2,
        checkpoint_every=1,
        progress_seconds=0.0,
    )
    return Config(
        data=DataConfig(
            dataset="folder", data_dir=data_dir, image_size=67, resize=76, stats_images=0
        ),
        train=TrainConfig(**{**defaults, **train}),
    )


def checkpoint_steps(model_dir):
    files = glob.glob(os.path.join(model_dir, CHECKPOINT_DIR, "ckpt-*.index"))
    return sorted(int(os.path.basename(f)[5:-6]) for f in files)


@pytest.mark.parametrize("strategy", ["one_device", "mirrored", "towers"])
def test_a_few_steps_under_each_strategy_leave_a_model_export_and_checkpoints(
    data_dir, tmp_path, strategy
):
    cfg = tiny_config(data_dir, tmp_path / "run", strategy=strategy)
    result = loop.train_and_evaluate(cfg)
    assert result["count"] == 9  # every validation image, once
    run = tmp_path / "run"
    summary = json.loads((run / "result.json").read_text())
    assert summary["steps"] == 2
    assert checkpoint_steps(run)[-1] == 2
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert [w.shape for w in model.get_weights()] == [  # plain layout whatever the strategy
        w.shape for w in build_alexnet(len(CLASSES), 67).get_weights()
    ]
    assert (run / "saved_model" / "saved_model.pb").is_file()
    layout = json.loads((run / "run.json").read_text())["layout"]
    assert layout == ("towers" if strategy == "towers" else "plain")


def test_tensorboard_event_files_hold_the_dashboards(data_dir, tmp_path):
    loop.train_and_evaluate(tiny_config(data_dir, tmp_path / "run"))
    tags = {}
    for split in ("train", "val", ""):
        tags[split] = set()
        for path in glob.glob(str(tmp_path / "run" / split / "events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                tags[split].update(value.tag for value in event.summary.value)
    assert {
        "loss",
        "top1",
        "top5",
        "learning_rate",
        "images_per_sec",
        "inputs",
        "conv1_filters/tower0",
        "conv1_filters/tower1",
    } <= tags["train"]
    assert {"loss", "top1", "top5"} <= tags["val"]
    assert "_hparams_/session_start_info" in tags[""]


@pytest.mark.parametrize(
    "checkpoint_every, caught", [(100, "the loss"), (1, "the weights")], ids=["loss", "weights"]
)
def test_non_finite_training_stops_with_status_3_and_saves_nothing_after(
    data_dir, tmp_path, checkpoint_every, caught
):
    # Saving at every step, the overflowing weights are caught before the save that
    # would keep them; saving rarely, the loss they cause stops the run.
    cfg = tiny_config(
        data_dir,
        tmp_path / "run",
        learning_rate=1e12,
        steps_per_epoch=6,
        checkpoint_every=checkpoint_every,
    )
    with pytest.raises(TrainingStopped, match=f"{caught} became NaN or infinite") as stopped:
        loop.train_and_evaluate(cfg)
    assert stopped.value.exit_code == 3
    bad_step = int(str(stopped.value).split("by step ")[1].split(";")[0])
    assert all(step < bad_step for step in checkpoint_steps(tmp_path / "run"))
    assert not (tmp_path / "run" / "model.keras").exists()
    reader = (
        tf.train.load_checkpoint(str(tmp_path / "run" / CHECKPOINT_DIR))
        if (checkpoint_steps(tmp_path / "run"))
        else None
    )
    if reader is not None:  # what was saved is finite
        for key in reader.get_variable_to_shape_map():
            if key.startswith("model/"):
                assert np.isfinite(reader.get_tensor(key)).all(), key


def test_more_steps_than_the_data_holds_is_a_user_error(data_dir, tmp_path):
    cfg = tiny_config(data_dir, tmp_path / "run", steps_per_epoch=7)  # 24 images: 6 batches
    with pytest.raises(UserError, match="--steps_per_epoch 7"):
        loop.train_and_evaluate(cfg)


def test_data_that_runs_out_during_an_epoch_stops_with_status_4(tmp_path, monkeypatch):
    own_data = image_folder(
        tmp_path / "data", CLASSES, size=(40, 52), splits={"train": 8, "val": 3}
    )
    prepare = loop.prepare_inputs

    def prepare_then_lose_files(*args, **kwargs):
        inputs = prepare(*args, **kwargs)
        for path in inputs.train.paths[10:]:  # 14 of 24 files vanish after the checks
            os.remove(path)
        return inputs

    monkeypatch.setattr(loop, "prepare_inputs", prepare_then_lose_files)
    with pytest.raises(TrainingStopped, match="ran out after") as stopped:
        loop.train_and_evaluate(tiny_config(own_data, tmp_path / "run", steps_per_epoch=6))
    assert stopped.value.exit_code == 4


def test_batch_size_must_divide_over_the_replicas(data_dir, tmp_path):
    cfg = tiny_config(data_dir, tmp_path / "run", strategy="mirrored", batch_size=3)
    with pytest.raises(UserError, match="--batch_size 3 does not divide over 2 replicas"):
        loop.train_and_evaluate(cfg)


def test_resuming_continues_the_run_and_its_plateau_state(data_dir, tmp_path):
    cfg = tiny_config(data_dir, tmp_path / "run", epochs=1, plateau_patience=1)
    first = loop.train_and_evaluate(cfg)
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2))
    loop.train_and_evaluate(longer)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["steps"] == 4
    reader = tf.train.load_checkpoint(str(tmp_path / "run" / CHECKPOINT_DIR))
    best = reader.get_tensor("state/plateau_best/.ATTRIBUTES/VARIABLE_VALUE")
    assert best <= 1.0 - first["top1"] + 1e-9  # epoch 1's error was remembered, not reset


def test_resuming_with_other_settings_or_layout_is_refused(data_dir, tmp_path):
    cfg = tiny_config(data_dir, tmp_path / "run")
    loop.train_and_evaluate(cfg)
    other_batch = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=2))
    with pytest.raises(UserError, match="batch_size=4, not 2"):
        loop.train_and_evaluate(other_batch)
    towers = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, strategy="towers"))
    with pytest.raises(UserError, match="holds a plain run"):
        loop.train_and_evaluate(towers)


@pytest.mark.parametrize("strategy", ["one_device", "mirrored"])
def test_loss_equals_the_models_own_cross_entropy_on_the_first_batch(
    data_dir, tmp_path, monkeypatch, strategy
):
    # Guards the step and the trainer's bookkeeping against mis-scaled losses (a sum for
    # a mean, the per-replica batch for the global one, a replica counted twice): the
    # loss the run reports for its one step equals the mean softmax cross-entropy,
    # computed here in NumPy, of the model's logits on the step's own batch.
    # Dropout 0, so the training-mode forward pass is the deterministic one.
    seen = {}
    make_step = training_run.make_train_step

    def recording_step(model, optimizer, strategy_, *args, **kwargs):
        step = make_step(model, optimizer, strategy_, *args, **kwargs)

        def step_and_record(images, labels):
            if "logits" not in seen:  # before the step changes the weights
                local = strategy_.experimental_local_results
                images_np = np.concatenate([x.numpy() for x in local(images)])
                seen["labels"] = np.concatenate([y.numpy() for y in local(labels)])
                seen["logits"] = model(images_np, training=False).numpy().astype(np.float64)
            return step(images, labels)

        return step_and_record

    monkeypatch.setattr(training_run, "make_train_step", recording_step)
    cfg = tiny_config(data_dir, tmp_path / "run", strategy=strategy, steps_per_epoch=1)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dropout=0.0))
    loop.train_and_evaluate(cfg)

    logits, labels = seen["logits"], seen["labels"]
    assert logits.shape == (4, len(CLASSES))  # the whole global batch
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(len(labels)), labels].mean()

    events = glob.glob(str(tmp_path / "run" / "train" / "events.out.tfevents.*"))
    losses = [
        float(np.squeeze(tf.make_ndarray(v.tensor)))
        for p in events
        for e in tf.compat.v1.train.summary_iterator(p)
        for v in e.summary.value
        if v.tag == "loss"
    ]
    # float32 forward passes of one batch (oneDNN may pick other kernels for a batch of
    # 4 than for 2 per replica): agreement to ~1e-6 relative; a mis-scaled loss is off
    # by a factor of 2 or more.
    assert losses == pytest.approx([expected], rel=1e-4)


@pytest.mark.parametrize(
    "options",
    [{"mixed_precision": "float16"}, {"mixed_precision": "bfloat16"}, {"jit_compile": True}],
    ids=["float16", "bfloat16", "xla"],
)
def test_mixed_precision_and_xla_train_with_lrn_and_grouped_convolutions(
    data_dir, tmp_path, options
):
    cfg = tiny_config(data_dir, tmp_path / "run", **options)
    result = loop.train_and_evaluate(cfg)
    assert result["count"] == 9 and np.isfinite(result["loss"])
    # The final model is float32 whatever trained it, so it loads and runs anywhere.
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_profile_steps_capture_a_trace(data_dir, tmp_path):
    cfg = tiny_config(data_dir, tmp_path / "run", profile_steps=(0, 1))
    loop.train_and_evaluate(cfg)
    traces = glob.glob(str(tmp_path / "run" / "plugins" / "profile" / "*" / "*.xplane.pb"))
    assert traces and os.path.getsize(traces[0]) > 0


def test_a_first_signal_is_only_recorded_and_acted_on_at_the_next_safe_point():
    # A handler that raised would raise wherever Python runs, even in a finalizer called
    # from inside a TF op: the first signal must wait for `poll`. (A second one ends the
    # process: tests/test_stopping.py checks it on real processes.)
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # Python runs the handler between these bytecodes
            pass
        assert signals.received == signal.SIGTERM
        ran_whole = False
        with pytest.raises(Stop), signals.deferred():
            ran_whole = True  # a step in a deferred block runs whole, then the stop
        assert ran_whole and signals.at_safe_point
