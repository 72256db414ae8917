"""`python -m alexnet_tf.bench fit`: a user's own `model.fit` on `build_alexnet()`.

No train step, optimizer or pipeline of ours: `build_alexnet()`, `model.compile` with
Keras' SGD (momentum 0.9, weight decay 5e-4, as the PyTorch peer) and sparse
cross-entropy on logits, then `model.fit` on random in-memory images, as a user would
write it. What this times is what the model's layers give every user.

A first `fit` of `--warmup` steps traces the step and creates oneDNN's primitives; a
second `fit` of `--steps` steps is timed by the wall clock around the call, as a
user's clock sees it (`images_per_sec`). A callback with no per-step hook (so that
Keras runs its loop as it does for the user) splits that time: `steps_seconds` from
`on_train_begin` to `on_train_end` (the steps alone: `steps_images_per_sec`),
`setup_seconds` before it and `teardown_seconds` after it. The teardown is the
deletion of the tf.data iterator Keras made for the call, which in TF 2.21 sometimes
blocks for about as long as the iterator lived (`alexnet_tf/data/iterators.py`): a
short `fit` that lands on it shows half its speed. `--fits` repeats the timed call.
"""

import time

import numpy as np
from absl import flags

from alexnet_tf.bench import common
from alexnet_tf.bench.common import environment, peak_rss_mb, report
from alexnet_tf.cli import configs, options


def define_flags(fv):
    common.define_batch_size_flag(fv, 32)
    options.define_data_flags(fv, only=("image_size",))
    flags.DEFINE_integer(
        "num_classes", 1000, "Classes of the model.", flag_values=fv, lower_bound=2
    )
    common.define_timing_flags(
        fv,
        warmup=2,
        what="steps",
        steps=(8, "Steps of each timed fit call."),
        fits=(1, "Timed fit calls, one after another (each a new iterator)."),
    )


def main(argv=None):
    return common.command(argv, "fit", define_flags, run)


def run(args, _):
    configs.data_config(args, log_resize=False)  # checks --image_size
    import keras

    from alexnet_tf import build_alexnet

    b, s = args.batch_size, args.image_size
    rng = np.random.default_rng(0)
    images = rng.normal(size=(b * max(args.warmup, args.steps), s, s, 3)).astype(np.float32)
    labels = rng.integers(0, args.num_classes, len(images))
    model = build_alexnet(args.num_classes, s, seed=0)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=5e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    marks = {}

    class Marks(keras.callbacks.Callback):  # no batch hooks: Keras' loop runs as for a user
        def on_train_begin(self, logs=None):
            marks["begin"] = time.perf_counter()

        def on_train_end(self, logs=None):
            marks["end"] = time.perf_counter()

    def fit(steps):
        start = time.perf_counter()
        model.fit(
            images[: b * steps],
            labels[: b * steps],
            batch_size=b,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[Marks()],
        )
        done = time.perf_counter()
        return (
            done - start,
            marks["begin"] - start,
            marks["end"] - marks["begin"],
            done - marks["end"],
        )

    if args.warmup:
        fit(args.warmup)
    calls = [fit(args.steps) for _ in range(args.fits)]
    n = b * args.steps
    result = {
        "benchmark": "fit",
        "images_per_sec": round(n * len(calls) / sum(c[0] for c in calls), 2),
        "steps_images_per_sec": round(n * len(calls) / sum(c[2] for c in calls), 2),
        "fit_images_per_sec": [round(n / c[0], 1) for c in calls],  # each call, wall clock
        "setup_seconds": [round(c[1], 3) for c in calls],
        "steps_seconds": [round(c[2], 3) for c in calls],
        "teardown_seconds": [round(c[3], 3) for c in calls],
        "weight_decay": 5e-4,
        "batch_size": b,
        "image_size": s,
        "num_classes": args.num_classes,
        **environment(),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    report(result, args.json)
    return 0
