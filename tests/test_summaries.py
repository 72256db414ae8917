"""TensorBoard's pictures show the colours the model saw. A model that takes BGR (one
imported from Caffe) gets its input grid and conv1's kernels turned back to RGB, so red
is drawn red; the fine-tuning test in test_import_weights.py checks the kernels of a real
run from Caffe weights."""

import numpy as np
import pytest
import tensorflow as tf
from imagefiles import encode

from alexnet_tf.config import DataConfig
from alexnet_tf.data.statistics import InputStats
from alexnet_tf.data.transforms import eval_transform
from alexnet_tf.training.summaries import Summaries

RED = (220, 30, 40)


def event_image(folder, tag):
    """The last image written under `tag` in `folder`'s event files: uint8 (H, W, 3)."""
    found = None
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    found = tf.io.decode_png(tf.make_ndarray(value.tensor)[2]).numpy()
    assert found is not None, tag
    return found


def stats(size):
    return InputStats(
        mean_image=np.full((size, size, 3), 110.0, np.float32),
        channel_mean=np.float32([120.0, 110.0, 100.0]),
        channel_std=np.float32([50.0, 60.0, 70.0]),
        pca_eigval=np.ones(3, np.float32),
        pca_eigvec=np.eye(3, dtype=np.float32),
        num_images=1,
        resize=size,
    )


@pytest.mark.parametrize("order", ["rgb", "bgr"])
def test_the_inputs_grid_draws_a_red_image_red_in_either_channel_order(tmp_path, order):
    picture = np.zeros((64, 64, 3), np.uint8) + np.uint8(RED)
    cfg = DataConfig(image_size=32, resize=64, mean="channel", channel_order=order)
    s = stats(64)
    image = eval_transform(cfg, s)(tf.constant(encode(picture, "PNG")), 0).numpy()
    summaries = Summaries(str(tmp_path), channel_order=order)
    summaries.inputs(1, image[None], s.channel_mean, 1.0 / s.scale(cfg.normalize))
    summaries.flush()
    grid = event_image(tmp_path / "train", "inputs")
    np.testing.assert_allclose(grid[1:33, 1:33].reshape(-1, 3), [RED] * 32 * 32, atol=1)


@pytest.mark.parametrize("order", ["rgb", "bgr"])
def test_the_conv1_grids_draw_a_red_kernel_red_in_either_channel_order(tmp_path, order):
    kernel = np.full((11, 11, 3, 96), -1.0, np.float32)
    red = 0 if order == "rgb" else 2  # where the model's red input channel is
    kernel[:, :, red, :] = 1.0
    summaries = Summaries(str(tmp_path), channel_order=order)
    summaries.conv1_filters(1, kernel)
    summaries.flush()
    for tower in (0, 1):
        grid = event_image(tmp_path / "train", f"conv1_filters/tower{tower}")
        inside = grid[3:36, 3:36].reshape(-1, 3)  # the first kernel, zoom 3, past the border
        np.testing.assert_array_equal(inside, [(255, 0, 0)] * len(inside))
