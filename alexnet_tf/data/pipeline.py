"""The tf.data pipeline that training and evaluation call: sources in, batches out.

    inputs = prepare_inputs(cfg.data, model_dir)           # data.inputs: checks, stats; once
    ds = build_dataset(cfg.data, inputs.train, training=True, batch_size=128,
                       stats=inputs.stats, epoch=e, skip_batches=k, input_context=ctx)

Batches are `(images, labels)`: float32 (B, S, S, 3) -- (B, 10, S, S, 3) with
`crops=10` -- and int32 (B,); training with `--augment_on device` yields
`((crops uint8 (B, S, S, 3), example indices int64 (B,)), labels)`, augmented in the
training step (`device_augment`). This module orders, shards, reads and batches; what is done
to each image is `transforms`' (built on `image_ops`' pure functions):

- Order: the files of a split are permuted per epoch from (seed, epoch) (records: the
  shard files are, and a bounded buffer of still-encoded records is shuffled), so an epoch's
  order is a function of (seed, epoch) alone. Resuming at batch k skips k batches of file
  names before anything is read or decoded.
- Randomness: each example's crop, flip and lighting come from a stateless key of
  (seed, epoch, example index), the same whatever the parallelism.
- Sharding: with a `tf.distribute.InputContext` each input pipeline takes every k-th file
  of the epoch's order (records: every k-th shard file) before decoding and batches at the
  per-replica batch size (for `strategy.distribute_datasets_from_function`).
- Nothing is dropped silently: the last partial batch is kept; in training with several
  pipelines the order is padded to a multiple of their number with its own first few
  files, so every pipeline has the same number of batches. Evaluation yields every
  example exactly once (minus the bad files `prepare_inputs` reported). A file that still
  fails to decode is left out, named in the log and in `bad_files_<split>.json`, and
  counted (`map_or_drop`); `evaluation.score` checks the count against the allowance.
"""

import logging
import math

import numpy as np
import tensorflow as tf

from alexnet_tf.data import device_augment, file_check
from alexnet_tf.data.transforms import eval_transform, train_crop_transform, train_transform
from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)


def num_batches(source, batch_size, input_context=None, training=True):
    """Batches per epoch each input pipeline yields (evaluation: the most any yields).

    With an `input_context` these are per-replica batches: a global step takes
    `num_replicas_in_sync // num_input_pipelines` of them from each pipeline.
    """
    pipelines = input_context.num_input_pipelines if input_context else 1
    if input_context:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    return math.ceil(math.ceil(source.num_examples / pipelines) / batch_size)


def build_dataset(
    cfg,
    source,
    *,
    training,
    batch_size,
    stats,
    epoch=0,
    skip_batches=0,
    crops=1,
    input_context=None,
):
    """Batches of one epoch of `source` (a `source.Source`) preprocessed as `cfg` says.

    `training`: random crop, flip and PCA lighting in a per-epoch order; else the centre
    crop (`crops=1`) or the paper's 10 crops (`crops=10`) in file order. `batch_size` is
    global; with `input_context` each pipeline yields per-replica batches of its shard.
    `skip_batches` resumes mid-epoch: the result equals the unskipped epoch's tail. It
    counts this pipeline's batches (per-replica batches with an `input_context`: global
    steps done times `num_replicas_in_sync // num_input_pipelines`).
    """
    if crops not in (1, 10):
        raise UserError(f"--crops {crops} is not 1 or 10")
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    _check_sizes(cfg, source)
    skip = skip_batches * batch_size
    if source.kind == "files":
        examples, paths = _file_examples(source, training, cfg.seed, epoch, input_context)
        names = paths[skip:]
    else:
        examples = _record_examples(cfg, source, training, epoch, input_context)
        pipeline = input_context.input_pipeline_id if input_context else 0
        names = _RecordNames(source, f"pipeline {pipeline}, epoch {epoch}", skip)
    examples = examples.skip(skip)  # before reading or decoding
    if training and device_augment.on_device(cfg):  # uint8 crops and indices
        fn = train_crop_transform(cfg, epoch, raw_side=source.raw_side)
    elif training:
        fn = train_transform(cfg, stats, epoch, raw_side=source.raw_side)
    else:
        fn = eval_transform(cfg, stats, crops, raw_side=source.raw_side)
    read = tf.io.read_file if source.kind == "files" else tf.identity
    # Safety net for a file the pre-check passed but TF cannot decode: left out, named.
    dataset = map_or_drop(
        examples, lambda ref, label, index: (fn(read(ref), index), label), source, names, batch_size
    )
    dataset = dataset.map(_label_checker(source)).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = True
    return dataset.with_options(options)


def decoded_images(source, fn, *, max_images=0, seed=0, batch_size=64):
    """Batches of `fn(contents)` of `source`'s images (a deterministic sample of
    `max_images`; 0: all), in order; an image `fn` fails on is left out and named
    (`map_or_drop`). -> (dataset, number of images planned).
    """
    if source.kind == "files":
        index = np.arange(source.num_examples)
        if 0 < max_images < source.num_examples:
            index = np.sort(np.random.default_rng(seed).choice(index, max_images, replace=False))
        names = source.paths[index]
        examples = tf.data.Dataset.from_tensor_slices(names).map(lambda path: (path, 0, 0))
        read, planned = tf.io.read_file, len(index)
    else:
        records = tf.data.TFRecordDataset(list(source.paths), num_parallel_reads=4)
        if max_images > 0:
            records = records.take(max_images)
        parse = _record_parser(source)
        examples = records.map(lambda r: (*parse(r), 0))
        names = _RecordNames(source, "statistics", 0)
        read = tf.identity
        planned = source.num_examples if max_images <= 0 else min(max_images, source.num_examples)
    images = map_or_drop(
        examples, lambda ref, label, index: fn(read(ref)), source, names, batch_size
    )
    return images, planned


def map_or_drop(examples, fn, source, names, batch_size):
    """`examples.map(fn).batch(batch_size)` without the examples `fn` fails on, each named.

    `examples` yields `(ref, label, index)`; `names[p]` names the example at position p of
    the stream (a file's path). `Dataset.ignore_errors` drops a failing example without
    saying which, so each example carries its position through the map and the error
    filter, and a gap in a batch's positions names the examples dropped there; an empty
    batch after the last one closes the last gap (when `len(names)` is known). Each is
    passed to `file_check.record_dropped` (log, report, count). Good examples come out
    exactly as before, in the same batches; the check costs a few ops per batch, and
    only a gap calls into Python.
    """
    reason = "TF cannot decode it"
    total = len(names) if hasattr(names, "__len__") else -1  # -1: not known

    def report(expected, positions):
        positions = positions.numpy().tolist()
        stop = positions[-1] + 1 if positions else total  # an empty batch ends the stream
        for position in sorted(set(range(int(expected), stop)) - set(positions)):
            file_check.record_dropped(source, str(names[position]), reason)
        return True

    numbered = examples.enumerate().map(
        lambda position, example: (fn(*example), position),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    batches = numbered.ignore_errors().batch(batch_size, drop_remainder=False)
    end = tf.nest.map_structure(
        lambda spec: tf.zeros([0, *spec.shape[1:]], spec.dtype), batches.element_spec
    )
    batches = batches.concatenate(tf.data.Dataset.from_tensors(end))

    def gaps(expected, batch):  # expected: the position that should come next
        out, positions = batch
        size = tf.size(positions, tf.int64)
        whole = tf.logical_and(
            tf.reduce_all(tf.equal(positions, expected + tf.range(size))),
            tf.logical_or(size > 0, tf.logical_or(total < 0, expected >= total)),
        )
        reported = tf.cond(
            whole, lambda: True, lambda: tf.py_function(report, [expected, positions], tf.bool)
        )
        following = tf.cond(size > 0, lambda: positions[-1] + 1, lambda: expected)
        return following, (out, reported, size)

    checked = batches.scan(tf.constant(0, tf.int64), gaps)
    checked = checked.filter(lambda out, reported, size: tf.logical_and(reported, size > 0))
    return checked.map(lambda out, reported, size: out)


class _RecordNames:
    """`names[p]` for records: which record of which stream (records have no file name).

    Their number per stream is not known, so a record dropped at the very end of a stream
    is not named (the scoring count check still counts it)."""

    def __init__(self, source, stream, skipped):
        self.source, self.stream, self.skipped = source, stream, skipped

    def __getitem__(self, position):
        return f"{self.source.root}: record {position + self.skipped} of the {self.stream} stream"


# ------------------------------------------------------------------------- example order


def epoch_order(num_examples, seed, epoch):
    """The training order of one epoch: a permutation keyed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 0xA1E7]).permutation(num_examples)


def shard_order(order, input_context, training):
    """This pipeline's part of `order`: every k-th example (training: padded first)."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return order
    pipelines = input_context.num_input_pipelines
    if training and len(order) % pipelines:
        # Equal shards: repeat the epoch's first few examples rather than drop any.
        order = np.concatenate([order, order[: pipelines - len(order) % pipelines]])
    return order[input_context.input_pipeline_id :: pipelines]


def _file_examples(source, training, seed, epoch, input_context):
    """(path, label, file index) in the epoch's order, this pipeline's shard; not yet read.

    -> (dataset, the paths in its order)."""
    order = epoch_order(source.num_examples, seed, epoch) if training else None
    if order is None:
        order = np.arange(source.num_examples)
    order = shard_order(order, input_context, training)
    examples = tf.data.Dataset.from_tensor_slices(
        (source.paths[order], source.labels[order], order.astype(np.int64))
    )
    return examples, source.paths[order]


def _record_examples(cfg, source, training, epoch, input_context):
    """(encoded image, label, position) from TFRecord shards, this pipeline's part."""
    files = source.paths
    if training:
        files = files[epoch_order(len(files), cfg.seed, epoch)]
    pipelines = input_context.num_input_pipelines if input_context else 1
    shard_files = pipelines > 1 and len(files) >= pipelines
    if shard_files:
        files = files[input_context.input_pipeline_id :: pipelines]
    records = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8) if training else 1,  # evaluation: in file order
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if pipelines > 1 and not shard_files:
        records = records.shard(pipelines, input_context.input_pipeline_id)
    if training:
        shuffle_seed = int(np.random.default_rng([cfg.seed, epoch, 0x5F]).integers(2**31))
        records = records.shuffle(cfg.shuffle_buffer, seed=shuffle_seed)
    parse = _record_parser(source)
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    # Key randomness by position in this pipeline's stream (records have no file index).
    return records.enumerate().map(
        lambda position, record: (*parse(record), position * pipelines + pipeline_id)
    )


def _record_parser(source):
    features = {
        source.image_key: tf.io.FixedLenFeature([], tf.string),
        source.label_key: tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        label = tf.cast(example[source.label_key] - source.label_offset, tf.int32)
        return example[source.image_key], label

    return parse


def _label_checker(source):
    """Out-of-range labels (e.g. a wrong label offset) stop the run with the source named."""
    if source.kind == "files":
        return lambda image, label: (image, label)
    message = (
        f"labels of {source.root} minus offset {source.label_offset} fall outside "
        f"[0, {source.num_classes}): check --label_offset"
    )

    def check(image, label):  # a batch: not in the map, whose errors drop the example
        ok = tf.reduce_all(tf.logical_and(label >= 0, label < source.num_classes))
        with tf.control_dependencies([tf.debugging.Assert(ok, [message, label])]):
            return image, tf.identity(label)

    return check


def _check_sizes(cfg, source):
    if not 0 < cfg.image_size <= cfg.resize:
        raise UserError(f"--image_size {cfg.image_size} must be in 1..--resize {cfg.resize}")
    if source.resize and source.resize < cfg.resize:
        log.warning(
            "%s was prepared at %d px, smaller than --resize %d: images are upscaled",
            source.root,
            source.resize,
            cfg.resize,
        )
