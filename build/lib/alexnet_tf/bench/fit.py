"""`python -m alexnet_tf.bench fit`: a user's own `model.fit` on `build_alexnet()`.

No train step, optimizer or pipeline of ours: `build_alexnet()`, `model.compile` with
Keras' SGD (momentum 0.9) and sparse cross-entropy on logits, then `model.fit` on random
in-memory images, as a user would write it. What this times is what the model's layers
give every user. A callback times each step; the first `--warmup` steps (tracing, oneDNN
primitive creation) are left out, and the rate is over the next `--steps`. Each step's
rate is printed too (`step_images_per_sec`): a process that lands in a slow mode shows
it in every step, a disturbance in one or two.
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
    common.define_timing_flags(fv, warmup=2, what="steps", steps=(4, "Timed steps."))


def main(argv=None):
    return common.command(argv, "fit", define_flags, run)


def run(args, _):
    configs.data_config(args, log_resize=False)  # checks --image_size
    import keras

    from alexnet_tf import build_alexnet

    b, s = args.batch_size, args.image_size
    steps = args.warmup + args.steps
    rng = np.random.default_rng(0)
    images = rng.normal(size=(b * steps, s, s, 3)).astype(np.float32)
    labels = rng.integers(0, args.num_classes, b * steps)
    model = build_alexnet(args.num_classes, s, seed=0)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    seconds = []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):  # logs are fetched: the step ran
            seconds.append(time.perf_counter() - self.start)

    model.fit(
        images, labels, batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[StepTimer()]
    )
    timed = seconds[args.warmup :]
    result = {
        "benchmark": "fit",
        "images_per_sec": round(b * len(timed) / sum(timed), 2),
        "step_images_per_sec": [round(b / t, 1) for t in seconds],  # warm-up steps first
        "batch_size": b,
        "image_size": s,
        "num_classes": args.num_classes,
        **environment(),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    report(result, args.json)
    return 0
