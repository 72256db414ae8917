"""Scoring a model on a split: the loop shared by validation during training and evaluate.py.

`score` runs `eval_step.make_eval_step` over the split's batches under the run's strategy and
sums what the step counts, so every image counts exactly once whatever the number of
replicas; it returns accuracies as fractions of the images actually scored.

It then checks that count (`check_count`): an image that fails to decode while scoring is
left out (and named by the pipeline), and more of them than `--max_bad_fraction` of the
images planned stops validation and evaluation alike with one line.
"""

import math

import numpy as np

from alexnet_tf.data.file_check import report_file
from alexnet_tf.data.iterators import torn_down_in_background
from alexnet_tf.data.pipeline import build_dataset, num_batches
from alexnet_tf.errors import UserError
from alexnet_tf.progress import Progress


def score(
    eval_step,
    strategy,
    data_cfg,
    source,
    stats,
    *,
    crops=1,
    batch_size=128,
    max_batches=None,
    progress_seconds=None,
    label="val",
    after_batch=None,
):
    """`{top1, top5, loss, count, dropped, class_count, class_top1}` of `source`.

    `max_batches` caps the batches (quick runs; then not every image is scored).
    `progress_seconds` prints a progress line that often (None: silent).
    `after_batch()` runs after each batch; training passes its stop-signal check.
    Raises `UserError` if more images failed to decode than `data_cfg.max_bad_fraction`
    allows (`check_count`); `dropped` is how many did.
    """

    def dataset_fn(input_context):
        return build_dataset(
            data_cfg,
            source,
            training=False,
            batch_size=batch_size,
            stats=stats,
            crops=crops,
            input_context=input_context,
        )

    dataset = strategy.distribute_datasets_from_function(dataset_fn)
    total = num_batches(source, batch_size)
    if max_batches:
        total = min(total, max_batches)
    progress = Progress(label, total, progress_seconds) if progress_seconds is not None else None
    sums = None
    for index, (images, labels) in enumerate(torn_down_in_background(dataset)):
        if max_batches and index == max_batches:
            break
        result = {k: v.numpy().astype(np.float64) for k, v in eval_step(images, labels).items()}
        sums = result if sums is None else {k: sums[k] + result[k] for k in sums}
        if progress:
            progress.update(index + 1, int(result["count"]))
        if after_batch is not None:
            after_batch()
    planned = planned_count(source, batch_size, max_batches)
    count = 0 if sums is None else int(sums["count"])
    check_count(count, planned, source, data_cfg.max_bad_fraction, label)
    return {
        "top1": sums["top1"] / count,
        "top5": sums["top5"] / count,
        "loss": sums["loss"] / count,
        "count": count,
        "dropped": planned - count,
        "crops": crops,
        "class_count": sums["class_count"].astype(np.int64),
        "class_top1": sums["class_top1"].astype(np.int64),
    }


def planned_count(source, batch_size, max_batches=None):
    """The images `score` means to score: all of `source`, or `max_batches` global batches."""
    if max_batches:
        return min(max_batches * batch_size, source.num_examples)
    return source.num_examples


def check_count(count, planned, source, max_bad_fraction, label="val"):
    """`count` images scored of `planned`: a shortfall beyond the allowance is a UserError.

    The allowance is the bad-file check's: `max_bad_fraction` of the images planned
    (rounded down), so with the default 0.001 and fewer than 1000 images, none. The images
    missing are those that failed to decode while scoring; the pipeline has named each.
    """
    missing = planned - count
    if count > 0 and missing <= math.floor(max_bad_fraction * planned):
        return
    where = (
        f", listed in {report_file(source.report_dir, source.split)}" if source.report_dir else ""
    )
    raise UserError(
        f"{label}: scored {count} of the {planned} images of {source.root} planned: {missing} "
        f"failed to decode while scoring (named above{where}), more than --max_bad_fraction "
        f"{max_bad_fraction} allows; --check_files decode finds such files before scoring "
        "and leaves them out"
    )
