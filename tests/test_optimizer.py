import keras
import numpy as np
import pytest
import tensorflow as tf

from alexnet_tf.optimizer import PaperSGD


def test_follows_the_papers_update_rule_with_decay_inside_the_momentum():
    kernel = keras.Variable(np.array([1.0, -2.0], "float32"), name="kernel")
    bias = keras.Variable(np.array([0.5], "float32"), name="bias")
    optimizer = PaperSGD(learning_rate=0.1, momentum=0.9, l2_decay=5e-4)
    grads = [np.array([0.3, 0.1]), np.array([0.2])]
    w = [kernel.numpy().astype("float64"), bias.numpy().astype("float64")]
    v = [np.zeros(2), np.zeros(1)]
    for _ in range(3):
        optimizer.apply_gradients(
            zip([tf.constant(g, tf.float32) for g in grads], [kernel, bias], strict=True)
        )
        for i, decay in enumerate((5e-4, 0.0)):  # biases are not decayed by default
            v[i] = 0.9 * v[i] - decay * 0.1 * w[i] - 0.1 * grads[i]
            w[i] = w[i] + v[i]
    np.testing.assert_allclose(kernel.numpy(), w[0], rtol=1e-6)
    np.testing.assert_allclose(bias.numpy(), w[1], rtol=1e-6)
    # And it is not Keras' decoupled decay, which gives a different kernel.
    decoupled = keras.Variable(np.array([1.0, -2.0], "float32"), name="kernel")
    keras_sgd = keras.optimizers.SGD(0.1, 0.9, weight_decay=5e-4)
    for _ in range(3):
        keras_sgd.apply_gradients([(tf.constant(grads[0], tf.float32), decoupled)])
    assert not np.allclose(decoupled.numpy(), w[0], rtol=1e-6)


def test_decay_biases_option_and_config_round_trip():
    bias = keras.Variable(np.array([1.0], "float32"), name="bias")
    optimizer = PaperSGD(learning_rate=1.0, momentum=0.0, l2_decay=0.5, decay_biases=True)
    optimizer.apply_gradients([(tf.zeros(1), bias)])
    np.testing.assert_allclose(bias.numpy(), [0.5])
    clone = PaperSGD.from_config(optimizer.get_config())
    assert (clone.l2_decay, clone.decay_biases, clone.momentum) == (0.5, True, 0.0)


def test_negative_decay_is_rejected():
    with pytest.raises(ValueError, match="l2_decay=-1"):
        PaperSGD(l2_decay=-1)
