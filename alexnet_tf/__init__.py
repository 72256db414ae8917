"""alexnet_tf: the paper's AlexNet on TensorFlow 2 / Keras 3.

The public names load lazily, so `import alexnet_tf.quiet` (which must run before
TensorFlow is imported) and `--help` of the commands stay light.
"""

import importlib

_EXPORTS = {
    "build_alexnet": "alexnet_tf.model",
    "copy_weights": "alexnet_tf.layers",
    "LocalResponseNormalization": "alexnet_tf.lrn",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'alexnet_tf' has no attribute {name!r}")
