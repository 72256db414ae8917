"""torchvision's `alexnet`: Krizhevsky's later one-tower "one weird trick" net (2014).

A deviation from the paper, added so that torchvision's published weights can be
imported (docs/PRETRAINED.md). The differences from `build_alexnet`'s paper net:

- convolutions of 64, 192, 384, 256, 256 maps (kernels 11, 5, 3, 3, 3), one tower, no
  groups; conv1 has stride 4 and 2 pixels of zero padding on each side;
- no local response normalisation;
- an adaptive average pool to 6x6 after pool5 (`AdaptiveAveragePooling2D`), so fc6 sees
  6 x 6 x 256 values at any input size, as torchvision's does;
- dropout before fc6 and before fc7 (torchvision's `classifier` order), not after them.

Layers keep the paper's names (conv1 ... conv5, pool1, pool2, pool5, fc6 ... fc8); the
average pool is `avgpool`. At 224 px, torchvision's size, pool5 is already 6x6 and the
average pool changes nothing; at other sizes it averages (or repeats) pool5's cells
exactly as torch's `AdaptiveAvgPool2d` does.
"""

import keras
import numpy as np
import tensorflow as tf

from alexnet_tf.model.layers import ReplicaDropout, TowerConv2D, TowerDense
from alexnet_tf.model.weight_layers import layer_seed

# The smallest input for which pool5 has one cell: 63 -> 15 -> 7 -> 3 -> 1.
MIN_IMAGE_SIZE = 63
POOLED = 6  # torchvision's AdaptiveAvgPool2d((6, 6))


def _bins(size, out):
    """(out, size) averaging matrix of torch's adaptive average pooling along one axis:
    bin i averages [floor(i * size / out), ceil((i + 1) * size / out))."""
    matrix = np.zeros((out, size), np.float32)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@keras.saving.register_keras_serializable(package="alexnet_tf")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """torch's `AdaptiveAvgPool2d((size, size))` on NHWC maps of a fixed spatial size."""

    def __init__(self, size=POOLED, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, x):
        rows = tf.constant(_bins(x.shape[1], self.size))
        cols = tf.constant(_bins(x.shape[2], self.size))
        x = tf.einsum("ih,bhwc->biwc", tf.cast(rows, x.dtype), x)
        return tf.einsum("jw,biwc->bijc", tf.cast(cols, x.dtype), x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def build_torchvision_alexnet(num_classes=1000, image_size=224, dropout=0.5, seed=None):
    """torchvision's AlexNet as a Keras model: `(B, S, S, 3)` -> logits, S >= 63."""
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"build_alexnet: image_size must be an integer >= {MIN_IMAGE_SIZE} for the "
            f"torchvision variant, got image_size={image_size!r}"
        )

    def conv(name, filters, size, strides=1, padding="same"):
        init = keras.initializers.HeNormal(layer_seed(seed, name))
        return TowerConv2D(
            filters, size, strides, padding, activation="relu", kernel_initializer=init, name=name
        )

    def dense(name, units, activation=None):
        init = keras.initializers.GlorotUniform(layer_seed(seed, name))
        return TowerDense(units, activation, kernel_initializer=init, name=name)

    def pool(name):
        return keras.layers.MaxPooling2D(3, 2, name=name)

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.ZeroPadding2D(2, name="pad1")(inputs)
    x = conv("conv1", 64, 11, strides=4, padding="valid")(x)  # (B, 55, 55, 64) at 224
    x = pool("pool1")(x)  # 27
    x = conv("conv2", 192, 5)(x)
    x = pool("pool2")(x)  # 13
    x = conv("conv3", 384, 3)(x)
    x = conv("conv4", 256, 3)(x)
    x = conv("conv5", 256, 3)(x)
    x = pool("pool5")(x)  # 6
    x = AdaptiveAveragePooling2D(POOLED, name="avgpool")(x)  # (B, 6, 6, 256)
    x = keras.layers.Flatten(name="flatten")(x)  # H, W, C order (torch: C, H, W)
    x = ReplicaDropout(dropout, seed=seed, name="drop6")(x)
    x = dense("fc6", 4096, "relu")(x)
    x = ReplicaDropout(dropout, seed=None if seed is None else seed + 1, name="drop7")(x)
    x = dense("fc7", 4096, "relu")(x)
    logits = dense("fc8", num_classes)(x)
    return keras.Model(inputs, logits, name="alexnet_torchvision")
