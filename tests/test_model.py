import collections

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TWO_CPUS

from alexnet_tf import build_alexnet, copy_weights
from alexnet_tf.model.optimizer import PaperSGD
from alexnet_tf.training.steps import make_train_step


def images(n=3, size=67, seed=0):
    return np.random.RandomState(seed).normal(0, 1, (n, size, size, 3)).astype("float32")


def test_the_paper_model_has_60_965_224_parameters():
    assert build_alexnet().count_params() == 60_965_224


def test_variants_have_the_known_parameter_counts():
    assert build_alexnet(groups=1).count_params() == 62_378_344
    assert build_alexnet(num_classes=1001).count_params() == 60_965_224 + 4097


def test_output_shapes_follow_the_layer_table():
    model = build_alexnet()
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    assert shapes["conv1"] == (55, 55, 96)
    assert shapes["norm1"] == (55, 55, 96)
    assert shapes["pool1"] == (27, 27, 96)
    assert shapes["conv2"] == (27, 27, 256)
    assert shapes["pool2"] == (13, 13, 256)
    assert shapes["conv3"] == (13, 13, 384)
    assert shapes["conv4"] == (13, 13, 384)
    assert shapes["conv5"] == (13, 13, 256)
    assert shapes["pool5"] == (6, 6, 256)
    assert shapes["fc6"] == shapes["fc7"] == (4096,)
    assert shapes["fc8"] == (1000,)


def test_layers_hold_kernel_and_bias_in_the_keras_grouped_layout():
    model = build_alexnet(num_classes=10, image_size=67)
    kernel, bias = model.get_layer("conv2").get_weights()
    assert kernel.shape == (5, 5, 48, 256) and bias.shape == (256,)
    assert model.get_layer("conv4").get_weights()[0].shape == (3, 3, 192, 384)
    assert model.get_layer("conv3").get_weights()[0].shape == (3, 3, 256, 384)


def test_grouped_convolution_equals_keras_conv2d_with_groups():
    model = build_alexnet(num_classes=10, image_size=67)
    x = keras.Input((7, 7, 96))
    reference = keras.layers.Conv2D(256, 5, padding="same", groups=2, activation="relu")
    keras.Model(x, reference(x))
    reference.set_weights(model.get_layer("conv2").get_weights())
    features = np.random.RandomState(1).normal(size=(2, 7, 7, 96)).astype("float32")
    np.testing.assert_allclose(
        model.get_layer("conv2")(features).numpy(),
        reference(features).numpy(),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("size", [67, 100, 227])
def test_any_size_from_67_builds_and_runs(size):
    model = build_alexnet(num_classes=5, image_size=size)
    assert model(images(1, size)).shape == (1, 5)


def test_paper_init_sets_the_papers_biases_and_weight_scale():
    model = build_alexnet(num_classes=10, image_size=67, init="paper")
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        kernel, bias = model.get_layer(name).get_weights()
        expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        np.testing.assert_array_equal(bias, expected_bias)
        assert abs(kernel.std() - 0.01) < 0.002, name
    caffe = build_alexnet(num_classes=10, image_size=67, init="caffe")
    np.testing.assert_allclose(caffe.get_layer("fc6").get_weights()[1], 0.1)
    assert abs(caffe.get_layer("fc6").get_weights()[0].std() - 0.005) < 0.001


def test_he_init_scales_kernels_by_fan_in():
    model = build_alexnet(num_classes=10, image_size=67)
    kernel, bias = model.get_layer("conv2").get_weights()
    fan_in = 5 * 5 * 48  # one group's inputs
    # Keras' HeNormal truncates at 2 std and rescales so the std is sqrt(2 / fan_in).
    assert abs(kernel.std() / np.sqrt(2 / fan_in) - 1.0) < 0.05
    assert not bias.any()


def test_seeded_builds_are_reproducible_and_layers_differ():
    a = build_alexnet(num_classes=10, image_size=67, seed=3)
    b = build_alexnet(num_classes=10, image_size=67, seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    towers = build_alexnet(num_classes=10, image_size=67, seed=3, tower_devices=TWO_CPUS)
    kernel = towers.get_layer("conv4").get_weights()[0]
    assert not np.allclose(kernel[..., :192], kernel[..., 192:])  # towers not identical


@pytest.mark.parametrize("variant", ["paper", "torchvision"])
def test_a_seeded_build_draws_each_layers_weights_independently(variant):
    model = build_alexnet(num_classes=10, image_size=67, seed=3, variant=variant)
    names = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    heads = [model.get_layer(n).get_weights()[0].ravel()[:2000] for n in names]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            correlation = np.corrcoef(heads[i], heads[j])[0, 1]
            # independent draws of 2,000: |r| ~ 1/sqrt(2000) = 0.022; a shared seed gives ~1
            assert abs(correlation) < 0.15, (names[i], names[j], correlation)


def test_plain_and_towers_models_compute_the_same_outputs_both_ways():
    plain = build_alexnet(num_classes=10, image_size=67)
    rng = np.random.RandomState(5)
    for layer in plain.layers:
        if layer.weights:  # distinct biases, so a tower using the other's shows
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape).astype("float32")])
    towers = build_alexnet(num_classes=10, image_size=67, tower_devices=TWO_CPUS)
    x = images(4) * 60.0  # large inputs: LRN's scope matters
    copy_weights(plain, towers)
    expected = plain(x, training=False).numpy()
    assert np.abs(expected).max() > 1e-2
    np.testing.assert_allclose(towers(x, training=False).numpy(), expected, rtol=1e-4, atol=1e-4)

    fresh = build_alexnet(num_classes=10, image_size=67)
    copy_weights(towers, fresh)
    np.testing.assert_allclose(fresh(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_towers_weights_and_optimizer_slots_live_on_their_devices():
    towers = build_alexnet(num_classes=10, image_size=67, tower_devices=TWO_CPUS)
    for variable in towers.weights:
        tower = variable.name[-1]
        assert variable.value.device.endswith(f"CPU:{tower}"), variable.path
    optimizer = PaperSGD()
    optimizer.build(towers.trainable_variables)
    slots = [v for v in optimizer.variables if "tower" in v.path]
    assert len(slots) == len(towers.trainable_variables)
    for slot in slots:
        assert slot.value.device.endswith(f"CPU:{slot.path.split('_momentum')[0][-1]}")


def _op_devices(graph, op_types):
    """{op type: Counter of device suffixes} for the ops of the traced graph.

    An op without a device of its own runs where its colocation group says
    (gradient ops are colocated with their forward op).
    """
    found = collections.defaultdict(collections.Counter)
    for op in graph.get_operations():
        if op.type in op_types:
            device = op.device
            for group in op.colocation_groups() if not device else ():
                device = graph.get_operation_by_name(group.decode()[len("loc:@") :]).device
            found[op.type][device.split("/")[-1]] += 1
    return found


def test_towers_ops_are_placed_on_their_devices_in_the_real_training_step():
    # The trainer's own step (steps.make_train_step, as the towers strategy runs it under
    # the default strategy), traced: forward, backward and the optimizer's update of each
    # tower's half run on that tower's device.
    towers = build_alexnet(num_classes=10, image_size=67, tower_devices=TWO_CPUS)
    optimizer = PaperSGD()
    optimizer.build(towers.trainable_variables)
    train_step = make_train_step(towers, optimizer, tf.distribute.get_strategy(), 2)
    graph = train_step.get_concrete_function(
        tf.TensorSpec((2, 67, 67, 3)), tf.TensorSpec((2,), tf.int32)
    ).graph
    # LRN forward: one Rsqrt per norm layer; its written-out gradient: one RealDiv.
    # StatefulPartitionedCall: the optimizer's fused (XLA) update of each variable.
    found = _op_devices(
        graph,
        {
            "Conv2D",
            "Rsqrt",
            "MaxPool",
            "MatMul",
            "Conv2DBackpropFilter",
            "RealDiv",
            "MaxPoolGrad",
            "StatefulPartitionedCall",
        },
    )
    devices = {op: {d: n for d, n in c.items() if d} for op, c in found.items()}  # pinned
    # conv1..conv5 per tower; norm1, norm2; pool1, pool2, pool5; fc6..fc8 (+ backprop).
    assert devices["Conv2D"] == {"device:CPU:0": 5, "device:CPU:1": 5}
    assert devices["Rsqrt"] == {"device:CPU:0": 2, "device:CPU:1": 2}
    assert devices["MaxPool"] == {"device:CPU:0": 3, "device:CPU:1": 3}
    assert devices["Conv2DBackpropFilter"] == {"device:CPU:0": 5, "device:CPU:1": 5}
    assert devices["RealDiv"] == {"device:CPU:0": 2, "device:CPU:1": 2}
    assert devices["MaxPoolGrad"] == {"device:CPU:0": 3, "device:CPU:1": 3}
    # fc6..fc8 forward and their two backward products: 13 a tower, as traced.
    assert devices["MatMul"] == {"device:CPU:0": 13, "device:CPU:1": 13}
    # kernel and bias of 8 layers per tower, each updated where it lives.
    assert devices["StatefulPartitionedCall"] == {"device:CPU:0": 16, "device:CPU:1": 16}
    assert sum(found["StatefulPartitionedCall"].values()) == 32  # none unplaced

    plain = build_alexnet(num_classes=10, image_size=67)
    plain_graph = tf.function(plain).get_concrete_function(tf.TensorSpec((2, 67, 67, 3))).graph
    assert set(_op_devices(plain_graph, {"Conv2D"})["Conv2D"]) == {""}  # not pinned


def test_two_step_fit_on_generated_data():
    model = build_alexnet(num_classes=4, image_size=67, seed=0)
    model.compile(PaperSGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = images(8), np.arange(8) % 4
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.optimizer.iterations.numpy() == 2
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_a_saved_model_file_loads_in_safe_mode_with_the_same_outputs(tmp_path):
    model = build_alexnet(num_classes=10, image_size=67)
    path = tmp_path / "alexnet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = images(2)
    np.testing.assert_allclose(
        loaded(x, training=False).numpy(), model(x, training=False).numpy(), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lrn": "x"}, "lrn='x'"),
        ({"image_size": 66}, "image_size=66"),
        ({"num_classes": 0}, "num_classes=0"),
        ({"init": "xavier"}, "init='xavier'"),
        ({"groups": 3}, "groups=3"),
        ({"pool_size": 4}, "pool_size=4"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"lrn": "caffe", "tower_devices": TWO_CPUS}, "lrn='caffe'"),
        ({"tower_devices": ("/CPU:0",)}, "tower_devices"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build_alexnet(**kwargs)


def test_copy_weights_names_a_mismatched_layer():
    with pytest.raises(ValueError, match="fc8"):
        copy_weights(
            build_alexnet(num_classes=10, image_size=67),
            build_alexnet(num_classes=5, image_size=67),
        )


@pytest.mark.parametrize("towers", [None, TWO_CPUS], ids=["plain", "towers"])
def test_a_tf_checkpoint_of_the_model_alone_holds_and_restores_every_weight(tmp_path, towers):
    model = build_alexnet(num_classes=5, image_size=67, seed=1, tower_devices=towers)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    saved = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    assert len([k for k in saved if k.startswith("model/")]) == len(model.weights)
    other = build_alexnet(num_classes=5, image_size=67, seed=2, tower_devices=towers)
    tf.train.Checkpoint(model=other).read(path).assert_existing_objects_matched()
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
