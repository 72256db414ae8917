"""Real images without a download: scikit-learn's handwritten digits as class folders.

`load_digits()` ships inside scikit-learn: 1,797 scans of handwritten digits, 8x8 grey
levels 0-16, 10 classes (UCI "Optical Recognition of Handwritten Digits"). Written once as
PNG files to `~/.cache/alexnet_tf/digits-v1/{train,val}/<digit>/` (1,500 / 297 images,
the split of `experiments.init_study`), the folder layout every command reads, so the
reproductions run the same code on them as on CIFAR-10 or ImageNet folders.

    pip install scikit-learn   # only needed when no --data_dir is given
"""

import os
import shutil
import sys
import tempfile

import numpy as np
from PIL import Image

from alexnet_tf.errors import UserError

VERSION = "digits-v1"
TRAIN_IMAGES = 1500
_MARKER = "digits.txt"


def default_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "alexnet_tf", VERSION)


def ensure_digits(root=None):
    """The digits folder, written there first if it is not yet complete."""
    root = root or default_dir()
    if os.path.isfile(os.path.join(root, _MARKER)):
        return root
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError(
            "without --data_dir the experiment trains on scikit-learn's bundled digits: "
            "pip install scikit-learn, or give --data_dir (e.g. CIFAR-10 as class folders)"
        ) from None
    data = load_digits()
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".digits-", dir=parent)
    print(f"writing scikit-learn's digits as PNG folders into {root} (once)", file=sys.stderr)
    try:
        write_digits(staging, data.images, data.target)
        if os.path.isdir(root):
            shutil.rmtree(root)
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def write_digits(root, images, labels, train_images=TRAIN_IMAGES, seed=0):
    """`images` (N, 8, 8) on 0-16 as grey PNGs under `root/{train,val}/<label>/`.

    The order is shuffled with `seed` and the first `train_images` go to train/.
    """
    order = np.random.RandomState(seed).permutation(len(images))
    for rank, i in enumerate(order):
        split = "train" if rank < train_images else "val"
        folder = os.path.join(root, split, str(int(labels[i])))
        os.makedirs(folder, exist_ok=True)
        grey = np.round(np.asarray(images[i], np.float64) * (255.0 / 16.0)).astype(np.uint8)
        Image.fromarray(grey, mode="L").save(os.path.join(folder, f"{i:04d}.png"))
    with open(os.path.join(root, _MARKER), "w", encoding="utf-8") as f:
        f.write(f"{VERSION}: scikit-learn load_digits, {train_images} train, seed {seed}\n")
