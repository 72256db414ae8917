"""Which weight initialisation learns? The measurement behind build_alexnet's default.

Trains a 67-px AlexNet (this project's model, paper LRN, groups=2) on real
handwritten digits (scikit-learn's bundled `load_digits`: 1,797 8x8 scans,
10 classes, upsampled to 67x67 RGB) with the paper's optimizer (SGD 0.01,
momentum 0.9, weight decay 5e-4 inside the momentum, batch 32) for 6 epochs,
for each init x input scaling, and prints validation top-1 and the last loss.

    pip install scikit-learn   # only this study needs it
    python -m alexnet_tf.experiments.init_study [--epochs 6] [--json]

Input scalings: "paper" = raw 0-255 pixels minus the per-channel mean (the
paper's scale, about +-128); "standardize" = that divided by the per-channel std.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))  # run as a script

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from alexnet_tf import build_alexnet  # noqa: E402
from alexnet_tf.model.optimizer import PaperSGD  # noqa: E402


def digits(size=67, seed=0):
    data = load_digits()
    images = data.images.astype("float32") * (255.0 / 16.0)  # (N, 8, 8) on 0-255
    images = tf.image.resize(images[..., None], (size, size), method="bilinear").numpy()
    images = np.repeat(images, 3, axis=-1)  # (N, 67, 67, 3)
    order = np.random.RandomState(seed).permutation(len(images))
    images, labels = images[order], data.target[order].astype("int32")
    split = 1500
    return (images[:split], labels[:split]), (images[split:], labels[split:])


def scale(train, val, mode):
    mean = train.mean(axis=(0, 1, 2))
    std = train.std(axis=(0, 1, 2)) if mode == "standardize" else 1.0
    return (train - mean) / std, (val - mean) / std


def run(init, mode, epochs, seed):
    (x_train, y_train), (x_val, y_val) = digits(seed=seed)
    x_train, x_val = scale(x_train, x_val, mode)
    keras.utils.set_random_seed(seed)
    model = build_alexnet(num_classes=10, image_size=67, init=init, seed=seed)
    model.compile(
        PaperSGD(0.01, 0.9, 5e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=epochs,
        verbose=0,
        validation_data=(x_val, y_val),
        shuffle=True,
    )
    return {
        "init": init,
        "inputs": mode,
        "val_top1": round(history.history["val_accuracy"][-1], 3),
        "first_loss": round(history.history["loss"][0], 3),
        "last_loss": round(history.history["loss"][-1], 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"{'init':8} {'inputs':12} {'seed':>4} {'val top-1':>9} {'loss ep1':>9} {'loss last':>9}")
    for init in ("paper", "caffe", "he"):
        for mode in ("paper", "standardize"):
            for seed in range(args.seeds):
                r = run(init, mode, args.epochs, seed)
                if args.json:
                    print(json.dumps({**r, "seed": seed}))
                print(
                    f"{init:8} {mode:12} {seed:>4} {r['val_top1']:9.3f} "
                    f"{r['first_loss']:9.3f} {r['last_loss']:9.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
