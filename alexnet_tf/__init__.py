"""alexnet_tf: the paper's AlexNet on TensorFlow 2 / Keras 3.

Importing the package registers its Keras classes (`TowerConv2D`, `TowerDense`,
`ReplicaDropout`, `LocalResponseNormalization`, `PaperSGD`), so a saved `model.keras`
loads with plain `keras.saving.load_model` once `alexnet_tf` is imported, and
`alexnet_tf.load_model(run_dir_or_file)` does it in one call. TensorFlow is imported
first through `alexnet_tf.quiet`, which keeps its start-up notices off the console.
"""

from alexnet_tf.quiet import tensorflow_imported

tensorflow_imported()

from alexnet_tf.model.alexnet import build_alexnet  # noqa: E402
from alexnet_tf.model.layers import ReplicaDropout, TowerConv2D, TowerDense, copy_weights  # noqa: E402
from alexnet_tf.model.lrn import LocalResponseNormalization  # noqa: E402
from alexnet_tf.model.optimizer import PaperSGD  # noqa: E402
from alexnet_tf.version import __version__  # noqa: E402


def load_model(run_dir_or_file):
    """A trained model: a run's folder (its `model.keras`) or a `.keras` file.

    Loads in Keras' safe mode (a file holding Python code is refused) and returns the
    plain float32 `keras.Model`, which maps preprocessed images to logits; the run's
    preprocessing is in its `saved_model/` and `alexnet_tf.predict`.
    """
    from alexnet_tf.evaluation.model_files import load_trained

    return load_trained(run_dir_or_file)


__all__ = [
    "LocalResponseNormalization",
    "PaperSGD",
    "ReplicaDropout",
    "TowerConv2D",
    "TowerDense",
    "__version__",
    "build_alexnet",
    "copy_weights",
    "load_model",
]
