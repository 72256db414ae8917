"""`--augment_on device`: the host hands over uint8 crops and indices, the training step
augments them; the model sees what `--augment_on host` gives it.

The host path (`transforms.train_transform`, held to NumPy references in
test_input_pipeline.py and test_augmentation_speed_path.py) is the reference here.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from augment_places import host_and_device, max_difference
from imagefiles import image_folder

from alexnet_tf import build_alexnet
from alexnet_tf.config import DataConfig
from alexnet_tf.data import device_augment, image_ops, pipeline
from alexnet_tf.data.inputs import prepare_inputs
from alexnet_tf.distribute.strategies import make_placement
from alexnet_tf.errors import UserError
from alexnet_tf.model.optimizer import PaperSGD
from alexnet_tf.training.steps import make_input_step, make_train_step

S, R = 67, 76
EXACT = 1e-4  # float rounding of the normalised values (a few units in the last place)


@pytest.fixture(scope="module")
def exact_data(tmp_path_factory):
    """10 train images whose shorter side is already --resize: no resampling, so the
    uint8 crop the host hands over is the host path's crop exactly."""
    tmp = tmp_path_factory.mktemp("devaug_exact")
    root = image_folder(tmp / "d", ("ant", "bee"), splits={"train": 5, "val": 1}, size=(R, 90))
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=S, resize=R, seed=3)
    return cfg, prepare_inputs(cfg, str(tmp / "run"))


@pytest.fixture(scope="module")
def resized_data(tmp_path_factory):
    """40x52 images: the host must scale each crop's window, and rounds it to uint8."""
    tmp = tmp_path_factory.mktemp("devaug_resized")
    root = image_folder(tmp / "d", ("ant", "bee"), splits={"train": 4, "val": 1}, size=(40, 52))
    cfg = DataConfig(
        dataset="folder", data_dir=root, image_size=S, resize=R, seed=5, normalize="paper"
    )
    return cfg, prepare_inputs(cfg, str(tmp / "run"))


@pytest.mark.parametrize("strategy", ["one_device", "mirrored", "towers"])
def test_the_model_sees_the_host_paths_input_under_each_strategy(exact_data, strategy):
    # mirrored_towers needs 4 devices: four_devices.py runs the same check there.
    cfg, inputs = exact_data
    host, device = host_and_device(
        make_placement(strategy).strategy, cfg, inputs.train, inputs.stats
    )
    assert len(host) == 3  # 10 images in batches of 4: 4, 4, 2
    assert max_difference(host, device) < EXACT


@pytest.mark.parametrize(
    "change",
    [
        {"mean": "channel", "channel_order": "bgr"},
        {"fused_crop": False, "normalize": "paper", "pca_std": 0.3},
    ],
    ids=["channel_mean_bgr", "unfused_paper"],
)
def test_the_other_settings_give_the_host_paths_input(exact_data, change):
    cfg, inputs = exact_data
    cfg = dataclasses.replace(cfg, **change)
    host, device = host_and_device(tf.distribute.get_strategy(), cfg, inputs.train, inputs.stats)
    assert max_difference(host, device) < EXACT


def test_a_resized_window_is_rounded_to_the_nearest_grey_level(resized_data):
    # --normalize paper: the inputs are in grey levels (minus the mean), so the uint8
    # handover may move each value by at most half a level from the host path's.
    cfg, inputs = resized_data
    host, device = host_and_device(
        tf.distribute.get_strategy(), cfg, inputs.train, inputs.stats, epoch=2
    )
    worst = max_difference(host, device)
    assert 0.05 < worst <= 0.5 + 1e-3, worst  # rounded, and by no more than half a level


def test_a_window_at_the_crops_size_is_handed_on_untouched_and_others_rounded():
    rng = np.random.default_rng(0)
    window = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    same = image_ops.resize_to_uint8(tf.constant(window), S)
    assert same.dtype == tf.uint8
    np.testing.assert_array_equal(same.numpy(), window)
    # A window of another size: PIL-free reference, TF's bilinear resize rounded by NumPy.
    bigger = rng.integers(0, 256, (S + 9, S + 4, 3), dtype=np.uint8)
    expected = np.clip(np.round(tf.image.resize(bigger, [S, S]).numpy()), 0, 255)
    scaled = image_ops.resize_to_uint8(tf.constant(bigger), S)
    np.testing.assert_array_equal(scaled.numpy(), expected.astype(np.uint8))
    # A float crop (the whole-image path) is rounded, not passed on as float.
    rounded = image_ops.resize_to_uint8(tf.constant(window + 0.4, tf.float32), S)
    np.testing.assert_array_equal(rounded.numpy(), window)


def test_the_host_hands_over_uint8_crops_and_indices(exact_data):
    cfg, inputs = exact_data
    cfg = dataclasses.replace(cfg, augment_on="device")
    batches = list(
        pipeline.build_dataset(cfg, inputs.train, training=True, batch_size=4, stats=inputs.stats)
    )
    (images, index), labels = batches[0]
    assert images.dtype == tf.uint8 and images.shape == (4, S, S, 3)
    assert index.dtype == tf.int64 and labels.dtype == tf.int32
    seen = np.concatenate([i.numpy() for (_, i), _ in batches])
    order = pipeline.epoch_order(inputs.train.num_examples, cfg.seed, 0)
    np.testing.assert_array_equal(seen, order)  # the file indices, in the epoch's order


@pytest.mark.parametrize("crops", [1, 10])
def test_evaluation_stays_on_the_host(exact_data, crops):
    cfg, inputs = exact_data
    kw = {"training": False, "batch_size": 4, "stats": inputs.stats, "crops": crops}
    host = list(pipeline.build_dataset(cfg, inputs.val, **kw))
    device = list(
        pipeline.build_dataset(dataclasses.replace(cfg, augment_on="device"), inputs.val, **kw)
    )
    assert len(device) == len(host) == 1
    (x, _), (want, _) = device[0], host[0]
    assert x.dtype == tf.float32 and x.shape == (2, *([10] if crops == 10 else []), S, S, 3)
    np.testing.assert_array_equal(x, want)


def test_a_step_compiled_by_xla_trains_on_the_same_draws(exact_data):
    # XLA's stateless random ops draw other numbers from a key than TF's kernels: the
    # draws must come from outside the compiled part, as the host's crop offsets do.
    cfg, inputs = exact_data
    cfg = dataclasses.replace(cfg, augment_on="device")
    batches = pipeline.build_dataset(
        cfg, inputs.train, training=True, batch_size=4, stats=inputs.stats, epoch=1
    )
    images, labels = next(iter(batches))
    augment = device_augment.make_augment(cfg, inputs.stats)
    kernels = {}
    for jit in (False, True):
        model = build_alexnet(2, S, seed=0, dropout=0.0)
        optimizer = PaperSGD(learning_rate=0.01)
        optimizer.build(model.trainable_variables)
        step = make_train_step(
            model, optimizer, tf.distribute.get_strategy(), 4, jit_compile=jit, augment=augment
        )
        step(images, labels, tf.constant(1, tf.int64))
        kernels[jit] = model.get_layer("conv1").get_weights()[0]  # its update sees the input
    change = np.abs(
        kernels[False] - build_alexnet(2, S, seed=0).get_layer("conv1").get_weights()[0]
    )
    np.testing.assert_allclose(kernels[True], kernels[False], rtol=0, atol=1e-3 * change.max())


def test_the_draws_run_on_the_cpu_and_the_pixels_on_the_replicas_device(exact_data):
    # TF may pick another stateless generator on another device: the draws stay on the
    # CPU whose kernels drew the host's crops; the per-pixel ops follow the replica.
    cfg, inputs = exact_data
    cfg = dataclasses.replace(cfg, augment_on="device")
    strategy = make_placement("mirrored").strategy
    step = make_input_step(strategy, device_augment.make_augment(cfg, inputs.stats))
    batch = pipeline.build_dataset(
        cfg, inputs.train, training=True, batch_size=4, stats=inputs.stats
    )
    images, _ = next(iter(strategy.experimental_distribute_dataset(batch)))
    graph = step.get_concrete_function(images, tf.constant(0, tf.int64)).graph
    placed = {
        (op.type, op.name.startswith("replica_1/")): op.device for op in graph.get_operations()
    }
    pixels = {  # the per-pixel part: one call of the XLA-compiled function per replica
        op.name.startswith("replica_1/"): op.device
        for op in graph.get_operations()
        if "PartitionedCall" in op.type and "_compiled" in op.get_attr("f").name
    }
    for replica, device in ((False, "CPU:0"), (True, "CPU:1")):
        assert placed["StatelessWhile", replica].endswith("/device:CPU:0")  # the draws
        assert pixels[replica].endswith(f"/device:{device}")  # flip, mean crops, lighting


def test_the_draws_are_each_examples_own_keys_draws():
    # Reference: the per-example key as image_ops composes it (two fold-ins), split in 3.
    seed, epoch, index = 11, 4, np.array([0, 7, 123456789, 3], np.int64)
    pca = (image_ops.PCA_EIGVAL, image_ops.PCA_EIGVEC)
    offsets, mirror, shift = device_augment.example_draws(seed, epoch, index, R, S, 0.1, pca)
    for i, example in enumerate(index):
        crop, flip, light = tf.unstack(
            image_ops.split_key(image_ops.example_key(seed, epoch, example), 3)
        )
        np.testing.assert_array_equal(offsets[i], image_ops.random_offset(crop, R, S))
        assert bool(mirror[i]) == bool(image_ops.random_flip(flip))
        np.testing.assert_array_equal(shift[i], image_ops.pca_shift(light, 0.1, *pca))


@pytest.mark.parametrize("mean_kind", ["pixel", "channel"])
def test_flip_mean_and_scale_equal_numpy_on_a_hand_made_batch(mean_kind):
    rng = np.random.default_rng(0)
    size, extent = 5, 8
    images = rng.integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    offsets = np.array([[0, 0], [3, 1], [2, 3]], np.int32)
    mirror = np.array([False, True, True])
    shift = rng.normal(0, 5, (3, 3)).astype(np.float32)
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    mean_image = rng.uniform(0, 255, (extent, extent, 3)).astype(np.float32)
    expected = []
    for b in range(3):
        y, x = offsets[b]
        image = images[b].astype(np.float64)
        if mean_kind == "pixel":
            mean = mean_image[y : y + size, x : x + size].astype(np.float64)
        else:
            mean = np.array([100.0, 120.0, 90.0])
        if mirror[b]:  # the image and its mean crop mirrored together
            image = image[:, ::-1]
            mean = mean[:, ::-1] if mean.ndim == 3 else mean
        expected.append((image + shift[b] - mean) * scale)
    if mean_kind == "pixel":
        pair = tf.constant(np.stack([mean_image, mean_image[:, ::-1]]))
        mean = device_augment.mean_crops(pair, tf.constant(offsets), tf.constant(mirror), size)
    else:
        mean = tf.constant([100.0, 120.0, 90.0])
    got = device_augment.apply_draws(images, tf.constant(mirror), shift, mean, scale)
    np.testing.assert_allclose(got.numpy(), np.stack(expected), rtol=1e-6, atol=1e-4)


def test_auto_is_the_host_without_a_gpu_and_a_wrong_place_is_refused():
    assert not tf.config.list_physical_devices("GPU")  # this machine: CPU only
    assert device_augment.resolve("auto") == "host"
    assert device_augment.resolve("device") == "device"
    assert not device_augment.on_device(DataConfig())  # the default keeps today's path
    with pytest.raises(UserError, match="--augment_on 'gpu'"):
        device_augment.resolve("gpu")
