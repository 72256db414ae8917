"""Scoring a model on a split: the loop shared by validation during training and evaluate.py.

`score` runs `steps.make_eval_step` over the split's batches under the run's strategy and
sums what the step counts, so every image counts exactly once whatever the number of
replicas; it returns accuracies as fractions of the images actually scored.
"""

import numpy as np

from alexnet_tf.input_pipeline import build_dataset, num_batches
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
):
    """`{top1, top5, loss, count, class_count, class_top1}` of `source` under `eval_step`.

    `max_batches` caps the batches (quick runs; then not every image is scored).
    `progress_seconds` prints a progress line that often (None: silent).
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
    for index, (images, labels) in enumerate(dataset):
        if max_batches and index == max_batches:
            break
        result = {k: v.numpy().astype(np.float64) for k, v in eval_step(images, labels).items()}
        sums = result if sums is None else {k: sums[k] + result[k] for k in sums}
        if progress:
            progress.update(index + 1, int(result["count"]))
    if sums is None:
        raise ValueError(f"{source.root}: no images to score")
    count = sums["count"]
    return {
        "top1": sums["top1"] / count,
        "top5": sums["top5"] / count,
        "loss": sums["loss"] / count,
        "count": int(count),
        "crops": crops,
        "class_count": sums["class_count"].astype(np.int64),
        "class_top1": sums["class_top1"].astype(np.int64),
    }
