"""What is done to each image: the paper's training augmentation (random crop, flip, PCA
lighting, mean subtraction) and evaluation's centre or 10 crops, as `fn(contents, index)`.

Built on `image_ops`' pure functions; `pipeline` maps them over a split.
"""

import json

import numpy as np
import tensorflow as tf

from alexnet_tf.data import image_ops, publisher_ops
from alexnet_tf.errors import UserError


def pca_constants(cfg):
    """The PCA lighting's (eigenvalues, eigenvectors): `cfg.pca_file`'s, else the paper's."""
    if not cfg.pca_file:
        return image_ops.PCA_EIGVAL, image_ops.PCA_EIGVEC
    try:
        with open(cfg.pca_file, encoding="utf-8") as f:
            pca = json.load(f)
        return tuple(pca["pca_eigval"]), tuple(map(tuple, pca["pca_eigvec"]))
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"--pca_file {cfg.pca_file} is not a data_stats JSON: {error}") from None


def model_order(image, cfg):
    """`image` (..., 3), normalised in RGB order, in the channel order the model takes
    (`cfg.channel_order`: a model imported from Caffe takes BGR)."""
    if cfg.channel_order == "rgb":
        return image
    if cfg.channel_order == "bgr":
        return tf.reverse(image, [-1])
    raise UserError(f"channel order {cfg.channel_order!r} is not one of rgb, bgr")


def train_transform(cfg, stats, epoch, raw_side=None):
    """`fn(contents, index)` -> one augmented, normalised training image (S, S, 3).

    `contents` are the encoded bytes (`raw_side`: a raw square's pixels, `image_ops.decoders`),
    `index` the example's index (keys its randomness).
    The paper's steps composed from `image_ops` with as few ops per image as give the
    same values bit for bit (tf.data runs every op of this once per image, and each op
    costs microseconds of overhead on top of its work): the epoch's half of the key drawn
    once, the mean crop and its mirror as one slice of a (mean, mirrored mean) pair, the
    row-scaled constants built here. `tests/test_augmentation_speed_path.py` holds it to
    the plain composition (`example_key`, `crop` then `flip`, `light_and_normalize`).
    """
    size, resize, antialias = cfg.image_size, cfg.resize, cfg.antialias_below
    decode, decode_window = image_ops.decoders(raw_side)
    pca = pca_constants(cfg)
    epoch_part = image_ops.epoch_key_part(cfg.seed, epoch)
    mean = stats.mean(cfg.mean)
    scale = tf.constant(stats.scale(cfg.normalize), tf.float32)
    if cfg.mean == "pixel":
        mean = np.stack([mean, mean[:, ::-1]])  # (2, R, R, 3): as is and mirrored
    mean = tf.constant(mean, tf.float32)

    def fn(contents, index):
        key = tf.stack([epoch_part, tf.cast(index, tf.int64)])  # = example_key(seed, epoch, index)
        key_crop, key_flip, key_light = tf.unstack(image_ops.split_key(key, 3))
        offset = image_ops.random_offset(key_crop, resize, size)
        mirror = image_ops.random_flip(key_flip)
        if cfg.fused_crop:  # flip the small uint8 window, then scale it
            window = decode_window(contents, resize, size, offset)
            image = image_ops.resize_to(image_ops.flip(window, mirror), size, antialias)
        else:
            image = image_ops.resize_shorter(decode(contents), resize, antialias)
            image = image_ops.crop(image_ops.center_crop(image, resize), offset, size)
            image = image_ops.flip(image, mirror)
        shift = image_ops.pca_shift(key_light, cfg.pca_std, *pca)
        mean_crop = (
            image_ops.crop_mirrored(mean, offset, size, mirror) if mean.shape.rank == 4 else mean
        )
        image = image_ops.light_and_normalize(image, shift, mean_crop, scale)
        return tf.ensure_shape(model_order(image, cfg), [size, size, 3])

    return fn


def train_crop_transform(cfg, epoch, raw_side=None):
    """The host's half of `train_transform` when the device augments (`device_augment`):
    `fn(contents, index)` -> (the example's crop, not flipped, as uint8 (S, S, 3), index).

    The crop is `train_transform`'s, at the same offset from the same key; flip, PCA
    lighting, mean, scale and channel order are left to `device_augment.augment`, which
    draws them again from (seed, epoch, index). A crop whose window had to be resized is
    rounded to the nearest grey level here (at most 0.5 off `train_transform`'s); a crop
    of an image already at `cfg.resize` is handed over exactly.
    """
    size, resize, antialias = cfg.image_size, cfg.resize, cfg.antialias_below
    decode, decode_window = image_ops.decoders(raw_side)
    epoch_part = image_ops.epoch_key_part(cfg.seed, epoch)

    def fn(contents, index):
        index = tf.cast(index, tf.int64)
        key_crop = image_ops.split_key(tf.stack([epoch_part, index]), 3)[0]
        offset = image_ops.random_offset(key_crop, resize, size)
        if cfg.fused_crop:
            window = decode_window(contents, resize, size, offset)
        else:
            image = image_ops.resize_shorter(decode(contents), resize, antialias)
            window = image_ops.crop(image_ops.center_crop(image, resize), offset, size)
        image = image_ops.resize_to_uint8(window, size, antialias)
        return tf.ensure_shape(image, [size, size, 3]), index

    return fn


def eval_transform(cfg, stats, crops=1, raw_side=None):
    """`fn(contents, index)` -> the centre crop (S, S, 3) or the 10 crops (10, S, S, 3).

    Deterministic (`index` is ignored); also what an exported serving graph maps over
    encoded images, so serving preprocesses exactly as evaluation does (`raw_side`: raw
    squares, as `train_transform`). With
    `cfg.eval_preprocessing` "caffe" or "torchvision": `publisher_eval_transform`.
    """
    if cfg.eval_preprocessing != "ours":
        return publisher_eval_transform(cfg, stats, crops, raw_side)
    size, resize, antialias = cfg.image_size, cfg.resize, cfg.antialias_below
    decode, decode_window = image_ops.decoders(raw_side)
    scale = tf.constant(stats.scale(cfg.normalize), tf.float32)
    if crops == 1:
        mean = tf.constant(stats.center_mean(cfg.mean, size), tf.float32)
        offset = [(resize - size) // 2] * 2

        def center(contents, index):
            del index
            if cfg.fused_crop:
                window = decode_window(contents, resize, size, offset)
                image = image_ops.resize_to(window, size, antialias)
            else:
                image = image_ops.resize_shorter(decode(contents), resize, antialias)
                image = image_ops.center_crop(image_ops.center_crop(image, resize), size)
            image = model_order(image_ops.normalize(image, mean, scale), cfg)
            return tf.ensure_shape(image, [size, size, 3])

        return center
    mean = stats.mean(cfg.mean)
    if cfg.mean == "pixel":
        mean = image_ops.ten_crops(tf.constant(mean, tf.float32), size)  # (10, S, S, 3)
    mean = tf.constant(mean, tf.float32)

    def ten(contents, index):
        del index
        image = image_ops.resize_shorter(decode(contents), resize, antialias)
        image = image_ops.ten_crops(image_ops.center_crop(image, resize), size)
        image = model_order(image_ops.normalize(image, mean, scale), cfg)
        return tf.ensure_shape(image, [10, size, size, 3])

    return ten


def publisher_eval_transform(cfg, stats, crops=1, raw_side=None):
    """`eval_transform` as the weights' publisher scored them (`publisher_ops`): the
    centre crop (S, S, 3) or the 10 crops (10, S, S, 3) of Caffe's `cfg.resize` square
    warp or of torchvision's shorter side scaled to `cfg.resize`, then the run's
    per-channel mean and scale (its convention) and channel order.
    """
    family = cfg.eval_preprocessing
    if family not in publisher_ops.FAMILIES:
        raise UserError(f"preprocessing {family!r} is not one of ours, caffe, torchvision")
    if cfg.mean != "channel":
        raise UserError(
            f"{family}'s preprocessing subtracts a mean per channel; the run's mean is {cfg.mean}"
        )
    size, resize = cfg.image_size, cfg.resize
    mean = tf.constant(stats.mean("channel"), tf.float32)
    scale = tf.constant(stats.scale(cfg.normalize), tf.float32)
    shape = [size, size, 3] if crops == 1 else [10, size, size, 3]

    def fn(contents, index):
        del index
        if raw_side is None:
            image = publisher_ops.decode_accurate(contents)
        else:
            image = image_ops.raw_decode(contents, raw_side)
        if family == "caffe":
            image = publisher_ops.warp(image, resize)
            image = (
                image_ops.center_crop(image, size)
                if crops == 1
                else image_ops.ten_crops(image, size)
            )
        else:
            image = publisher_ops.resize_shorter_pil(image, resize)
            image = (
                publisher_ops.torchvision_center_crop(image, size)
                if crops == 1
                else publisher_ops.torchvision_ten_crops(image, size)
            )
        image = model_order(image_ops.normalize(image, mean, scale), cfg)
        return tf.ensure_shape(image, shape)

    return fn
