"""Scoring a trained model on the validation split: the one function `evaluate.py` calls.

`evaluate(cfg)` scores the model `cfg.eval` names (`model_files`) with the paper's test
protocol by default (Sec. 4.1: 10 crops, softmax averaged; `crops=1`: the centre crop),
on the validation split of the same sources training reads, with the run's own
preprocessing (run.json) and input statistics (input_stats.npz). It reuses training's
scoring loop (`evaluation.score`), so a number here means what a validation number in
training means, and the same count check: each image is scored once, and no more fail to
decode while scoring than the bad-file allowance (`--max_bad_fraction`).

Order of work, so that every mistake shows before anything heavy:
model files found -> devices and strategy -> data listed, bad files, statistics ->
model loaded and checked against the data -> scoring and its count check -> table, JSON.
"""

import logging
import os
import sys
import tempfile
import time

import keras
import tensorflow as tf

from alexnet_tf.data.file_check import drop_bad_files, report_file
from alexnet_tf.data.layouts import load_source
from alexnet_tf.data.publisher_ops import describe
from alexnet_tf.data.statistics import STATS_FILE, load_stats
from alexnet_tf.distribute.strategies import check_batch_size, configure_cpu_devices, make_placement
from alexnet_tf.errors import UserError
from alexnet_tf.evaluation import class_names, model_files, report
from alexnet_tf.evaluation.eval_step import make_eval_step
from alexnet_tf.evaluation.scoring import score

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 10.0  # between progress lines while scoring


def evaluate(cfg, stream=None):
    """Scores `cfg.eval`'s model on `cfg.data`'s validation split; returns the JSON report.

    Prints the comparison table (and a summary) to `stream` (stdout), progress lines to
    stderr, and writes `cfg.eval.output` if set. Raises `UserError` for the user's mistakes:
    no model, a model that does not fit the data, images that could not all be scored.
    """
    stream = stream or sys.stdout
    e = cfg.eval
    folder = model_files.model_folder(e.model_dir, e.model_path)
    run = model_files.read_run(folder)
    kind, path = model_files.find_model(e, run)
    if e.output:
        _check_writable(e.output)
    configure_cpu_devices(e.cpu_devices)
    placement = make_placement(_strategy_kind(e.strategy))
    check_batch_size(e.batch_size, placement)

    listed = load_source(cfg.data, "val")
    # The bad-file report goes beside the model, or to a temporary folder if that is read-only.
    reports = folder if os.access(folder, os.W_OK) else tempfile.gettempdir()
    source = drop_bad_files(
        listed, reports, mode=cfg.data.check_files, max_bad_fraction=cfg.data.max_bad_fraction
    )
    stats = load_stats(folder)
    if cfg.data.mean == "pixel" and stats.resize != cfg.data.resize:
        raise UserError(
            f"--resize {cfg.data.resize} differs from the {stats.resize} of the mean image in "
            f"{os.path.join(folder, STATS_FILE)}"
        )
    num_classes = len(run.class_names) if run.class_names else source.num_classes
    model = model_files.load_model(kind, path, run, num_classes)
    _check_fits(model, path, cfg.data.image_size, source, run)
    strategy = placement.strategy
    if placement.replicas > 1:
        model = replicated(model, strategy)

    print(
        f"scoring {path}\n  on {source.num_examples} images of {source.root}: "
        f"{report.protocol(e.crops)} ({e.crops} forward pass{'es' if e.crops > 1 else ''} "
        f"per image), batch {e.batch_size}, {placement.kind} ({placement.replicas} "
        f"replica{'s' if placement.replicas > 1 else ''})\n  preprocessing "
        f"{describe(cfg.data.eval_preprocessing, cfg.data.resize, cfg.data.image_size)}",
        file=stream,
        flush=True,
    )
    start = time.monotonic()
    result = score(
        make_eval_step(model, strategy),
        strategy,
        cfg.data,
        source,
        stats,
        crops=e.crops,
        batch_size=e.batch_size,
        progress_seconds=PROGRESS_SECONDS,
        label=f"evaluate {report.protocol(e.crops)}",
    )
    seconds = time.monotonic() - start  # `score` has checked the count
    result["num_classes"] = source.num_classes

    data_dir = cfg.data.data_dir
    parent = os.path.dirname(os.path.abspath(data_dir)) if data_dir else None
    readable = class_names.readable_names(source.class_names, (folder, data_dir, parent))
    skipped = listed.num_examples - source.num_examples + result["dropped"]
    out = report.to_json(
        result,
        source.class_names,
        readable,
        model=path,
        model_kind=kind,
        data=source.root,
        dataset=cfg.data.dataset,
        image_size=cfg.data.image_size,
        resize=cfg.data.resize,
        batch_size=e.batch_size,
        strategy=placement.kind,
        replicas=placement.replicas,
        skipped_bad_files=skipped,
        seconds=round(seconds, 3),
        images_per_sec=round(result["count"] / seconds, 2) if seconds > 0 else None,
        imported_family=run.imported_family,
        preprocessing=cfg.data.eval_preprocessing,
    )
    every = f"all {listed.num_examples} listed"
    if skipped:
        every += f" less {skipped} bad file(s) in {report_file(reports, source.split)}"
    print(
        f"scored {result['count']} images, each exactly once ({every}) in {seconds:.1f} s, "
        f"{out['images_per_sec']} images/s\n",
        file=stream,
    )
    print(
        "\n".join(report.comparison_table(result, family=run.imported_family)),
        file=stream,
        flush=True,
    )
    if e.output:
        print(f"\nwrote {report.write_json(e.output, out)}", file=stream, flush=True)
    return out


def _strategy_kind(kind):
    """evaluate.py's strategies: `auto` is mirrored with two or more GPUs, else one device."""
    if kind not in ("auto", "one_device", "mirrored"):
        raise UserError(f"--strategy {kind} is not one of auto, one_device, mirrored")
    if kind == "auto":
        return "mirrored" if len(tf.config.list_physical_devices("GPU")) >= 2 else "one_device"
    return kind


def _check_writable(path):
    """`--output` must be writable, which is known before scoring, not after."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UserError(f"--output {path}: cannot create {folder}: {err.strerror}") from None
    if os.path.isdir(path) or not os.access(folder, os.W_OK):
        raise UserError(f"--output {path} is not a writable file path")


def _check_fits(model, path, image_size, source, run):
    """The model must take `image_size` images and predict the data's classes."""
    classes = model.output_shape[-1]
    if classes != source.num_classes:
        raise UserError(
            f"{path} predicts {classes} classes but {source.root} has {source.num_classes}"
        )
    size = model.input_shape[1]
    if size != image_size:
        raise UserError(f"--image_size {image_size} does not fit {path}, which takes {size} px")
    if run.class_names and tuple(run.class_names) != tuple(source.class_names):
        differ = [
            f"{a}/{b}" for a, b in zip(run.class_names, source.class_names, strict=True) if a != b
        ]
        log.warning(
            "the classes of %s differ from the run's classes.json (%s ...): scores assume "
            "the same class order",
            source.root,
            ", ".join(differ[:3]),
        )


def replicated(model, strategy):
    """A copy of `model` whose variables `strategy` mirrors on each of its replicas."""
    with strategy.scope():
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
