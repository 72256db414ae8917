"""TensorBoard dashboards of a training run: `tensorboard --logdir MODEL_DIR`.

| tag | where | what |
|---|---|---|
| `loss`, `top1`, `top5` | train/, val/ | cross-entropy, accuracy (train: since the last point) |
| `learning_rate`, `images_per_sec` | train/ | the optimizer's rate; training throughput |
| `inputs` | train/ | a grid of augmented training crops, as the net sees them |
| `conv1_filters/tower0`, `/tower1` | train/ | conv1's 48 filters of each tower (paper Fig. 3) |
| hparams | root | the run's configuration and, as metrics, val/ loss, top-1, top-5 |

Only the chief writes; other workers get writers that do nothing.
"""

import os

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api


def in_rgb(array, channel_order, axis=-1):
    """`array` with its colour `axis` in RGB order. A model imported from Caffe takes BGR:
    its inputs and conv1's kernels are reversed back, so a picture shows red as red."""
    if channel_order == "bgr":
        return np.flip(array, axis)
    if channel_order == "rgb":
        return array
    raise ValueError(f"channel order {channel_order!r} is not one of rgb, bgr")


def filter_grid(kernel, columns=8, zoom=3):
    """`(kh, kw, 3, N)` conv filters as one RGB image `(1, H, W, 3)` in [0, 1].

    Each filter is scaled to [0, 1] on its own, as the paper's Figure 3 shows them;
    a one-pixel white border separates them.
    """
    kernel = np.asarray(kernel, np.float32)
    kh, kw, _, count = kernel.shape
    filters = np.transpose(kernel, (3, 0, 1, 2))  # (N, kh, kw, 3)
    low = filters.min(axis=(1, 2, 3), keepdims=True)
    high = filters.max(axis=(1, 2, 3), keepdims=True)
    filters = (filters - low) / np.maximum(high - low, 1e-8)
    return tile(filters, columns, zoom)[None]


def image_grid(images, mean, std, columns=8):
    """Normalised network inputs `(B, S, S, 3)` back to viewable RGB in [0, 1]."""
    images = np.asarray(images, np.float32) * std + mean
    return tile(np.clip(images / 255.0, 0.0, 1.0), columns)[None]


def tile(images, columns, zoom=1):
    """`images` (N, h, w, c) as one grid image (H, W, c), a one-pixel white border between
    them, each pixel repeated `zoom` x `zoom` times."""
    count, h, w, c = images.shape
    rows = -(-count // columns)
    grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = (
            image
        )
    return grid.repeat(zoom, axis=0).repeat(zoom, axis=1)


class Summaries:
    """The run's event files: `train/` and `val/` under the model dir."""

    def __init__(self, model_dir, enabled=True, channel_order="rgb"):
        self.channel_order = channel_order  # the model's: pictures are turned back to RGB
        self.enabled = enabled
        if enabled:
            self.train = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
            self.val = tf.summary.create_file_writer(os.path.join(model_dir, "val"))
            self.root = tf.summary.create_file_writer(model_dir)
        else:
            self.train = self.val = self.root = tf.summary.create_noop_writer()

    def scalars(self, writer, step, values):
        with writer.as_default(step=int(step)):
            for name, value in values.items():
                tf.summary.scalar(name, float(value))

    def inputs(self, step, images, mean, std):
        if not self.enabled:
            return
        with self.train.as_default(step=int(step)):
            rgb = in_rgb(images[:16], self.channel_order)
            tf.summary.image("inputs", image_grid(rgb, mean, std), max_outputs=1)

    def conv1_filters(self, step, kernel):
        """conv1's filters, one grid per tower (the first and second half of the maps)."""
        if not self.enabled:
            return
        kernel, half = in_rgb(kernel, self.channel_order, axis=2), kernel.shape[-1] // 2
        with self.train.as_default(step=int(step)):
            for tower, part in enumerate((kernel[..., :half], kernel[..., half:])):
                tf.summary.image(f"conv1_filters/tower{tower}", filter_grid(part), max_outputs=1)

    def hparams(self, values):
        """The run's settings as one HParams trial, with the validation loss, top-1 and
        top-5 (the val/ scalars) as its metric columns."""
        if not self.enabled:
            return
        clean = {
            k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in values.items()
        }
        metrics = [
            hparams_api.Metric(tag, group="val", display_name=f"val {name}")
            for tag, name in (("top1", "top-1"), ("top5", "top-5"), ("loss", "loss"))
        ]
        with self.root.as_default():
            hparams_api.hparams_config(
                hparams=[hparams_api.HParam(name) for name in clean], metrics=metrics
            )
            hparams_api.hparams(clean)

    def flush(self):
        for writer in (self.train, self.val, self.root):
            writer.flush()

    def close(self):
        """Flushes and closes the event files (the writers do nothing after)."""
        for writer in (self.train, self.val, self.root):
            writer.close()
