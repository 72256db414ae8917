"""The `{layer: [W, b]}` NumPy dictionary of the TF fine-tuning repositories
(`bvlc_alexnet.npy`, converted from Caffe's bvlc_alexnet by caffe-tensorflow).

Its arrays are already in TensorFlow's layout: conv kernels `(kh, kw, in / groups,
out)`, FC weights `(in, out)` with fc6's rows in pool5's (H, W, C) order; its input
is Caffe's (BGR, 0-255, mean subtracted).

The file is a pickled dictionary inside a `.npy`: loading it runs the pickle, so load
only files you trust (as you would with `np.load(allow_pickle=True)` yourself).
"""

import numpy as np

from alexnet_tf.errors import UserError


def read_npy_dict(path):
    """`{layer: [arrays]}` of the dictionary `.npy` at `path` (a file you trust)."""
    try:
        value = np.load(path, allow_pickle=True, encoding="latin1")
        if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
            value = value.item()
    except (OSError, ValueError, EOFError) as err:
        text = " ".join(str(err).split())[:160]
        raise UserError(f"{path} is not a readable .npy weights dictionary: {text}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} holds a {type(value).__name__}, not a {{layer: [W, b]}} dict")
    layers = {}
    for name, blobs in value.items():
        if isinstance(blobs, dict):  # some converters write {"weights": W, "biases": b}
            blobs = [blobs.get("weights"), blobs.get("biases")]
        layers[str(name)] = [np.asarray(b, np.float32) for b in blobs if b is not None]
    return layers
