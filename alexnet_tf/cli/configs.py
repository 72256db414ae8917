"""Flags -> `Config`: each command's flags read back and checked, as one config object.

A value the user got wrong is a `UserError` naming the flag (one line, exit status 2).
"""

import dataclasses
import logging
import os

from alexnet_tf.cli.options import DEMO_DEFAULTS, FLAGS
from alexnet_tf.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from alexnet_tf.data.service import check_address
from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)

# The paper's resize for its 227-px crop: 256. Unless --resize is given, the resize keeps
# this ratio to --image_size (76 at 67), so a crop sees as much of the image as the paper's.
PAPER_RESIZE_RATIO = 256 / 227


def resize_for(image_size):
    """The shorter side an image is scaled to for an `image_size` crop, at the paper's ratio."""
    return round(image_size * PAPER_RESIZE_RATIO)


def _value(fv, name, demo):
    """The flag's value; for the demo, its demo default unless the user set it."""
    if demo and name in DEMO_DEFAULTS and not fv[name].present:
        return DEMO_DEFAULTS[name]
    return fv[name].value


def _is_demo(fv):
    return (fv.dataset or ("folder" if fv.data_dir else "demo")) == "demo"


def data_config(fv=FLAGS, *, demo_defaults=False, init=None, log_resize=True):
    """The `DataConfig` from the data flags defined in `fv` (`define_data_flags`), checked.

    A data flag the command does not define takes `DataConfig`'s default. With
    `demo_defaults` (train.py) the demo's values (DEMO_DEFAULTS) replace the defaults of
    flags the user did not set. --resize not given follows --image_size (`resize_for`;
    256 for a command without --image_size); `log_resize` logs the value chosen.
    """
    defaults = DataConfig()

    def value(name):
        if name not in fv:
            return getattr(defaults, name)
        return _value(fv, name, demo_defaults and name != "resize")

    data_dir = value("data_dir")
    dataset = value("dataset") or ("folder" if data_dir else "demo")
    if dataset != "demo" and not data_dir:
        raise UserError(f"--dataset {dataset} needs --data_dir")
    if data_dir and dataset != "demo" and not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir} does not exist or is not a folder")
    normalize = value("normalize") or ("paper" if init in ("paper", "caffe") else "standardize")
    image_size = value("image_size")
    resize = fv.resize if "resize" in fv else None
    if resize is None:
        resize = resize_for(image_size)
        if log_resize and "image_size" in fv:
            log.info(
                "--resize %d (follows --image_size %d at the paper's 256/227)", resize, image_size
            )
    cfg = DataConfig(
        dataset=dataset,
        data_dir=data_dir,
        val_labels=value("val_labels"),
        image_size=image_size,
        resize=resize,
        mean=value("mean"),
        normalize=normalize,
        pca_std=value("pca_std"),
        max_bad_fraction=value("max_bad_fraction"),
        check_files=value("check_files"),
        stats_images=value("stats_images"),
        label_offset=value("label_offset"),
        pca_file=value("pca_file"),
        shuffle_buffer=value("shuffle_buffer"),
        fused_crop=value("fused_crop"),
        antialias_below=value("antialias_below"),
        augment_on=value("augment_on"),
        seed=value("seed"),
    )
    if cfg.resize < 1:
        raise UserError(f"--resize {cfg.resize} must be positive")
    if "image_size" in fv:  # a command that crops (prepare and data_stats do not)
        if cfg.image_size < 67:
            raise UserError(
                f"--image_size {cfg.image_size} is below 67, the smallest AlexNet input"
            )
        if cfg.resize < cfg.image_size:
            raise UserError(f"--resize {cfg.resize} is smaller than --image_size {cfg.image_size}")
    if cfg.val_labels and not os.path.isfile(cfg.val_labels):
        raise UserError(f"--val_labels {cfg.val_labels} does not exist")
    if not 0.0 <= cfg.max_bad_fraction < 1.0:
        raise UserError(f"--max_bad_fraction {cfg.max_bad_fraction} is not in [0, 1)")
    if cfg.pca_std < 0:
        raise UserError(f"--pca_std {cfg.pca_std} is negative")
    if cfg.pca_file and not os.path.isfile(cfg.pca_file):
        raise UserError(f"--pca_file {cfg.pca_file} does not exist")
    if cfg.shuffle_buffer < 1:
        raise UserError(f"--shuffle_buffer {cfg.shuffle_buffer} must be positive")
    if cfg.stats_images < 0:
        raise UserError(f"--stats_images {cfg.stats_images} is negative")
    return cfg


def positive(name, value):
    """`value` of flag --`name`, or UserError if it is not positive (None passes)."""
    if value is not None and value <= 0:
        raise UserError(f"--{name} {value} must be positive")
    return value


def train_config(fv=FLAGS):
    """The `Config` of a training run, from train.py's flags (validated)."""
    demo = _is_demo(fv)
    # With --init_from the sizes not given are the initial model's: init_from logs them.
    data = data_config(fv, demo_defaults=demo, init=fv.init, log_resize=not fv.init_from)
    profile = None
    if fv.profile_steps:
        try:
            start, end = (int(s) for s in fv.profile_steps)
        except ValueError:
            raise UserError(
                f"--profile_steps {','.join(fv.profile_steps)} is not START,END"
            ) from None
        if not 0 <= start < end:
            raise UserError(f"--profile_steps {start},{end}: need 0 <= START < END")
        profile = (start, end)
    train = TrainConfig(
        model_dir=_value(fv, "model_dir", demo) or "runs/alexnet",
        epochs=positive("epochs", _value(fv, "epochs", demo)),
        steps_per_epoch=positive("steps_per_epoch", fv.steps_per_epoch),
        batch_size=positive("batch_size", _value(fv, "batch_size", demo)),
        learning_rate=positive("learning_rate", fv.learning_rate),
        momentum=fv.momentum,
        weight_decay=fv.weight_decay,
        decay_biases=fv.decay_biases,
        plateau_factor=fv.plateau_factor,
        plateau_patience=_value(fv, "plateau_patience", demo),
        min_learning_rate=fv.min_learning_rate,
        strategy=fv.strategy,
        mixed_precision=fv.mixed_precision,
        jit_compile=fv.jit_compile,
        deterministic=fv.deterministic,
        checkpoint_every=positive("checkpoint_every", _value(fv, "checkpoint_every", demo)),
        profile_steps=profile,
        val_steps=positive("val_steps", fv.val_steps),
        progress_seconds=fv.progress_seconds,
        cpu_devices=positive("cpu_devices", fv.cpu_devices),
        data_service=fv.data_service and check_address(fv.data_service),
    )
    if not 0.0 <= train.momentum < 1.0:
        raise UserError(f"--momentum {train.momentum} is not in [0, 1)")
    if train.weight_decay < 0:
        raise UserError(f"--weight_decay {train.weight_decay} is negative")
    if not 0.0 < train.plateau_factor < 1.0:
        raise UserError(f"--plateau_factor {train.plateau_factor} is not in (0, 1)")
    if not 0.0 <= fv.dropout < 1.0:
        raise UserError(f"--dropout {fv.dropout} is not in [0, 1)")
    if fv.groups not in (1, 2):
        raise UserError(f"--groups {fv.groups} is not 1 or 2")
    if fv.pool_size not in (2, 3):
        raise UserError(f"--pool_size {fv.pool_size} is not 3 (overlapping, paper) or 2")
    if train.strategy in ("towers", "mirrored_towers") and fv.groups != 2:
        raise UserError(f"--strategy {train.strategy} needs --groups 2 (one group per tower)")
    model = ModelConfig(
        lrn=None if fv.lrn == "none" else fv.lrn,
        init=fv.init,
        dropout=fv.dropout,
        groups=fv.groups,
        pool_size=fv.pool_size,
    )
    if train.strategy in ("towers", "mirrored_towers") and model.lrn == "caffe":
        raise UserError(
            f"--strategy {train.strategy} needs a per-tower --lrn (paper or cuda-convnet)"
        )
    from alexnet_tf.cli.init_from import apply_init_from

    return apply_init_from(Config(data=data, model=model, train=train), fv)


def eval_config(fv=FLAGS):
    """The `Config` of an evaluation, from evaluate.py's flags (validated).

    Data and model settings not given as flags come from the run's run.json (next to
    --model, or in --model_dir), so the model sees the preprocessing it was trained with.
    """
    from alexnet_tf.evaluation.model_files import eval_preprocessing, model_folder, read_run

    if not fv.model_dir and not fv.model:
        raise UserError("evaluate.py needs --model_dir (a training run) or --model (a .keras file)")
    if fv.model_dir and fv.model:
        raise UserError("give --model_dir or --model, not both")
    if fv.model and not os.path.isfile(fv.model):
        raise UserError(f"--model {fv.model} does not exist")
    if fv.model_dir and not os.path.isdir(fv.model_dir):
        raise UserError(f"--model_dir {fv.model_dir} does not exist")
    if fv.checkpoint and not fv.model_dir:
        raise UserError(f"--checkpoint {fv.checkpoint} needs --model_dir (a training run)")
    found = read_run(model_folder(fv.model_dir, fv.model))
    run = found.config
    data = _eval_data_config(fv, run.data if run else None)
    data = dataclasses.replace(data, eval_preprocessing=eval_preprocessing(found, fv.preprocessing))
    evaluation = EvalConfig(
        model_dir=fv.model_dir,
        model_path=fv.model,
        checkpoint=fv.checkpoint,
        crops=int(fv.crops),
        batch_size=positive("batch_size", fv.batch_size),
        output=fv.output,
        strategy=fv.strategy,
        cpu_devices=positive("cpu_devices", fv.cpu_devices),
    )
    return Config(data=data, model=run.model if run else ModelConfig(), eval=evaluation)


def _eval_data_config(fv, run_data):
    """evaluate.py's data settings: a flag's value where it is given, else the run's
    (--resize too: it follows --image_size only without a run.json)."""
    # Validates the flags given.
    from_flags = data_config(fv, demo_defaults=False, log_resize=run_data is None)
    if run_data is None:
        return from_flags
    given = {
        f.name: getattr(from_flags, f.name)
        for f in dataclasses.fields(DataConfig)
        if f.name in fv and fv[f.name].present
    }
    if fv.data_dir or fv.dataset:  # other data: both as the flags say, as train.py
        given.update(dataset=from_flags.dataset, data_dir=from_flags.data_dir)
    cfg = dataclasses.replace(run_data, **given)
    if cfg.dataset != "demo" and cfg.data_dir and not os.path.isdir(cfg.data_dir):
        raise UserError(
            f"the run's data_dir {cfg.data_dir} (run.json) does not exist: pass --data_dir"
        )
    if cfg.resize < cfg.image_size:
        raise UserError(f"--resize {cfg.resize} is smaller than --image_size {cfg.image_size}")
    return cfg
