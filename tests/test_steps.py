import numpy as np
import pytest
import tensorflow as tf
from conftest import TWO_CPUS

from alexnet_tf import build_alexnet, copy_weights
from alexnet_tf.distribute.strategies import mirrored_strategy
from alexnet_tf.evaluation.eval_step import make_eval_step
from alexnet_tf.model.optimizer import PaperSGD
from alexnet_tf.training.steps import make_train_step

SIZE, CLASSES = 67, 6


def batch(n=4, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.normal(0, 1, (n, SIZE, SIZE, 3)).astype("float32")
    return images, (np.arange(n) % CLASSES).astype("int32")


# Large enough that a missing piece of the update is far outside the tolerance below:
# a step's decay moves a kernel by LR * DECAY = 2.5 % of itself (the paper's 0.0005
# would be 2.5e-5 at lr 0.05, inside float32 noise), and without momentum the
# displacement after STEPS steps is about 3 / 5.61 of the paper's. Small enough that
# the loss stays finite and moderate (3.2, 10.5, 8.4), so float32 noise stays small.
LR, MOMENTUM, DECAY, STEPS = 0.005, 0.9, 5.0, 3


def paper_sgd_reference(start, batches):
    """The paper's update written out in NumPy (float64), on the gradient of the global
    batch's mean loss from a one-device `tf.GradientTape`:
    v <- m v - lr (g + wd w)  (decay on kernels only);  w <- w + v.

    Returns ({variable path: weights after every step}, [loss of each step]).
    """
    plain = build_alexnet(CLASSES, SIZE, dropout=0.0, seed=0)
    copy_weights(start, plain)
    variables = plain.trainable_variables
    weights = {v.path: v.numpy().astype(np.float64) for v in variables}
    velocity = {path: np.zeros_like(w) for path, w in weights.items()}
    losses = []
    for images, labels in batches:
        for v in variables:
            v.assign(weights[v.path].astype(np.float32))
        with tf.GradientTape() as tape:
            logits = plain(images, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
        losses.append(float(loss))
        for v, g in zip(variables, tape.gradient(loss, variables), strict=True):
            decay = DECAY if v.path.split("/")[-1] == "kernel" else 0.0
            w = weights[v.path]
            velocity[v.path] = MOMENTUM * velocity[v.path] - LR * (g.numpy() + decay * w)
            weights[v.path] = w + velocity[v.path]
    return weights, losses


def train_steps(strategy, start, batches, tower_devices=None):
    """A model trained from `start` on `batches` with the real step and `PaperSGD`."""
    with strategy.scope():
        model = build_alexnet(CLASSES, SIZE, dropout=0.0, seed=0, tower_devices=tower_devices)
        copy_weights(start, model)
        optimizer = PaperSGD(learning_rate=LR, momentum=MOMENTUM, l2_decay=DECAY)
        optimizer.build(model.trainable_variables)
    step = make_train_step(model, optimizer, strategy, global_batch_size=4)
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    losses = []
    for x, y in strategy.experimental_distribute_dataset(dataset):
        metrics = step(x, y)
        assert metrics["count"].numpy() == 4
        losses.append(float(metrics["loss"]))
    return model, losses


@pytest.mark.parametrize("strategy", ["one_device", "mirrored", "towers"])
def test_steps_follow_the_papers_update_under_every_strategy(strategy):
    start = build_alexnet(CLASSES, SIZE, dropout=0.0, seed=0)
    batches = [batch(seed=s) for s in range(STEPS)]
    expected, expected_losses = paper_sgd_reference(start, batches)
    if strategy == "one_device":
        model, losses = train_steps(tf.distribute.OneDeviceStrategy("/CPU:0"), start, batches)
    elif strategy == "mirrored":
        model, losses = train_steps(mirrored_strategy(TWO_CPUS), start, batches)
    else:
        model, losses = train_steps(tf.distribute.get_strategy(), start, batches, TWO_CPUS)

    if strategy == "towers":  # read the towers' weights in the plain layout
        plain = build_alexnet(CLASSES, SIZE, dropout=0.0, seed=0)
        copy_weights(model, plain)
        copies = {v.path: [v.numpy()] for v in plain.trainable_variables}
    else:  # every replica's copy of every variable (the second one missed decay once)
        copies = {
            v.path: [
                x.numpy() for x in model.distribute_strategy.experimental_local_results(v.value)
            ]
            for v in model.trainable_variables
        }
        assert all(len(c) == (2 if strategy == "mirrored" else 1) for c in copies.values())
    assert copies.keys() == expected.keys()
    initial = {v.path: v.numpy() for v in start.trainable_variables}
    for path, want in expected.items():
        # float32 gradients summed in another order (halves of the batch, two towers)
        # differ from the reference's by ~1e-6 of the variable's largest displacement
        # after three steps (measured 1.4e-6 at worst); the tolerance is 1e-4 of it.
        # A step without decay or momentum is off by 10 % of it or more.
        moved = np.abs(want - initial[path]).max()
        assert moved > 0, path
        for replica, got in enumerate(copies[path]):
            np.testing.assert_allclose(
                got, want, rtol=0, atol=1e-4 * moved, err_msg=f"{path} replica {replica}"
            )
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-4)


def reference_ten_crop(model, crops):
    """NumPy: softmax of each crop, averaged per image."""
    logits = model(crops.reshape(-1, SIZE, SIZE, 3), training=False).numpy().astype("float64")
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return probs.reshape(crops.shape[0], crops.shape[1], -1).mean(axis=1)


def test_ten_crop_eval_step_averages_softmax_over_crops():
    model = build_alexnet(CLASSES, SIZE, seed=1)
    crops = np.random.RandomState(2).normal(0, 1, (5, 10, SIZE, SIZE, 3)).astype("float32")
    probs = reference_ten_crop(model, crops)
    labels = probs.argmax(-1).astype("int32")
    labels[0] = probs[0].argmin()  # one miss for top-1
    step = make_eval_step(model, tf.distribute.get_strategy())
    result = {k: v.numpy() for k, v in step(crops, labels).items()}
    assert result["count"] == 5
    assert result["top1"] == 4
    expected_loss = -np.log(probs[np.arange(5), labels]).sum()
    np.testing.assert_allclose(result["loss"], expected_loss, rtol=1e-4)


@pytest.mark.parametrize("replicas", [1, 2])
def test_eval_counts_every_image_once_with_a_partial_last_batch(replicas):
    strategy = mirrored_strategy(TWO_CPUS[:replicas])
    with strategy.scope():
        model = build_alexnet(CLASSES, SIZE, seed=1)
    images, labels = batch(7, seed=3)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)  # 3 + 3 + 1
    step = make_eval_step(model, strategy)
    totals = {"count": 0.0, "top1": 0.0}
    for x, y in strategy.experimental_distribute_dataset(dataset):
        result = step(x, y)
        for key in totals:
            totals[key] += float(result[key])
    assert totals["count"] == 7
    expected = (model(images, training=False).numpy().argmax(-1) == labels).sum()
    assert totals["top1"] == expected
