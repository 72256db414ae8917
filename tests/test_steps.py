import numpy as np
import pytest
import tensorflow as tf
from conftest import TWO_CPUS

from alexnet_tf import build_alexnet, copy_weights
from alexnet_tf.distribute import mirrored_strategy
from alexnet_tf.optimizer import PaperSGD
from alexnet_tf.steps import make_eval_step, make_train_step

SIZE, CLASSES = 67, 6


def batch(n=4, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.normal(0, 1, (n, SIZE, SIZE, 3)).astype("float32")
    return images, (np.arange(n) % CLASSES).astype("int32")


def one_step(strategy, tower_devices=None, weights=None):
    """Weights after one training step (dropout off, so every path is deterministic)."""
    with strategy.scope():
        model = build_alexnet(CLASSES, SIZE, dropout=0.0, seed=0, tower_devices=tower_devices)
        if weights is not None:
            copy_weights(weights, model)
        optimizer = PaperSGD(learning_rate=0.05)
        optimizer.build(model.trainable_variables)
    step = make_train_step(model, optimizer, strategy, global_batch_size=4)
    images, labels = batch()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    x, y = next(iter(strategy.experimental_distribute_dataset(dataset)))
    metrics = step(x, y)
    assert metrics["count"].numpy() == 4
    return model, metrics


def test_mirrored_and_towers_steps_equal_the_one_device_step():
    reference, ref_metrics = one_step(tf.distribute.OneDeviceStrategy("/CPU:0"))
    start = build_alexnet(CLASSES, SIZE, dropout=0.0, seed=0)  # same seed: same start
    mirrored, metrics = one_step(mirrored_strategy(TWO_CPUS))
    towers, _ = one_step(tf.distribute.get_strategy(), TWO_CPUS, weights=start)
    np.testing.assert_allclose(metrics["loss"].numpy(), ref_metrics["loss"].numpy(), rtol=1e-5)
    moved = 0
    for name in ("conv1", "conv4", "fc6", "fc8"):
        expected = reference.get_layer(name).get_weights()[0]
        moved += np.abs(expected - start.get_layer(name).get_weights()[0]).max()
        for other in (mirrored, towers):
            np.testing.assert_allclose(
                other.get_layer(name).get_weights()[0], expected, rtol=1e-4, atol=1e-6
            )
    assert moved > 0  # the step did change the weights


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
