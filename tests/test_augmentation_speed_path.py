"""The fast training transform gives, bit for bit, the images of the plain composition.

`transforms.train_transform` draws the epoch's half of each key once, slices the mean crop
and its mirror from a (mean, mirrored mean) pair, and so on, to run fewer ops per image.
`reference_transform` below is the transform as it was before (verbatim, built only from
`image_ops`' plain functions): same (seed, epoch, index) must give the same image.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from imagefiles import encode, image_folder, pattern

from alexnet_tf.config import DataConfig
from alexnet_tf.data import image_ops, pipeline, statistics, transforms
from alexnet_tf.data.layouts import load_source

S, R = 15, 20  # 15: not a power of two, so resizes by in/S round (see IMAGES)


def reference_transform(cfg, stats, epoch):
    """The per-image training transform as first written: one image_ops step at a time."""
    size, resize, antialias = cfg.image_size, cfg.resize, cfg.antialias_below
    pca = transforms.pca_constants(cfg)
    mean = tf.constant(stats.mean(cfg.mean), tf.float32)
    scale = tf.constant(stats.scale(cfg.normalize), tf.float32)
    pixel_mean = cfg.mean == "pixel"

    def fn(contents, index):
        key_crop, key_flip, key_light = tf.unstack(
            image_ops.split_key(image_ops.example_key(cfg.seed, epoch, index), 3)
        )
        offset = image_ops.random_offset(key_crop, resize, size)
        mirror = image_ops.random_flip(key_flip)
        if cfg.fused_crop:
            window = image_ops.decode_window(contents, resize, size, offset)
            image = image_ops.resize_to(image_ops.flip(window, mirror), size, antialias)
        else:
            image = image_ops.resize_shorter(image_ops.decode(contents), resize, antialias)
            image = image_ops.crop(image_ops.center_crop(image, resize), offset, size)
            image = image_ops.flip(image, mirror)
        shift = image_ops.pca_shift(key_light, cfg.pca_std, *pca)
        mean_crop = (
            image_ops.flip(image_ops.crop(mean, offset, size), mirror) if pixel_mean else mean
        )
        image = image_ops.light_and_normalize(image, shift, mean_crop, scale)
        return tf.ensure_shape(image, [size, size, 3])

    return fn


def stats():
    """Input statistics with an asymmetric mean image, so a mirrored crop differs."""
    rng = np.random.default_rng(1)
    return statistics.InputStats(
        mean_image=rng.uniform(60, 180, (R, R, 3)).astype(np.float32),
        channel_mean=np.float32([120, 110, 100]),
        channel_std=np.float32([60, 55, 50]),
        pca_eigval=np.float32(image_ops.PCA_EIGVAL),
        pca_eigvec=np.float32(image_ops.PCA_EIGVEC),
        num_images=4,
        resize=R,
    )


def noise(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


IMAGES = [
    encode(pattern(24, 30, seed=0)),
    encode(pattern(30, 24, seed=9), fmt="PNG"),  # the full-decode branch
    # Textured and scaled by odd factors: there, mirroring before or after the resize
    # differs in the last bits, so the order of the two is held too.
    encode(noise(37, 45, seed=1)),
    encode(noise(41, 33, seed=2)),
]
CONFIGS = {
    "paper_default": {},
    "channel_mean_paper_scale": {"mean": "channel", "normalize": "paper"},
    "unfused_no_lighting": {"fused_crop": False, "pca_std": 0.0},
    "other_seed": {"seed": 11},
}


@pytest.mark.parametrize("mode", ["eager", "tf.data"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_fast_transform_equals_the_reference_bit_for_bit(name, mode):
    cfg = DataConfig(image_size=S, resize=R, **{"seed": 3, **CONFIGS[name]})
    epoch = 2
    fast = transforms.train_transform(cfg, stats(), epoch)
    reference = reference_transform(cfg, stats(), epoch)
    indices = np.arange(24, dtype=np.int64)
    contents = [IMAGES[i % len(IMAGES)] for i in indices]

    def run(fn):
        if mode == "eager":
            pairs = zip(contents, indices, strict=True)
            return np.stack([fn(tf.constant(c), tf.constant(i)).numpy() for c, i in pairs])
        dataset = (
            tf.data.Dataset.from_tensor_slices((contents, indices)).map(fn).batch(len(indices))
        )
        return next(iter(dataset)).numpy()

    expected, got = run(reference), run(fast)
    np.testing.assert_array_equal(got, expected)
    # The sample exercised both branches of the flip (a mirrored crop would otherwise pass).
    keys = [image_ops.split_key(image_ops.example_key(cfg.seed, epoch, i), 3)[1] for i in indices]
    mirrored = sum(bool(image_ops.random_flip(k)) for k in keys)
    assert 0 < mirrored < len(indices)


def test_epoch_key_part_is_the_first_half_of_every_example_key():
    for seed, epoch in ((0, 0), (5, 3), (2**31 - 1, 89)):
        part = image_ops.epoch_key_part(seed, epoch).numpy()
        for index in (0, 1, 1_281_166):
            np.testing.assert_array_equal(
                image_ops.example_key(seed, epoch, index).numpy(), [part, index]
            )


def test_crop_mirrored_is_crop_then_flip():
    image = pattern(12, 14).astype(np.float32)
    pair = tf.constant(np.stack([image, image[:, ::-1]]))
    for offset in ([0, 0], [3, 5], [4, 6]):
        for mirror in (False, True):
            got = image_ops.crop_mirrored(pair, tf.constant(offset), 8, tf.constant(mirror))
            want = image_ops.flip(image_ops.crop(image, tf.constant(offset), 8), mirror)
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_pipeline_batches_are_the_reference_images(tmp_path):
    root = image_folder(tmp_path / "d", per_class=3, size=(24, 30))
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=S, resize=R, seed=5)
    source = load_source(cfg, "train")
    indexed = dataclasses.replace(source, labels=np.arange(source.num_examples, dtype=np.int32))
    reference = reference_transform(cfg, stats(), 1)
    batches = pipeline.build_dataset(
        cfg, indexed, training=True, batch_size=4, stats=stats(), epoch=1
    )
    for images, labels in batches:
        for image, index in zip(images.numpy(), labels.numpy(), strict=True):
            contents = tf.io.read_file(source.paths[index])
            want = reference(contents, tf.constant(index, tf.int64)).numpy()
            np.testing.assert_array_equal(image, want)
