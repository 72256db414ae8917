"""`python -m alexnet_tf.bench input`: images/s of the training input pipeline, and of a
plain tf.data map on the same files in the same run.

Measures `pipeline.build_dataset(training=True)` exactly as training uses it:
read, decode, resize, random crop, flip, PCA lighting, mean subtraction and scaling,
batching. Nothing decoded is cached: every timed batch reads and decodes its files
afresh (the OS page cache still holds the files, as it would after the first epoch).
Timing starts after `--warmup` batches and covers `--batches` batches; when the data is
smaller than that, the next epoch (a new order) follows, as in training, but chained
inside one tf.data pipeline (`common.chained_epochs`): the figure is what a long epoch
runs at. A training run whose epoch is a few hundred images also restarts its pipeline
at each epoch's end (a new iterator, and autotuning starting over), which costs it
about 15 % at 300 images and nothing measurable at ImageNet's 1.28 M.

With `--augment_on device` ours is the host's part only (read, decode, crop, uint8
batches with the examples' indices: `transforms.train_crop_transform`), the plain map
rounds its crops to uint8 too, and `vs_plain` compares the two; the device's part is
timed by `bench train` (`device_augment_fraction_of_step`).

The peer (`--peer`, on by default) is the plain map the issue tracker measures against:
read, decode, resize the shorter side to `--resize`, a random `--image_size` crop, in a
parallel map, batched and prefetched, with no augmentation or normalisation (what
anyone's first tf.data pipeline does). The two run in turn, `--windows` times, each
window on a fresh iterator (so the idle one prefetches nothing meanwhile);
`vs_plain` is the median of the windows' ratios. Besides wall time it reports images
per CPU-second of all threads, the per-core rate, which other processes on a shared
machine disturb much less.
"""

import statistics
import time

from absl import flags

from alexnet_tf.bench import common
from alexnet_tf.bench.common import (
    chained_epochs,
    cpu_seconds,
    data_config,
    environment,
    peak_rss_mb,
    report,
    training_dataset,
    training_source,
)

# Its data flags: what the others read, and the preprocessing timed.
DATA_FLAGS = (
    *common.DATA_FLAGS,
    "mean",
    "normalize",
    "pca_std",
    "fused_crop",
    "antialias_below",
    "augment_on",
)


def define_flags(fv):
    common.define_data_flags(fv, batch_size=128, only=DATA_FLAGS)
    common.define_timing_flags(
        fv,
        warmup=4,
        what="batches",
        batches=(20, "Timed batches per window."),
        windows=(3, "Timed windows of each pipeline, in turn (median)."),
    )
    flags.DEFINE_bool("peer", True, "Also time the plain decode-resize-crop map.", flag_values=fv)


def main(argv=None):
    return common.command(argv, "input", define_flags, run)


def plain_dataset(source, size, resize, batch_size, epoch, uint8=False):
    """The peer: read, decode, shorter side to `resize`, a random `size` crop; nothing else.

    Same files in the same order as our epoch. Bilinear resize, float32 out (as ours);
    with `uint8`, rounded to uint8 (as ours with --augment_on device). Raw shards
    (`prepare --format raw`): the pixels reshaped, resized only if stored at another
    size than `resize`.
    """
    import numpy as np
    import tensorflow as tf

    from alexnet_tf.data import image_ops, pipeline

    def crop(contents, index):
        if source.raw_side:
            image = image_ops.raw_decode(contents, source.raw_side)
        else:
            image = tf.io.decode_image(contents, channels=3, expand_animations=False)
        if source.raw_side != resize:
            shape = tf.cast(tf.shape(image)[:2], tf.float32)
            new = tf.cast(tf.round(shape * resize / tf.reduce_min(shape)), tf.int32)
            image = tf.image.resize(image, tf.maximum(new, resize))
        seed = tf.stack([tf.cast(epoch, tf.int64), index])
        image = tf.image.stateless_random_crop(image, [size, size, 3], seed=seed)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8) if uint8 else image

    if source.kind == "files":
        order = pipeline.epoch_order(source.num_examples, 0, epoch)
        examples = tf.data.Dataset.from_tensor_slices(
            (source.paths[order], order.astype(np.int64))
        ).map(lambda path, index: (tf.io.read_file(path), index))
    else:
        features = {source.image_key: tf.io.FixedLenFeature([], tf.string)}
        examples = tf.data.TFRecordDataset(list(source.paths), num_parallel_reads=4)
        examples = examples.enumerate().map(
            lambda i, r: (tf.io.parse_single_example(r, features)[source.image_key], i)
        )
    images = examples.map(
        lambda contents, index: (crop(contents, index), index),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return images.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _window(stream_of, warmup, batches):
    """(images, seconds, CPU seconds) of `batches` batches of a fresh stream."""
    import tensorflow as tf

    stream = stream_of()
    for _ in range(warmup):
        next(stream)
    images, start, cpu_start = 0, time.perf_counter(), cpu_seconds()
    for _ in range(batches):
        batch, _ = next(stream)  # --augment_on device: (uint8 crops, indices)
        images += int(tf.nest.flatten(batch)[0].shape[0])
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    stream.close()  # stops its iterator: nothing prefetches while the other one is timed
    return images, seconds, cpu


def run(args, _):
    from alexnet_tf.data import device_augment

    cfg = data_config(args)
    device = device_augment.on_device(cfg)  # ours stops at the uint8 crop; so does plain
    source, stats = training_source(cfg)
    needed = (args.warmup + args.batches) * args.batch_size
    streams = {
        "ours": lambda: chained_epochs(
            lambda e: training_dataset(cfg, source, stats, args.batch_size, e),
            needed,
            source.num_examples,
        ),
    }
    if args.peer:
        streams["plain"] = lambda: chained_epochs(
            lambda e: plain_dataset(
                source, cfg.image_size, cfg.resize, args.batch_size, e, uint8=device
            ),
            needed,
            source.num_examples,
        )
    windows = {name: [] for name in streams}
    for _ in range(args.windows):  # in turn: both see the same machine
        for name, stream_of in streams.items():
            windows[name].append(_window(stream_of, args.warmup, args.batches))
    env = environment()

    def rates(name):
        return [n / s for n, s, _ in windows[name]], [n / c for n, _, c in windows[name]]

    wall, per_cpu = rates("ours")
    rate = statistics.median(wall)
    result = {
        "benchmark": "input",
        "images_per_sec": round(rate, 1),
        "images_per_sec_per_core": round(rate / env["cpu_count"], 1),
        # Images per CPU-second used: what one core does, unaffected by other load.
        "images_per_cpu_sec": round(statistics.median(per_cpu), 1),
        "window_images_per_sec": [round(r, 1) for r in wall],
    }
    if args.peer:
        plain_wall, plain_cpu = rates("plain")

        def ratio(ours, plain):  # the median of the windows' ratios: each pair saw one load
            return round(statistics.median(a / b for a, b in zip(ours, plain, strict=True)), 3)

        result.update(
            plain_images_per_sec=round(statistics.median(plain_wall), 1),
            plain_images_per_cpu_sec=round(statistics.median(plain_cpu), 1),
            vs_plain=ratio(wall, plain_wall),
            vs_plain_per_cpu_sec=ratio(per_cpu, plain_cpu),
        )
    result.update(
        # One window's (each starts a fresh epoch 0, so all time the same images).
        images=windows["ours"][0][0],
        seconds=round(statistics.median(s for _, s, _ in windows["ours"]), 2),
        batch_size=args.batch_size,
        image_size=cfg.image_size,
        resize=cfg.resize,
        source=f"{source.kind} {source.root} ({source.num_examples} images)",
        image_format=source.image_format,
        augment_on="device" if device else "host",
        fused_crop=cfg.fused_crop,
        antialias_below=cfg.antialias_below,
        mean=cfg.mean,
        normalize=cfg.normalize,
        pca_std=cfg.pca_std,
        **env,
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
    report(result, args.json)
    return 0
