"""`python -m alexnet_tf.bench e2e`: the training step fed by the real input pipeline.

Runs the real train step (`steps.make_train_step`) on batches from
`pipeline.build_dataset(training=True)` (files read and decoded afresh, full
augmentation, prefetching as in training) and, in the same process with windows
interleaved, the same step on one batch held in memory. The ratio e2e / in-memory
says whether the input keeps up: 1.0 means training never waits for data. On a CPU
the pipeline also takes cores from the step, so the ratio there includes that cost.
`input_images_per_sec` times the batches alone, without the step, on a fresh stream.
With `--augment_on device` the batches are the host's uint8 crops and the step augments
them (`data.device_augment`), as training does.

`--data_service grpc://HOST:PORT` takes the batches from a tf.data service instead
(`data.service.service_dataset`, as `train.py --data_service` does); start its
dispatcher and workers first (`python -m alexnet_tf.data_service`).
"""

import statistics
import time

from absl import flags

from alexnet_tf.bench import common
from alexnet_tf.bench.common import data_config, environment, peak_rss_mb, report, training_batches
from alexnet_tf.cli import options


def define_flags(fv):
    common.define_data_flags(fv, batch_size=32, only=(*common.DATA_FLAGS, "augment_on"))
    common.define_timing_flags(
        fv,
        warmup=3,
        what="steps",
        steps=(6, "Steps per timed window."),
        windows=(4, "Timed windows of each (median)."),
    )
    options.define_mixed_precision_flag(fv)
    flags.DEFINE_string(
        "data_service", None, "grpc://HOST:PORT: batches from a tf.data service.", flag_values=fv
    )


def main(argv=None):
    return common.command(argv, "e2e", define_flags, run)


def run(args, _):
    import keras
    import tensorflow as tf

    from alexnet_tf import build_alexnet
    from alexnet_tf.config import TrainConfig
    from alexnet_tf.data import device_augment
    from alexnet_tf.model.optimizer import make_optimizer
    from alexnet_tf.training.steps import make_train_step

    cfg = data_config(args)

    def make_stream():
        if args.data_service:
            return service_batches(cfg, args.batch_size, args.data_service)
        return training_batches(cfg, args.batch_size, full_only=True)

    source, stats, stream = make_stream()
    # --augment_on device: uint8 batches, augmented in the step (device_augment).
    augment = device_augment.make_augment(cfg, stats) if device_augment.on_device(cfg) else None
    # The draws of epoch 0 throughout (the stream does not say its epoch): the same work.
    epoch = (tf.constant(0, tf.int64),) if augment else ()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(f"mixed_{args.mixed_precision}")
    model = build_alexnet(source.num_classes, cfg.image_size, seed=0)
    # The training recipe's optimizer (loss scaling under float16), as train.py builds it.
    optimizer = make_optimizer(TrainConfig(mixed_precision=args.mixed_precision))
    optimizer.build(model.trainable_variables)
    step = make_train_step(
        model, optimizer, tf.distribute.get_strategy(), args.batch_size, augment=augment
    )

    held = next(stream)

    def fed():
        return step(*next(stream), *epoch)["loss"]

    def in_memory():
        return step(*held, *epoch)["loss"]

    runs = {"e2e": fed, "in_memory": in_memory}
    for run in runs.values():
        for _ in range(args.warmup):
            float(run())
    times = {name: [] for name in runs}
    for _ in range(args.windows):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                result = run()
            float(result)
            times[name].append(time.perf_counter() - start)
    rate = {name: args.steps * args.batch_size / statistics.median(t) for name, t in times.items()}
    # The input alone, on a fresh stream (nothing prefetched while a step ran): its
    # first batch, then steps x windows batches in a row.
    _, _, stream = make_stream()
    next(stream)
    start = time.perf_counter()
    for _ in range(args.steps * args.windows):
        next(stream)
    rate["input"] = args.steps * args.windows * args.batch_size / (time.perf_counter() - start)
    report(
        {
            "benchmark": "e2e",
            "images_per_sec": round(rate["e2e"], 2),
            "in_memory_images_per_sec": round(rate["in_memory"], 2),
            "input_images_per_sec": round(rate["input"], 2),
            "data_service": args.data_service,
            "augment_on": "device" if augment else "host",
            "e2e_vs_in_memory": round(rate["e2e"] / rate["in_memory"], 3),
            "bottleneck": "input" if rate["e2e"] < 0.95 * rate["in_memory"] else "model",
            "batch_size": args.batch_size,
            "image_size": cfg.image_size,
            "mixed_precision": args.mixed_precision,
            "source": f"{source.kind} {source.root} ({source.num_examples} images)",
            **environment(),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
        args.json,
    )
    return 0


def service_batches(cfg, batch_size, address):
    """`(source, stats, batches)` as `training_batches`, made by the tf.data service at
    `address`."""
    from alexnet_tf.bench.common import epochs, training_source
    from alexnet_tf.data.service import check_address, service_dataset

    check_address(address)
    source, stats = training_source(cfg)

    def epoch(e):
        return service_dataset(
            cfg, source, address=address, batch_size=batch_size, stats=stats, epoch=e
        )

    return source, stats, epochs(epoch, only_size=batch_size)
