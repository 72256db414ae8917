"""Training augmentation on the accelerator (`--augment_on device`): the per-pixel half of
`transforms.train_transform`, on a whole batch, inside the training step.

With it the input pipeline stops at the crop (`transforms.train_crop_transform`): it
decodes each example's window, crops it and hands over uint8 crops with the examples'
indices, batched as `((images uint8 (B, S, S, 3), index int64 (B,)), labels)`. The
training step (`training.steps`) then calls `augment(images, index, epoch)` on the
replica's device before the model: float conversion, flip, mean, PCA lighting, scale and
channel order, as batched ops. The flip, the offset of the mean crop and the lighting
are drawn again from the same stateless keys of (seed, epoch, index) as the host draws
them (`example_draws`), so an example's augmentation is the same wherever it runs and a
resumed run replays it exactly.

The key draws are one small loop over the batch's examples (`tf.map_fn`, a few scalar
ops each, no pixels), on the CPU (`Augment`): TF's stateless random ops take one key at
a time and have no vectorised form (`tf.vectorized_map` refuses
`StatelessRandomGetKeyCounter`). Every per-pixel op is one batched op on the replica's
device, and XLA compiles them into one pass (`Augment.apply`).
"""

import numpy as np
import tensorflow as tf

from alexnet_tf.data import image_ops, transforms
from alexnet_tf.errors import UserError

PLACES = ("host", "device", "auto")


def resolve(augment_on):
    """ "host" or "device" for the flag's value; "auto": the device when TF sees a GPU."""
    if augment_on not in PLACES:
        raise UserError(f"--augment_on {augment_on!r} is not one of {', '.join(PLACES)}")
    if augment_on == "auto":
        return "device" if tf.config.list_physical_devices("GPU") else "host"
    return augment_on


def on_device(cfg):
    """Does `cfg` (a `DataConfig`) augment on the device?"""
    return resolve(cfg.augment_on) == "device"


def example_draws(seed, epoch, index, resize, size, pca_std, pca):
    """Each example's crop offset int32 (B, 2), mirror bool (B,) and PCA lighting shift
    float32 (B, 3): the draws `train_transform` makes from `example_key(seed, epoch, i)`
    for every `i` of `index` (B,)."""
    index = tf.cast(index, tf.int64)
    epoch_part = image_ops.epoch_key_part(seed, epoch)
    keys = tf.stack([tf.fill(tf.shape(index), epoch_part), index], axis=1)

    def draws(key):
        key_crop, key_flip, key_light = tf.unstack(image_ops.split_key(key, 3))
        return (
            image_ops.random_offset(key_crop, resize, size),
            image_ops.random_flip(key_flip),
            image_ops.pca_shift(key_light, pca_std, *pca),
        )

    signature = (
        tf.TensorSpec([2], tf.int32),
        tf.TensorSpec([], tf.bool),
        tf.TensorSpec([3], tf.float32),
    )
    return tf.map_fn(draws, keys, fn_output_signature=signature)


def mean_crops(pair, offsets, mirror, size):
    """Each example's crop of the mean image, mirrored with it: float32 (B, S, S, 3).

    `pair` is the mean image and its mirror (2, R, R, 3); one gather copies every crop
    (as `image_ops.crop_mirrored` does for one: the mirror of a crop is the crop of the
    mirror at the mirrored x offset)."""
    extent = tf.shape(pair)[1]
    x = tf.where(mirror, extent - size - offsets[:, 1], offsets[:, 1])
    steps = tf.range(size)
    rows = offsets[:, :1] + steps  # (B, S)
    cols = x[:, None] + steps  # (B, S)
    which = tf.cast(mirror, tf.int32)[:, None, None]
    flat = (which * extent + rows[:, :, None]) * extent + cols[:, None, :]  # (B, S, S)
    return tf.gather(tf.reshape(pair, [-1, 3]), flat)


def apply_draws(images, mirror, shift, mean, scale):
    """`images` uint8 (B, S, S, 3) flipped where `mirror`, lit by `shift` (B, 3), minus
    `mean` ((3,) or each example's crop (B, S, S, 3)), times `scale` (3,): float32, in
    RGB order, with `image_ops.light_and_normalize`'s arithmetic.

    The flip moves uint8 (a quarter of the bytes), and the rest runs over rows of S*3
    values, as `light_and_normalize` does (a 3-vector broadcast over the last axis is
    several times slower): together 30 % less time than the plain form on a CPU."""
    images = tf.where(mirror[:, None, None, None], tf.reverse(images, axis=[2]), images)
    shape = tf.shape(images)
    width = shape[2]
    rows = tf.reshape(tf.cast(images, tf.float32), [shape[0], shape[1], width * 3])
    scale = tf.convert_to_tensor(scale, tf.float32)
    shift = tf.convert_to_tensor(shift, tf.float32)
    if mean.shape.rank == 1:
        bias = tf.tile((shift - mean) * scale, [1, width])[:, None, :]
        out = rows * tf.tile(scale, [width]) + bias
    else:
        mean = tf.reshape(mean, tf.shape(rows))
        out = (rows + tf.tile(shift, [1, width])[:, None, :] - mean) * tf.tile(scale, [width])
    return tf.reshape(out, shape)


def make_augment(cfg, stats):
    """An `Augment` of `cfg`: `augment(crops, index, epoch)` -> the model's input float32
    (B, S, S, 3) from the host's uint8 crops (`transforms.train_crop_transform`) and the
    examples' indices: equal, to float rounding, to `train_transform`'s images of the
    same examples."""
    return Augment(cfg, stats)


class Augment:
    """The device's augmentation in two parts: `draws(index, epoch)`, the examples'
    stateless draws, and `apply(crops, draws)`, the batched per-pixel work.

    The draws run on the CPU, with the kernels that drew the host's crop offsets: TF's
    stateless random ops pick their generator per device ("auto_select": "running the
    same TF program on different devices may result in different random numbers"), and
    XLA's draw other numbers from the same key, so a step compiled by XLA
    (`--jit_compile`) takes them from outside its compiled part (`training.steps`).
    They are a few scalars per example; the pixels stay on the replica's device.
    """

    def __init__(self, cfg, stats):
        self.cfg, self.size = cfg, cfg.image_size
        self.pca = transforms.pca_constants(cfg)
        self.scale = tf.constant(stats.scale(cfg.normalize), tf.float32)
        mean = stats.mean(cfg.mean)
        if cfg.mean == "pixel":
            mean = np.stack([mean, mean[:, ::-1]])  # (2, R, R, 3): as is and mirrored
        self.mean = tf.constant(mean, tf.float32)
        transforms.model_order(tf.zeros([3]), cfg)  # an unknown channel order fails here

    def draws(self, index, epoch):
        """(offsets, mirror, shift) of the examples `index` in `epoch` (`example_draws`)."""
        cfg = self.cfg
        with tf.device("/CPU:0"):  # the host's generator, whatever the replica's device
            return example_draws(
                cfg.seed, epoch, index, cfg.resize, self.size, cfg.pca_std, self.pca
            )

    def apply(self, crops, draws):
        """The model's input from the uint8 `crops` and their `draws`.

        Compiled by XLA: it fuses the flip, the mean crop's gather, the lighting and the
        scaling into one pass over the pixels, where TF's kernels make one pass each (on
        a CPU 2.2 ms instead of 20.6 for a batch of 32 at 227 px, the same values). A
        partial last batch compiles once more."""
        return self._compiled(crops, draws)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def _compiled(self, crops, draws):
        offsets, mirror, shift = draws
        mean = self.mean
        if mean.shape.rank == 4:
            mean = mean_crops(mean, offsets, mirror, self.size)
        images = apply_draws(crops, mirror, shift, mean, self.scale)
        images = transforms.model_order(images, self.cfg)
        return tf.ensure_shape(images, [None, self.size, self.size, 3])

    def __call__(self, crops, index, epoch):
        return self.apply(crops, self.draws(index, epoch))
