"""`python -m alexnet_tf.bench eval`: 10-crop evaluation throughput on in-memory data.

Times the real evaluation step (`eval_step.make_eval_step`: 10 crops per image through the
model, softmax averaged, hits counted) on random batches of shape (B, 10, S, S, 3), after
warm-up, as the median of several timed windows. One 10-crop image is 10 forward passes,
so the report gives both images/s and crops/s. In the same process, with windows
interleaved so that all see the same machine, it times the plain forward pass
`model(x, training=False)` at batch B and at batch 10 B (the step's own forward batch),
so "per-crop vs plain forward" tells what the step adds around the network (each ratio is
the median of per-window ratios, robust to load changes on a shared machine).
"""

import statistics
import time

import numpy as np
from absl import flags

from alexnet_tf.bench import common
from alexnet_tf.bench.common import environment, peak_rss_mb, report
from alexnet_tf.cli import configs, options

CROPS = 10


def _window(run, steps):
    start = time.perf_counter()
    for _ in range(steps):
        result = run()
    np.asarray(result)  # wait for the last call
    return time.perf_counter() - start


def define_flags(fv):
    common.define_batch_size_flag(fv, 32, "Images (x10 crops) a step.")
    options.define_data_flags(fv, only=("image_size",))
    flags.DEFINE_integer(
        "num_classes", 1000, "Classes of the model.", flag_values=fv, lower_bound=2
    )
    common.define_timing_flags(
        fv,
        warmup=2,
        what="calls",
        steps=(2, "Calls per timed window."),
        windows=(3, "Timed windows (median)."),
    )
    options.define_mixed_precision_flag(fv)


def main(argv=None):
    return common.command(argv, "eval", define_flags, run)


def run(args, _):
    configs.data_config(args, log_resize=False)  # checks --image_size
    import keras
    import tensorflow as tf

    from alexnet_tf import build_alexnet
    from alexnet_tf.evaluation.eval_step import make_eval_step

    b, s = args.batch_size, args.image_size
    rng = np.random.default_rng(0)
    crops = tf.constant(rng.normal(size=(b, CROPS, s, s, 3)), tf.float32)  # (B, 10, S, S, 3)
    flat = tf.reshape(crops, (b * CROPS, s, s, 3))  # (10 B, S, S, 3)
    labels = tf.constant(rng.integers(0, args.num_classes, b), tf.int32)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(f"mixed_{args.mixed_precision}")
    model = build_alexnet(args.num_classes, s, seed=0)
    step = make_eval_step(model, tf.distribute.get_strategy())
    forward = tf.function(lambda x: model(x, training=False))
    runs = {  # name: (call, images per call)
        "ten_crop": (lambda: step(crops, labels)["count"], b),
        "forward": (lambda: forward(flat[:b]), b),
        "forward_10b": (lambda: forward(flat), b * CROPS),
    }
    for run, _ in runs.values():
        _window(run, args.warmup)
    times = {name: [] for name in runs}
    for _ in range(args.windows):  # interleaved: all see the same machine state
        for name, (run, _) in runs.items():
            times[name].append(_window(run, args.steps))
    rate = {name: args.steps * n / statistics.median(times[name]) for name, (_, n) in runs.items()}
    window_rate = {name: [args.steps * n / t for t in times[name]] for name, (_, n) in runs.items()}
    per_crop = rate["ten_crop"] * CROPS

    def ratio(other):
        # The median of per-window ratios: windows adjacent in time see the same load on a
        # shared machine, where the ratio of two medians can mix a busy and a quiet moment.
        pairs = zip(window_rate["ten_crop"], window_rate[other], strict=True)
        return statistics.median(CROPS * ours / theirs for ours, theirs in pairs)

    result = {
        "benchmark": "eval",
        "images_per_sec": round(rate["ten_crop"], 2),  # 10-crop images, 10 passes each
        "crops_per_sec": round(per_crop, 1),
        "forward_images_per_sec": round(rate["forward"], 1),  # model(x) at batch B
        "forward_10b_images_per_sec": round(rate["forward_10b"], 1),  # at batch 10 B
        "per_crop_vs_forward": round(ratio("forward"), 3),
        "per_crop_vs_forward_10b": round(ratio("forward_10b"), 3),
        "batch_size": b,
        "forward_batch": b * CROPS,
        "image_size": s,
        "num_classes": args.num_classes,
        "mixed_precision": args.mixed_precision,
        "window_images_per_sec": [round(r, 2) for r in window_rate["ten_crop"]],
    }
    result.update(environment(), peak_rss_mb=round(peak_rss_mb()))
    report(result, args.json)
    return 0
