"""`--strategy mirrored_towers` on 4 logical CPUs: two replicas, each a pair of towers.

The test process has 2 logical CPUs (conftest.py), and TF fixes the count at start-up, so
test_mirrored_towers.py runs this file once in its own process:
`python four_devices.py OUT_DIR [CHECK ...]` runs every check below (or those named) and
writes `OUT_DIR/results.json`, `{check name: "ok" or the traceback}`. Kept small: one
tiny run and its resumed copy.
"""

import collections
import json
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from alexnet_tf.distribute.strategies import configure_cpu_devices, make_placement  # noqa: E402

configure_cpu_devices(4)

from alexnet_tf import build_alexnet, copy_weights  # noqa: E402
from alexnet_tf.evaluation.eval_step import make_eval_step  # noqa: E402
from alexnet_tf.model.optimizer import PaperSGD  # noqa: E402
from alexnet_tf.training.run import tower_devices  # noqa: E402
from alexnet_tf.training.steps import make_train_step  # noqa: E402

SIZE, CLASSES, BATCH = 67, 6, 4
# As tests/test_steps.py: a large decay so that a missing piece of the update shows.
LR, MOMENTUM, DECAY, STEPS = 0.005, 0.9, 5.0, 3
CHECKS = {}


def check(function):
    CHECKS[function.__name__] = function
    return function


def batches():
    rng = np.random.RandomState(0)
    images = rng.normal(0, 1, (STEPS * BATCH, SIZE, SIZE, 3)).astype("float32")
    labels = (np.arange(STEPS * BATCH) % CLASSES).astype("int32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH)


def trained(strategy, towers=None):
    """A model trained STEPS steps from seed 0 with the real step; (model, step, last batch)."""
    with strategy.scope():
        model = build_alexnet(CLASSES, SIZE, dropout=0.0, seed=0, tower_devices=towers)
        optimizer = PaperSGD(learning_rate=LR, momentum=MOMENTUM, l2_decay=DECAY)
        optimizer.build(model.trainable_variables)
    step = make_train_step(model, optimizer, strategy, BATCH)
    for x, y in strategy.experimental_distribute_dataset(batches()):
        assert float(step(x, y)["count"]) == BATCH
    return model, step, (x, y)


_RUNS = {}


def mirrored_towers_run():
    if "mt" not in _RUNS:
        placement = make_placement("mirrored_towers")
        assert placement.replicas == 2, placement
        _RUNS["mt"] = (placement, *trained(placement.strategy, tower_devices(placement)))
    return _RUNS["mt"]


def device_of(graph, op):
    """The CPU number an op runs on ("" if unplaced): its own device, else where its
    colocation group says (gradient ops are colocated with their forward op)."""
    device = op.device
    for group in op.colocation_groups() if not device else ():
        device = graph.get_operation_by_name(group.decode()[len("loc:@") :]).device
    return device.split(":")[-1] if device else ""


def op_devices(graph):
    """{op type: Counter of CPU numbers}."""
    found = collections.defaultdict(collections.Counter)
    for op in graph.get_operations():
        if op.type == "RealDiv" and "norm" not in op.name:
            continue  # LRN's written-out gradient only, not the loss's divisions
        found[op.type][device_of(graph, op)] += 1
    return found


@check
def towers_sit_on_each_replicas_pair():
    placement, _, step, (x, y) = mirrored_towers_run()
    assert placement.tower_pairs == (
        ("/device:CPU:0", "/device:CPU:1"),
        ("/device:CPU:2", "/device:CPU:3"),
    ), placement.tower_pairs
    assert [d.split(":")[-1] for d in placement.strategy.extended.worker_devices] == ["0", "2"]
    found = op_devices(step.get_concrete_function(x, y).graph)
    # Per tower of each replica: conv1..conv5, norm1 and norm2 (one Rsqrt each forward,
    # one RealDiv each backward), pool1, pool2, pool5, and the backward ops.
    for kind, count in {
        "Conv2D": 5,
        "Conv2DBackpropFilter": 5,
        "Rsqrt": 2,
        "RealDiv": 2,
        "MaxPool": 3,
        "MaxPoolGrad": 3,
    }.items():
        assert dict(found[kind]) == {d: count for d in "0123"}, (kind, dict(found[kind]))


@check
def steps_equal_one_device_on_the_same_global_batch():
    _, model, _, _ = mirrored_towers_run()
    reference, _, _ = trained(tf.distribute.OneDeviceStrategy("/CPU:0"))
    plain = build_alexnet(CLASSES, SIZE, dropout=0.0)
    copy_weights(model, plain)
    start = build_alexnet(CLASSES, SIZE, dropout=0.0, seed=0)
    for got, want, initial in zip(
        plain.get_weights(), reference.get_weights(), start.get_weights(), strict=True
    ):
        # Gradients summed in another order (two half batches, two towers) differ by
        # float32 rounding: measured 1.4e-6 of a variable's largest displacement after
        # three steps in tests/test_steps.py; 1e-4 of it here. A missing replica's half
        # batch, or a missed decay, is off by 10 % of it or more.
        moved = np.abs(want - initial).max()
        assert moved > 0
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * moved)
    # And each replica's mirrored copy of every variable is the same.
    for variable in model.trainable_variables:
        copies = [
            c.numpy() for c in model.distribute_strategy.experimental_local_results(variable.value)
        ]
        assert len(copies) == 2 and np.array_equal(copies[0], copies[1]), variable.path


@check
def evaluation_scores_every_image_once():
    placement, model, _, _ = mirrored_towers_run()
    strategy = placement.strategy
    rng = np.random.RandomState(3)
    images = rng.normal(0, 1, (7, SIZE, SIZE, 3)).astype("float32")
    plain = build_alexnet(CLASSES, SIZE, dropout=0.0)
    copy_weights(model, plain)
    logits = plain(images, training=False).numpy()
    labels = logits.argmax(-1).astype("int32")
    labels[::2] = (labels[::2] + 1) % CLASSES  # images 0, 2, 4, 6 missed at top-1
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)  # 3 + 3 + 1
    step = make_eval_step(model, strategy)
    totals = collections.Counter()
    for x, y in strategy.experimental_distribute_dataset(dataset):
        result = step(x, y)
        for key in ("count", "top1"):
            totals[key] += float(result[key])
    assert totals["count"] == 7, totals
    assert totals["top1"] == 3, totals


@check
def mixed_precision_trains_and_sends_tower_b_weights_in_16_bits():
    from alexnet_tf.config import TrainConfig
    from alexnet_tf.model.optimizer import make_optimizer

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        placement = make_placement("mirrored_towers")
        with placement.strategy.scope():
            model = build_alexnet(CLASSES, SIZE, seed=0, tower_devices=tower_devices(placement))
            optimizer = make_optimizer(TrainConfig(mixed_precision="float16"))  # loss scaling
            optimizer.build(model.trainable_variables)
        before = [w.copy() for w in model.get_weights()]
        step = make_train_step(model, optimizer, placement.strategy, BATCH)
        for x, y in placement.strategy.experimental_distribute_dataset(batches()):
            assert np.isfinite(float(step(x, y)["loss"]))
        graph = step.get_concrete_function(x, y).graph
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(not np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))
    # Tower B's weights live on the replica's own device (mirrored variables): every
    # tensor read from a variable there and used on the partner must already be float16.
    crossing = {}
    for op in graph.get_operations():
        here = device_of(graph, op)
        if here not in ("1", "3"):
            continue
        for tensor in op.inputs:
            source = tensor.op
            while source.type in ("Cast", "Identity") and source.inputs:
                source = source.inputs[0].op
            if (
                source.type == "ReadVariableOp"
                and tensor.dtype.is_floating
                and device_of(graph, tensor.op) != here
            ):
                crossing[tensor.name] = tensor.dtype.name
    # kernel and bias of tower B's 8 layers, read by each of the two replicas' partners
    # (the dropout layers' int64 seed states cross too: 16 bytes each)
    assert collections.Counter(crossing.values()) == {"float16": 32}, crossing


@check
def a_resumed_run_equals_the_run_that_never_stopped():
    import pathlib

    import test_resume
    from runcompare import assert_same_run

    from alexnet_tf.training import loop

    out = pathlib.Path(sys.argv[1])
    data_dir = test_resume.image_folder(
        out / "data", ("ant", "bee", "cat"), size=(40, 52), splits={"train": 8, "val": 3}
    )
    whole = out / "whole"
    result = loop.train_and_evaluate(test_resume.config(data_dir, whole, "mirrored_towers"))
    assert result["count"] == 9, result  # every validation image once
    step = test_resume.STEPS + 1  # one step into the second epoch
    resumed = test_resume.killed_after(whole, step, out / "resumed")
    loop.train_and_evaluate(test_resume.config(data_dir, resumed, "mirrored_towers"))
    assert_same_run(whole, resumed, test_resume.EPOCHS)
    assert json.loads((whole / "run.json").read_text())["layout"] == "towers"
    conv1_grids_per_tower(whole)
    # evaluate.py --checkpoint latest reads the run's checkpoint into the plain model.
    from alexnet_tf.evaluation import model_files

    run = model_files.read_run(str(whole))
    restored = model_files.restore_checkpoint(run, 3, model_files.latest_checkpoint(str(whole)))
    final = keras.saving.load_model(whole / "model.keras")
    for a, b in zip(restored.get_weights(), final.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@check
def device_augmentation_feeds_the_host_paths_input():
    """--augment_on device under mirrored_towers: each replica's model input equals the
    host path's (test_device_augment.py checks the other strategies)."""
    import pathlib

    from augment_places import host_and_device, max_difference
    from imagefiles import image_folder

    from alexnet_tf.config import DataConfig
    from alexnet_tf.data.inputs import prepare_inputs

    out = pathlib.Path(sys.argv[1]) / "augment"
    # Files at --resize: the uint8 crops are handed over exactly.
    root = image_folder(out / "d", ("ant", "bee"), splits={"train": 4, "val": 1}, size=(76, 90))
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=SIZE, resize=76, seed=3)
    inputs = prepare_inputs(cfg, str(out / "run"))
    placement = make_placement("mirrored_towers")
    host, device = host_and_device(placement.strategy, cfg, inputs.train, inputs.stats)
    assert len(host) == 2 and len(host[0]) == 2, [len(s) for s in host]  # 2 steps, 2 replicas
    assert max_difference(host, device) < 1e-4


def conv1_grids_per_tower(run):
    """TensorBoard's last conv1 grid of each tower shows that tower's 48 filters of the
    final model, each scaled to [0, 1] on its own (a NumPy reference of the grid)."""
    images = {}
    for path in sorted((run / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag.startswith("conv1_filters/"):
                    png = tf.make_ndarray(value.tensor)[2]  # width, height, PNG
                    images[value.tag] = tf.io.decode_png(png)
    assert sorted(images) == ["conv1_filters/tower0", "conv1_filters/tower1"], sorted(images)
    kernel = keras.saving.load_model(run / "model.keras").get_layer("conv1").get_weights()[0]
    for tower in (0, 1):
        filters = kernel[..., 48 * tower : 48 * (tower + 1)]
        grid = images[f"conv1_filters/tower{tower}"].numpy().astype(np.float32) / 255.0
        assert grid.shape == (6 * 12 * 3 + 3, 8 * 12 * 3 + 3, 3), grid.shape  # 6 x 8, zoom 3
        for i in (0, 47):  # first and last filter of the tower, top-left pixel of each
            row, col = divmod(i, 8)
            top, left = 3 * (1 + row * 12), 3 * (1 + col * 12)
            f = filters[..., i]
            want = (f[0, 0] - f.min()) / (f.max() - f.min())
            np.testing.assert_allclose(grid[top, left], want, atol=1 / 255)


def main():
    results = {}
    chosen = sys.argv[2:] or list(CHECKS)  # e.g. one check, while working on it
    for name in chosen:
        function = CHECKS[name]
        keras.utils.set_random_seed(1234)
        start = time.monotonic()
        try:
            function()
            results[name] = "ok"
            print(f"{name}: {time.monotonic() - start:.1f} s", file=sys.stderr)
        except Exception:  # noqa: BLE001 - reported to the test, which fails with it
            results[name] = traceback.format_exc()
    with open(os.path.join(sys.argv[1], "results.json"), "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
