"""train.py --init_from DIR_or_FILE: the config of a run that starts from a trained model.

The architecture (LRN, groups, pooling, variant) is the model's own, from its run.json:
weights fit no other. The input convention (image and resize size, mean, normalisation,
channel order) is the model's too, unless a flag sets it: each flag that overrides it
is logged. `--train_layers fc7,fc8` trains those layers only.
"""

import dataclasses
import logging
import os

from alexnet_tf.errors import UserError
from alexnet_tf.model.weight_layers import WEIGHT_LAYERS

log = logging.getLogger(__name__)

CONVENTION_FLAGS = ("image_size", "resize", "mean", "normalize")
ARCHITECTURE = ("lrn", "groups", "pool_size", "variant")


def init_folder(path):
    """The folder holding the model `path` names (a run folder or a .keras file)."""
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "model.keras")):
            raise UserError(f"--init_from {path} has no model.keras (a finished or imported run?)")
        return path
    if os.path.isfile(path) and path.endswith(".keras"):
        return os.path.dirname(os.path.abspath(path))
    raise UserError(f"--init_from {path} is not a run folder or a .keras file")


def apply_init_from(cfg, fv):
    """`cfg` (train.py's) with the init model's architecture and input convention."""
    from alexnet_tf.evaluation.model_files import read_run

    train_layers = tuple(fv.train_layers or ())
    unknown = [name for name in train_layers if name not in WEIGHT_LAYERS]
    if unknown:
        raise UserError(f"--train_layers {','.join(unknown)}: not among {', '.join(WEIGHT_LAYERS)}")
    if not fv.init_from:
        if train_layers:
            raise UserError("--train_layers needs --init_from (a trained model to fine-tune)")
        return cfg
    folder = init_folder(fv.init_from)
    source = read_run(folder).config
    train = dataclasses.replace(
        cfg.train, init_from=fv.init_from, train_layers=train_layers or None
    )
    if source is None:
        log.warning(
            "--init_from %s has no run.json: the input convention is the flags' "
            "(--image_size %d, --resize %d)",
            folder,
            cfg.data.image_size,
            cfg.data.resize,
        )
        return dataclasses.replace(cfg, train=train)
    data_kept = {}
    for name in CONVENTION_FLAGS:
        theirs = getattr(source.data, name)
        if fv[name].present and getattr(cfg.data, name) != theirs:
            log.info(
                "--%s %s overrides the initial model's %s", name, getattr(cfg.data, name), theirs
            )
        else:
            data_kept[name] = theirs
            if name in ("image_size", "resize"):
                log.info("--%s %s (the initial model's)", name, theirs)
    data = dataclasses.replace(cfg.data, channel_order=source.data.channel_order, **data_kept)
    for name in ARCHITECTURE:
        if (
            name in fv
            and fv[name].present
            and getattr(cfg.model, name) != getattr(source.model, name)
        ):
            raise UserError(
                f"--{name} {fv[name].value} differs from the initial model's "
                f"{getattr(source.model, name)} ({folder}): its weights fit only its own"
            )
    model = dataclasses.replace(cfg.model, **{n: getattr(source.model, n) for n in ARCHITECTURE})
    if cfg.train.strategy in ("towers", "mirrored_towers") and (
        model.variant != "paper" or model.groups != 2 or model.lrn == "caffe"
    ):
        raise UserError(
            f"--strategy {cfg.train.strategy} splits the paper's net over two towers with a "
            f"per-tower LRN; the initial model ({folder}: variant {model.variant}, groups "
            f"{model.groups}, LRN {model.lrn}) is not such a net: use one_device or mirrored"
        )
    log.info(
        "initial model %s: input %s, mean %s, normalize %s, %d-px crops of %d",
        fv.init_from,
        data.channel_order.upper(),
        data.mean,
        data.normalize,
        data.image_size,
        data.resize,
    )
    return dataclasses.replace(cfg, data=data, model=model, train=train)
