"""What every benchmark reports besides its own figures, and how it prints them."""

import json
import os
import resource
import sys

from absl import flags

from alexnet_tf.bench.machine import machine
from alexnet_tf.cli import app, configs, options


def environment():
    """Machine, device, versions and threads the figures were measured with."""
    import tensorflow as tf

    threading = tf.config.threading
    gpus = tf.config.list_physical_devices("GPU")
    return {
        **machine(),
        "device": f"{len(gpus)} GPU" if gpus else "CPU",
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
    """`(source, stats, batches)`: cfg's train split (bad files left out), its input
    statistics and an endless iterator
    of its training batches, epoch after epoch, as `pipeline.build_dataset` makes
    them (input statistics from a small sample: the benches time the work, not the
    numbers). `full_only` skips each epoch's last partial batch, as training does."""
    source, stats = training_source(cfg)
    return (
        source,
        stats,
        epochs(
            lambda epoch: training_dataset(cfg, source, stats, batch_size, epoch),
            only_size=batch_size if full_only else None,
        ),
    )


def training_source(cfg):
    """cfg's train split without its bad files, and input statistics of a small sample."""
    from alexnet_tf.data import file_check, layouts, statistics

    source = file_check.without_bad_files(layouts.load_source(cfg, "train"))
    return source, statistics.compute_stats(source, resize=cfg.resize, max_images=64)


def training_dataset(cfg, source, stats, batch_size, epoch):
    """One epoch of training batches exactly as training builds them."""
    from alexnet_tf.data import pipeline

    return pipeline.build_dataset(
        cfg, source, training=True, batch_size=batch_size, stats=stats, epoch=epoch
    )


def epochs(dataset_of_epoch, only_size=None):
    """Endless `(images, labels)` batches of `dataset_of_epoch(0)`, then of epoch 1, ...;
    with `only_size`, only the batches of that many images (no partial last batch).
    Each epoch's iterator is deleted off the main thread, as training does."""
    from alexnet_tf.data.iterators import torn_down_in_background

    epoch = 0
    while True:
        for images, labels in torn_down_in_background(dataset_of_epoch(epoch)):
            # images: (uint8 crops, indices) with --augment_on device
            if only_size is None or labels.shape[0] == only_size:
                yield images, labels
        epoch += 1


def chained_epochs(dataset_of_epoch, images, epoch_size):
    """Batches of `dataset_of_epoch(0)`, then of epoch 1, ..., at least `images` images,
    through one iterator: the epochs are concatenated inside tf.data, so the stream
    runs as one long epoch does, with no pipeline started afresh at each small epoch's
    end. Its iterator is deleted off the main thread when the stream is closed."""
    import functools

    from alexnet_tf.data.iterators import torn_down_in_background

    count = images // epoch_size + 1
    datasets = (dataset_of_epoch(epoch) for epoch in range(count))
    return torn_down_in_background(functools.reduce(lambda a, b: a.concatenate(b), datasets))


# The data flags of the benches that read files (`input` adds its preprocessing flags).
DATA_FLAGS = ("data_dir", "dataset", "image_size", "resize")


def define_batch_size_flag(fv, default, help="Images per batch."):
    flags.DEFINE_integer("batch_size", default, help, flag_values=fv, lower_bound=1)


def define_data_flags(fv, batch_size, only=DATA_FLAGS):
    """The data flags of a bench that reads files (cli's, the demo without --data_dir)
    and its --batch_size."""
    options.define_data_flags(fv, only=only)
    define_batch_size_flag(fv, batch_size)


def define_timing_flags(fv, *, warmup, what, **counts):
    """--warmup (untimed `what` first), --json, and each of `counts`: name=(default, help)."""
    flags.DEFINE_integer(
        "warmup", warmup, f"Untimed {what} of each first.", flag_values=fv, lower_bound=0
    )
    for name, (default, help) in counts.items():
        flags.DEFINE_integer(name, default, help, flag_values=fv, lower_bound=1)
    flags.DEFINE_bool("json", False, "Print one JSON line.", flag_values=fv)


def data_config(fv):
    """The `DataConfig` of `define_data_flags`' flags, checked as train.py checks them."""
    return configs.data_config(fv)


def command(argv, subcommand, define, main):
    """Run `python -m alexnet_tf.bench SUBCOMMAND` with `argv` (`app.command`)."""
    argv = sys.argv[2:] if argv is None else argv
    return app.command(argv, f"python -m alexnet_tf.bench {subcommand}", define, main)
