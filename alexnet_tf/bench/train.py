"""`python -m alexnet_tf.bench train`: training-step throughput on in-memory data.

Times the real model, optimizer and train step (`alexnet_tf.training.steps`) on random
batches (no input pipeline), after warm-up, as the median of several timed
windows. Beside it, in the same process and with windows interleaved so that
both see the same machine: a plain Keras baseline of the same net
(`Conv2D(groups=2)`, Keras SGD, `train_on_batch`, default settings), and the
machine's float32 peak from a large matmul, so the figure reads as a fraction
of what the machine can do. And what `--augment_on device` adds to a step: the device
augmentation (`data.device_augment`) of one batch of uint8 crops, timed alone in
windows interleaved with the step's (`device_augment_ms`, `_fraction_of_step`).
"""

import statistics
import time

import numpy as np
from absl import flags

from alexnet_tf.bench import common
from alexnet_tf.bench.common import environment, peak_rss_mb, report
from alexnet_tf.cli import configs, options


def layer_macs(model):
    """{layer name: multiply-adds of its forward pass for one image}, convolutions and FC
    layers in the model's order (the rest is a few % at most and not counted)."""
    from alexnet_tf.model.layers import TowerConv2D, TowerDense

    macs = {}
    for layer in model.layers:
        if isinstance(layer, TowerConv2D):
            kernel = layer.get_weights()[0]  # (kh, kw, in / groups, out)
            _, h, w, _ = layer.compute_output_shape(layer.input.shape)
            macs[layer.name] = h * w * kernel.size
        elif isinstance(layer, TowerDense):
            macs[layer.name] = layer.get_weights()[0].size
    return macs


def forward_macs(model):
    """Multiply-adds of one forward pass of one image (convolutions and FC layers)."""
    return sum(layer_macs(model).values())


def train_macs(model):
    """Multiply-adds a training step computes per image: every layer's forward and weight
    gradient (each as many as its forward), and the gradient with respect to every layer's
    input except the first's (conv1's input is the image, which needs no gradient)."""
    macs = layer_macs(model)
    return 3 * sum(macs.values()) - next(iter(macs.values()))


def matmul_peak_gflops(n=2048, repeats=10, dtype="float32"):
    """GFLOP/s of a large matmul in `dtype`: the machine's practical peak."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    (a @ b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        (a @ b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def keras_baseline(num_classes, image_size):
    """The same net written with stock Keras layers, as a user would write it."""
    import keras

    from alexnet_tf.model.lrn import LocalResponseNormalization

    layers = keras.layers
    inputs = keras.Input((image_size, image_size, 3))
    x = layers.Conv2D(96, 11, 4, activation="relu")(inputs)
    x = layers.MaxPooling2D(3, 2)(LocalResponseNormalization("paper")(x))
    x = layers.Conv2D(256, 5, padding="same", groups=2, activation="relu")(x)
    x = layers.MaxPooling2D(3, 2)(LocalResponseNormalization("paper")(x))
    x = layers.Conv2D(384, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(384, 3, padding="same", groups=2, activation="relu")(x)
    x = layers.Conv2D(256, 3, padding="same", groups=2, activation="relu")(x)
    x = layers.Flatten()(layers.MaxPooling2D(3, 2)(x))
    x = layers.Dropout(0.5)(layers.Dense(4096, activation="relu")(x))
    x = layers.Dropout(0.5)(layers.Dense(4096, activation="relu")(x))
    model = keras.Model(inputs, layers.Dense(num_classes)(x))
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def device_augment_on_a_batch(batch_size, image_size):
    """(`device_augment.make_augment` as a `tf.function`, uint8 crops, indices): the
    paper's settings (pixel mean, PCA lighting, standardised) on a random batch."""
    import tensorflow as tf

    from alexnet_tf.cli.configs import resize_for
    from alexnet_tf.config import DataConfig
    from alexnet_tf.data import device_augment, image_ops
    from alexnet_tf.data.statistics import InputStats

    cfg = DataConfig(image_size=image_size, resize=resize_for(image_size), augment_on="device")
    rng = np.random.default_rng(0)
    stats = InputStats(
        mean_image=rng.uniform(0, 255, (cfg.resize, cfg.resize, 3)).astype(np.float32),
        channel_mean=np.float32([120.0, 110.0, 100.0]),
        channel_std=np.float32([60.0, 60.0, 60.0]),
        pca_eigval=np.float32(image_ops.PCA_EIGVAL),
        pca_eigvec=np.float32(image_ops.PCA_EIGVEC),
        num_images=1,
        resize=cfg.resize,
    )
    crops = tf.constant(rng.integers(0, 256, (batch_size, image_size, image_size, 3)), tf.uint8)
    index = tf.range(batch_size, dtype=tf.int64)
    return tf.function(device_augment.make_augment(cfg, stats)), crops, index


def _window(run_step, steps):
    start = time.perf_counter()
    for _ in range(steps):
        result = run_step()
    float(np.asarray(result))  # wait for the last step
    return time.perf_counter() - start


def define_flags(fv):
    common.define_batch_size_flag(fv, 32)
    options.define_data_flags(fv, only=("image_size",))
    flags.DEFINE_integer(
        "num_classes", 1000, "Classes of the model.", flag_values=fv, lower_bound=2
    )
    common.define_timing_flags(
        fv,
        warmup=3,
        what="steps",
        steps=(5, "Steps per timed window."),
        windows=(5, "Timed windows (median)."),
    )
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the step.", flag_values=fv)
    options.define_mixed_precision_flag(fv)
    flags.DEFINE_bool("no_baseline", False, "Skip the Keras baseline.", flag_values=fv)


def main(argv=None):
    return common.command(argv, "train", define_flags, run)


def run(args, _):
    configs.data_config(args, log_resize=False)  # checks --image_size
    import keras
    import tensorflow as tf

    from alexnet_tf import build_alexnet
    from alexnet_tf.config import TrainConfig
    from alexnet_tf.model.optimizer import make_optimizer
    from alexnet_tf.training.steps import make_train_step

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(f"mixed_{args.mixed_precision}")
    rng = np.random.default_rng(0)
    images = tf.constant(
        rng.normal(size=(args.batch_size, args.image_size, args.image_size, 3)), tf.float32
    )
    labels = tf.constant(rng.integers(0, args.num_classes, args.batch_size), tf.int32)

    model = build_alexnet(args.num_classes, args.image_size, seed=0)
    # The training recipe's optimizer (loss scaling under float16), as train.py builds it.
    optimizer = make_optimizer(TrainConfig(mixed_precision=args.mixed_precision))
    optimizer.build(model.trainable_variables)
    strategy = tf.distribute.get_strategy()
    step = make_train_step(model, optimizer, strategy, args.batch_size, args.jit_compile)
    runs = {"ours": lambda: step(images, labels)["loss"]}
    augment, crops, index = device_augment_on_a_batch(args.batch_size, args.image_size)
    runs["device_augment"] = lambda: augment(crops, index, tf.constant(1, tf.int64))[0, 0, 0, 0]
    if not args.no_baseline:
        keras.mixed_precision.set_global_policy("float32")
        baseline = keras_baseline(args.num_classes, args.image_size)
        runs["keras_baseline"] = lambda: baseline.train_on_batch(images, labels)

    for run in runs.values():
        _window(run, args.warmup)
    times = {name: [] for name in runs}
    for _ in range(args.windows):  # interleaved: both see the same machine state
        for name, run in runs.items():
            times[name].append(_window(run, args.steps))

    # The step computes in bfloat16/float16 under mixed precision: its peak is that dtype's.
    compute_dtype = args.mixed_precision or "float32"
    peak = matmul_peak_gflops(dtype=compute_dtype)
    train_gflop = 2 * train_macs(model) / 1e9  # 2 FLOPs per multiply-add
    per_sec = {
        name: args.steps * args.batch_size / statistics.median(t) for name, t in times.items()
    }
    result = {
        "benchmark": "train",
        "images_per_sec": round(per_sec["ours"], 2),
        "gflops_per_sec": round(per_sec["ours"] * train_gflop, 1),
        "peak_gflops_per_sec": round(peak, 1),
        "peak_dtype": compute_dtype,
        "fraction_of_peak": round(per_sec["ours"] * train_gflop / peak, 3),
        "gflop_per_image": round(train_gflop, 3),
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "jit_compile": args.jit_compile,
        "mixed_precision": args.mixed_precision,
        "window_images_per_sec": [
            round(args.steps * args.batch_size / t, 2) for t in times["ours"]
        ],
    }
    # What --augment_on device adds to each step: its augmentation of a batch, alone.
    augment_seconds = statistics.median(times["device_augment"]) / args.steps
    step_seconds = statistics.median(times["ours"]) / args.steps
    result["device_augment_ms"] = round(1000 * augment_seconds, 3)
    result["device_augment_fraction_of_step"] = round(augment_seconds / step_seconds, 4)
    if "keras_baseline" in per_sec:
        result["keras_baseline_images_per_sec"] = round(per_sec["keras_baseline"], 2)
        result["speedup_vs_keras_baseline"] = round(per_sec["ours"] / per_sec["keras_baseline"], 2)
    result.update(environment(), peak_rss_mb=round(peak_rss_mb()))
    report(result, args.json)
    return 0
