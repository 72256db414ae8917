"""`python -m alexnet_tf.bench input`: images/s of the training input pipeline.

Measures `input_pipeline.build_dataset(training=True)` exactly as training uses it:
read, decode, resize, random crop, flip, PCA lighting, mean subtraction and scaling,
batching. Nothing decoded is cached: every timed batch reads and decodes its files
afresh (the OS page cache still holds the files, as it would after the first epoch).
Timing starts after `--warmup` batches and covers `--batches` batches; when the data is
smaller than that, the next epoch (a new order) follows, as in training. Besides wall
time it reports `images_per_cpu_sec` (images per CPU-second of all threads), the
per-core rate, which other processes on a shared machine disturb much less.
"""

import argparse
import time

from alexnet_tf.bench.common import (
    add_data_args,
    cpu_seconds,
    data_config,
    environment,
    peak_rss_mb,
    report,
    training_batches,
)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m alexnet_tf.bench input", description=__doc__)
    add_data_args(p, batch_size=128)
    p.add_argument("--batches", type=int, default=20, help="timed batches")
    p.add_argument("--warmup", type=int, default=4, help="batches before timing")
    p.add_argument("--mean", default="pixel", choices=["pixel", "channel"])
    p.add_argument("--normalize", default="standardize", choices=["standardize", "paper"])
    p.add_argument("--pca_std", type=float, default=0.1)
    p.add_argument("--no_fused_crop", action="store_true", help="decode whole images")
    p.add_argument("--antialias_below", type=float, default=0.5)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)

    cfg = data_config(
        args,
        mean=args.mean,
        normalize=args.normalize,
        pca_std=args.pca_std,
        fused_crop=not args.no_fused_crop,
        antialias_below=args.antialias_below,
    )
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
