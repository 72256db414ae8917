"""What every benchmark reports besides its own figures, and how it prints them."""

import json
import os
import platform
import resource
import sys


def environment():
    """Device, versions and threads the figures were measured with."""
    import tensorflow as tf

    threading = tf.config.threading
    gpus = tf.config.list_physical_devices("GPU")
    return {
        "device": f"{len(gpus)} GPU" if gpus else f"CPU ({platform.processor() or 'cpu'})",
        "cpu_count": os.cpu_count(),
        "tf_version": tf.__version__,
        "intra_op_threads": threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": threading.get_inter_op_parallelism_threads(),
    }


def cpu_seconds():
    """CPU time (user + system) of this process, all threads, so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb():
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(result, as_json):
    """A short table on stderr (stdout without --json), the JSON line on stdout."""
    table = "\n".join(f"{key:>20s}  {value}" for key, value in result.items())
    print(table, file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(result))


def training_batches(cfg, batch_size, full_only=False):
    """`(source, batches)`: cfg's train split (bad files left out) and an endless iterator
    of its training batches, epoch after epoch, as `input_pipeline.build_dataset` makes
    them (input statistics from a small sample: the benches time the work, not the
    numbers). `full_only` skips each epoch's last partial batch, as training does."""
    from alexnet_tf import file_check, input_pipeline, input_stats, sources

    source = file_check.without_bad_files(sources.load_source(cfg, "train"))
    stats = input_stats.compute_stats(source, resize=cfg.resize, max_images=64)

    def batches():
        epoch = 0
        while True:
            for images, labels in input_pipeline.build_dataset(
                cfg, source, training=True, batch_size=batch_size, stats=stats, epoch=epoch
            ):
                if not full_only or images.shape[0] == batch_size:
                    yield images, labels
            epoch += 1

    return source, batches()


def add_data_args(parser, batch_size):
    """The data flags of the benches that read files: where, what layout, batch and sizes."""
    parser.add_argument("--data_dir", help="data to read (default: the demo data)")
    parser.add_argument("--dataset", help="folder | imagenet2012 | tfrecord | demo")
    parser.add_argument("--batch_size", type=int, default=batch_size)
    parser.add_argument("--image_size", type=int, default=227)
    parser.add_argument("--resize", type=int, default=256)


def data_config(args, **changes):
    """A `DataConfig` from `add_data_args`' flags (the demo without --data_dir)."""
    import dataclasses

    from alexnet_tf.config import DataConfig

    return dataclasses.replace(
        DataConfig(),
        dataset=args.dataset or ("folder" if args.data_dir else "demo"),
        data_dir=args.data_dir,
        image_size=args.image_size,
        resize=args.resize,
        **changes,
    )
