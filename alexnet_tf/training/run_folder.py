"""The run folder: run.json and resuming with the same settings, history.json, and the
finished run's model, export and result.json."""

import json
import logging
import os

from alexnet_tf import config as config_lib
from alexnet_tf.atomic import write_json
from alexnet_tf.commands import evaluate_command
from alexnet_tf.errors import UserError
from alexnet_tf.evaluation import export

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
HISTORY_FILE = "history.json"  # one entry per finished epoch: train and val figures
# Settings a resumed run must share with the run it continues, or its steps
# would not continue the same sequence of batches.
RESUME_KEYS = {
    "data": ("dataset", "image_size", "resize", "mean", "normalize", "seed"),
    "model": ("lrn", "init", "groups", "pool_size", "dropout"),
    "train": ("batch_size", "steps_per_epoch", "mixed_precision", "deterministic"),
}


# run.json's key for the identity of each split's files (`data.identity`).
DATA_FILES = "data_files"


def run_record(cfg, placement, files=None):
    """What run.json records: the config, the layout of the checkpoints' variables and
    the identity of the data (`Inputs.files`)."""
    record = config_lib.to_dict(cfg)
    record["layout"] = "towers" if placement.tower_devices else "plain"
    if files is not None:
        record[DATA_FILES] = files
    return record


def recorded_files(model_dir):
    """The data identity in `model_dir`'s run.json, for `prepare_inputs` to compare;
    None for a new run, or for a run.json written before it was recorded (said so)."""
    path = os.path.join(model_dir, config_lib.RUN_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        files = json.load(f).get(DATA_FILES)
    if files is None:
        log.info(
            "%s does not record which files the run trained on (an older version wrote "
            "it): resuming without checking that the data is the same; recorded from now on",
            path,
        )
    return files


def check_run_folder(cfg, placement):
    """Resuming needs the same settings as the run.json there; creates the folder (chief).

    Returns whether the folder was created now. run.json is written once the data is
    checked (`_train`), so a mistake in the data leaves no run behind.
    """
    model_dir = cfg.train.model_dir
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise UserError(f"--model_dir {model_dir} is a file, not a folder")
    path = os.path.join(model_dir, config_lib.RUN_FILE)
    record = run_record(cfg, placement)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous.get("layout") != record["layout"]:
            raise UserError(
                f"--model_dir {model_dir} holds a {previous.get('layout')} run; --strategy "
                f"{cfg.train.strategy} would need a {record['layout']} one (use a new --model_dir)"
            )
        for section, keys in RESUME_KEYS.items():
            for key in keys:
                # A key the run's version did not record has its default value.
                default = getattr(getattr(config_lib.Config(), section), key)
                old = previous.get(section, {}).get(key, default)
                new = record[section][key]
                if old != new:
                    raise UserError(
                        f"--model_dir {model_dir} was trained with {key}={old!r}, not {new!r}: "
                        "resume with the same settings or use a new --model_dir"
                    )
    created = not os.path.isdir(model_dir)
    if placement.is_chief:
        try:
            os.makedirs(model_dir, exist_ok=True)
        except OSError as err:
            raise UserError(f"--model_dir {model_dir} cannot be created: {err.strerror}") from None
    return created


def finished_result(cfg):
    """The validation result of a run that already trained `cfg.train.epochs` epochs (or
    more) and wrote its model, after saying so; None for a run still to train."""
    model_dir = cfg.train.model_dir
    path = os.path.join(model_dir, RESULT_FILE)
    model = os.path.join(model_dir, export.MODEL_FILE)
    if not (os.path.isfile(path) and os.path.isfile(model)):
        return None
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    if result.get("epochs", 0) < cfg.train.epochs:
        return None  # a longer run: go on from the last checkpoint
    print(
        f"{model_dir} has already finished its {result['epochs']} epochs: val top-1 "
        f"{result['val_top1']:.1%}, top-5 {result['val_top5']:.1%} on {result['val_count']} "
        f"images after {result['steps']} steps. Nothing was changed.\n"
        f"  model:       {model}\n"
        f"  next:        {evaluate_command()} --model_dir {model_dir}\n"
        "  to train on: the same command with a larger --epochs",
        flush=True,
    )
    return {
        "top1": result["val_top1"],
        "top5": result["val_top5"],
        "loss": result["val_loss"],
        "count": result["val_count"],
    }


def record_epoch(model_dir, epoch, steps, totals, val, lr):
    """The epoch's figures into history.json (an epoch run again replaces its entry)."""
    path = os.path.join(model_dir, HISTORY_FILE)
    history = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            history = [e for e in json.load(f) if e["epoch"] < epoch + 1]
    history.append(
        {
            "epoch": epoch + 1,
            "steps": steps,
            "train_loss": totals.mean("loss") if totals.count else None,
            "train_top1": totals.rate("top1") if totals.count else None,
            "train_top5": totals.rate("top5") if totals.count else None,
            "val_loss": val["loss"],
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "val_count": val["count"],
            "learning_rate": lr,
        }
    )
    write_json(path, history)


def finish(cfg, placement, model, inputs, val, steps):
    """Final model, SavedModel export and a summary line (chief only)."""
    if not placement.is_chief:
        return
    model_dir = cfg.train.model_dir
    plain = export.plain_copy(model, cfg.model, inputs.num_classes, cfg.data.image_size)
    path = export.save_keras(plain, model_dir)
    export.save_class_names(inputs.val.class_names, model_dir)
    saved = export.export_saved_model(
        plain, cfg.data, inputs.stats, inputs.val.class_names, model_dir
    )
    result = {
        "val_top1": val["top1"],
        "val_top5": val["top5"],
        "val_loss": val["loss"],
        "val_count": val["count"],
        "steps": steps,
        "epochs": cfg.train.epochs,
    }
    write_json(os.path.join(model_dir, RESULT_FILE), result)
    chance = 1.0 / inputs.num_classes
    print(
        f"\nfinished: val top-1 {val['top1']:.1%} (chance {chance:.1%}), top-5 "
        f"{val['top5']:.1%} on {val['count']} images after {steps} steps\n"
        f"  model:       {path}\n  SavedModel:  {saved}\n"
        f"  TensorBoard: tensorboard --logdir {model_dir}\n"
        f"  next:        {evaluate_command()} --model_dir {model_dir}"
        + (f" --data_dir {cfg.data.data_dir}" if cfg.data.data_dir else ""),
        flush=True,
    )
