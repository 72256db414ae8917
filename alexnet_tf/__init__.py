"""alexnet_tf: the paper's AlexNet on TensorFlow 2 / Keras 3."""

from alexnet_tf.layers import copy_weights
from alexnet_tf.lrn import LocalResponseNormalization
from alexnet_tf.model import build_alexnet

__all__ = ["LocalResponseNormalization", "build_alexnet", "copy_weights"]
