"""`python -m alexnet_tf.bench input`: images/s of the training input pipeline.

Measures `pipeline.build_dataset(training=True)` exactly as training uses it:
read, decode, resize, random crop, flip, PCA lighting, mean subtraction and scaling,
batching. Nothing decoded is cached: every timed batch reads and decodes its files
afresh (the OS page cache still holds the files, as it would after the first epoch).
Timing starts after `--warmup` batches and covers `--batches` batches; when the data is
smaller than that, the next epoch (a new order) follows, as in training. Besides wall
time it reports `images_per_cpu_sec` (images per CPU-second of all threads), the
per-core rate, which other processes on a shared machine disturb much less.
"""

import time

from alexnet_tf.bench import common
from alexnet_tf.bench.common import (
    cpu_seconds,
    data_config,
    environment,
    peak_rss_mb,
    report,
    training_batches,
)

# Its data flags: what the others read, and the preprocessing timed.
DATA_FLAGS = (*common.DATA_FLAGS, "mean", "normalize", "pca_std", "fused_crop", "antialias_below")


def define_flags(fv):
    common.define_data_flags(fv, batch_size=128, only=DATA_FLAGS)
    common.define_timing_flags(fv, warmup=4, what="batches", batches=(20, "Timed batches."))


def main(argv=None):
    return common.command(argv, "input", define_flags, run)


def run(args, _):
    cfg = data_config(args)
    source, stream = training_batches(cfg, args.batch_size)
    for _ in range(args.warmup):
        next(stream)
    images, start, cpu_start = 0, time.perf_counter(), cpu_seconds()
    for _ in range(args.batches):
        batch, _ = next(stream)
        images += int(batch.shape[0])
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    env = environment()
    rate = images / seconds
    report(
        {
            "benchmark": "input",
            "images_per_sec": round(rate, 1),
            "images_per_sec_per_core": round(rate / env["cpu_count"], 1),
            # Images per CPU-second used: what one core does, unaffected by other load.
            "images_per_cpu_sec": round(images / cpu, 1),
            "images": images,
            "seconds": round(seconds, 2),
            "batch_size": args.batch_size,
            "image_size": cfg.image_size,
            "resize": cfg.resize,
            "source": f"{source.kind} {source.root} ({source.num_examples} images)",
            "fused_crop": cfg.fused_crop,
            "antialias_below": cfg.antialias_below,
            "mean": cfg.mean,
            "normalize": cfg.normalize,
            "pca_std": cfg.pca_std,
            **env,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
        args.json,
    )
    return 0
