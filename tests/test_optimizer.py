import keras
import numpy as np
import pytest
import tensorflow as tf

from alexnet_tf.model.optimizer import PaperSGD


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


def test_an_optimizer_works_after_an_earlier_models_optimizer_is_gone():
    # The fused update is compiled per optimizer: one traced for a deleted model's
    # variables must not be reused (TF refuses: "referencing variables ... deleted").
    import gc

    from alexnet_tf.training.steps import make_train_step

    def small_model():
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(3)(inputs))

    def fit_and_forget():
        model = small_model()
        model.compile(PaperSGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(np.ones((4, 4), "float32"), np.arange(4) % 3, batch_size=2, verbose=0)

    fit_and_forget()
    gc.collect()
    model = small_model()
    optimizer = PaperSGD(0.1)
    optimizer.build(model.trainable_variables)
    step = make_train_step(model, optimizer, tf.distribute.get_strategy(), 2)
    before = model.get_weights()[0].copy()
    step(tf.ones((2, 4)), tf.constant([0, 1]))
    assert not np.array_equal(model.get_weights()[0], before)


def test_every_mirrored_replica_follows_the_papers_rule_with_decay():
    # Under MirroredStrategy the update runs once per replica, on that replica's copy
    # of the variable: each copy must decay, or the copies drift apart and a checkpoint
    # (which keeps the first copy) no longer describes the model the replicas train.
    from conftest import TWO_CPUS

    from alexnet_tf.distribute.strategies import mirrored_strategy

    strategy = mirrored_strategy(TWO_CPUS)
    with strategy.scope():
        kernel = keras.Variable(np.array([1.0, -2.0], "float32"), name="kernel")
        optimizer = PaperSGD(learning_rate=0.1, momentum=0.9, l2_decay=0.05)
        optimizer.build([kernel])

    @tf.function
    def step(grad):
        strategy.run(lambda: optimizer.apply([tf.identity(grad)], [kernel]))

    grad = np.array([0.3, 0.1])  # per replica: the applied gradient is their sum
    w, v = kernel.numpy().astype("float64"), np.zeros(2)
    for _ in range(3):
        step(tf.constant(grad, tf.float32))
        v = 0.9 * v - 0.05 * 0.1 * w - 0.1 * (2 * grad)
        w = w + v
    copies = strategy.experimental_local_results(kernel.value)
    assert len(copies) == 2
    for copy in copies:
        np.testing.assert_allclose(copy.numpy(), w, rtol=1e-6)
