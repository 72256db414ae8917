"""Finding and loading a trained model for evaluation and prediction, always in safe mode.

A model is named the same way by `evaluate.py`, `alexnet_tf.predict` and `bench eval`:

- `--model_dir DIR`: the run's final model, `DIR/model.keras` (written when training ends);
- `--model_dir DIR --checkpoint latest`: the run's latest checkpoint (`DIR/checkpoints/`),
  restored into a model rebuilt from `DIR/run.json`, so a run can be scored while it trains;
- `--model PATH`: a `.keras` file; the run's `run.json`, `input_stats.npz` and
  `classes.json` are looked up in the file's folder.

Every `.keras` file is loaded with Keras' safe mode on: a file whose config holds Python
code (a `Lambda` layer's lambda, a custom function) is refused instead of run, so a model
from elsewhere cannot execute code when it is loaded. The project's own layers
(`TowerConv2D`, `TowerDense`, `LocalResponseNormalization`) are registered serializable
classes, which safe mode loads; importing this module registers them.

Checkpoints hold the layout the run trained with (run.json "layout"). A towers run keeps
each tower's half of a layer as its own variable; its checkpoint is restored into a towers
model whose two towers share the first device (which any machine can build) and copied
into the plain layout (`export.plain_copy`), so it scores anywhere.
"""

import dataclasses
import json
import os
import traceback

import keras
import tensorflow as tf

from alexnet_tf import config as config_lib
from alexnet_tf.config import CHECKPOINT_DIR
from alexnet_tf.errors import UserError
from alexnet_tf.evaluation import export
from alexnet_tf.model import layers as _layers  # noqa: F401  registers TowerConv2D
from alexnet_tf.model import lrn as _lrn  # noqa: F401  registers LocalResponseNormalization
from alexnet_tf.model.alexnet import build_from_config, float32_policy


@dataclasses.dataclass(frozen=True)
class Run:
    """What a model's folder says about the training run that made it."""

    folder: str  # where run.json, input_stats.npz and classes.json are looked up
    config: config_lib.Config | None  # run.json's settings; None without run.json
    layout: str  # "plain" or "towers": the variables of the run's checkpoints
    class_names: tuple[str, ...] | None  # classes.json; None until training has ended
    imported_family: str | None = None  # "caffe" or "torchvision": import_weights' folder


def model_folder(model_dir, model_path):
    """The folder that holds a model's run files: `model_dir`, or the `.keras` file's folder."""
    return model_dir or os.path.dirname(os.path.abspath(model_path))


def read_run(folder):
    """The `Run` recorded in `folder` (cheap: JSON files only, no TensorFlow work)."""
    path = os.path.join(folder, config_lib.RUN_FILE)
    cfg, layout, family = None, "plain", None
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except ValueError as err:
            raise UserError(f"{path} is not valid JSON: {err}") from None
        cfg = config_lib.from_dict(record)
        layout = record.get("layout", "plain")
        family = (record.get("imported") or {}).get("family")
    names = export.load_class_names(folder)
    return Run(folder, cfg, layout, tuple(names) if names is not None else None, family)


def eval_preprocessing(run, choice):
    """What `DataConfig.eval_preprocessing` evaluating `run` (a `Run`) takes: with `choice`
    None or "publisher" an imported model's family ("caffe", "torchvision": its weights
    scored as published), else "ours". "publisher" for a model not imported is refused."""
    if choice not in (None, "publisher", "ours"):
        raise UserError(f"--preprocessing {choice} is not one of publisher, ours")
    if choice == "ours":
        return "ours"
    if run.imported_family is None:
        if choice == "publisher":
            raise UserError(
                f"--preprocessing publisher: {run.folder} holds no imported model (run.json has "
                "no imported family); a model trained here takes ours"
            )
        return "ours"
    return run.imported_family


def load_keras(path):
    """The model in the `.keras` file `path`, loaded in safe mode; UserError if it cannot be."""
    if not os.path.isfile(path):
        raise UserError(f"model file {path} does not exist")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises ValueError, TypeError, OSError, zip errors...
        if _raised_by_our_code(err):
            raise  # a bug in our layers, not a bad file: keep the traceback
        message = " ".join(str(err).split())
        # Keras wraps what a layer raised in a long paragraph; the layer's words come last.
        detail = message.rsplit("Exception encountered:", 1)[-1].strip()
        if "safe_mode" in message or "arbitrary code" in message:
            raise UserError(
                f"model file {path} was refused: it holds Python code (a Lambda layer or a custom "
                "function) and models are loaded in Keras safe mode; load only models you trust"
            ) from None
        raise UserError(f"model file {path} cannot be loaded: {detail[:200]}") from None


def _raised_by_our_code(error):
    """Whether `error` is a bug of this package's rather than a mistake in the file.

    Keras reports a file it cannot read (not a zip, a broken config, an unknown class, a
    Lambda refused by safe mode) by raising from its own code, often re-raising what it
    caught. An error that some exception in that chain raised from this package's code
    (our layers' `from_config`, `build`, `call`) is a bug, unless it is a ValueError or
    UserError: those are our layers' own checks of the arguments the file holds.
    """
    package = os.path.dirname(os.path.abspath(config_lib.__file__)) + os.sep  # alexnet_tf/
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if not isinstance(error, (ValueError, UserError)):
            frames = traceback.extract_tb(error.__traceback__)
            if any(f.filename.startswith(package) and f.name != "load_keras" for f in frames):
                return True
        error = error.__cause__ or error.__context__
    return False


def latest_checkpoint(model_dir):
    """Path prefix of the run's latest checkpoint; UserError if there is none."""
    folder = os.path.join(model_dir, CHECKPOINT_DIR)
    path = tf.train.latest_checkpoint(folder)
    if path is None:
        raise UserError(f"--model_dir {model_dir} has no checkpoint in {folder}")
    return path


def restore_checkpoint(run, num_classes, path):
    """The plain float32 model of `run` (a `Run` with a config) with the weights at `path`.

    Only the model is read; the optimizer's slots and the run state are left in the file.
    """
    cfg = run.config
    towers = None
    if run.layout == "towers":
        device = tf.config.list_logical_devices()[0].name
        towers = (device, device)  # both towers on one device: same variables, any machine
    with float32_policy():
        model = build_from_config(cfg.model, num_classes, cfg.data.image_size, towers)
    try:
        status = tf.train.Checkpoint(model=model).restore(path)
        status.assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        first = " ".join(str(err).split())[:200]
        raise UserError(
            f"checkpoint {path} does not fit a {num_classes}-class {run.layout} model built "
            f"from {os.path.join(run.folder, config_lib.RUN_FILE)}: {first}"
        ) from None
    if towers is None:
        return model
    return export.plain_copy(model, cfg.model, num_classes, cfg.data.image_size)


def load_trained(run_dir_or_file):
    """The model of a run's folder (`DIR/model.keras`) or of a `.keras` file, in safe mode."""
    path = run_dir_or_file
    if os.path.isdir(path):
        path = os.path.join(path, export.MODEL_FILE)
        if not os.path.isfile(path):
            raise UserError(
                f"{run_dir_or_file} has no {export.MODEL_FILE}: training writes it when it ends"
            )
    return load_keras(path)


def find_model(eval_cfg, run):
    """`(kind, path)` of the model `eval_cfg` (an `EvalConfig`) names: "keras" or "checkpoint".

    Only looks at files (cheap), so a missing model is reported before any heavy work.
    """
    if eval_cfg.model_path:
        if not os.path.isfile(eval_cfg.model_path):
            raise UserError(f"--model {eval_cfg.model_path} does not exist")
        return "keras", eval_cfg.model_path
    model_dir = eval_cfg.model_dir
    if not os.path.isdir(model_dir):
        raise UserError(f"--model_dir {model_dir} does not exist")
    if eval_cfg.checkpoint == "latest":
        if run.config is None:
            raise UserError(
                f"--model_dir {model_dir} has no {config_lib.RUN_FILE}: the model of its "
                "checkpoints cannot be rebuilt"
            )
        return "checkpoint", latest_checkpoint(model_dir)
    if eval_cfg.checkpoint is not None:
        raise UserError(f"--checkpoint {eval_cfg.checkpoint} is not 'latest'")
    path = os.path.join(model_dir, export.MODEL_FILE)
    if not os.path.isfile(path):
        hint = (
            "training writes it when it ends; --checkpoint latest scores the latest checkpoint"
            if os.path.isdir(os.path.join(model_dir, CHECKPOINT_DIR))
            else "is it a training run's folder?"
        )
        raise UserError(f"--model_dir {model_dir} has no {export.MODEL_FILE} ({hint})")
    return "keras", path


def load_model(kind, path, run, num_classes):
    """The plain float32 model at `path` (`find_model`'s answer) as a `keras.Model`.

    `num_classes` sizes the model rebuilt for a checkpoint (the run's classes.json, else
    the data's classes).
    """
    if kind == "checkpoint":
        return restore_checkpoint(run, num_classes, path)
    return load_keras(path)
