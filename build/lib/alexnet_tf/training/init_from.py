"""A run that starts from a trained model (`train.py --init_from`): its weights, its
input statistics, fc8 rebuilt for another class count, the layers outside
`--train_layers` frozen.
"""

import logging
import os
import shutil

import tensorflow as tf

from alexnet_tf import config as config_lib
from alexnet_tf.data.statistics import STATS_FILE
from alexnet_tf.evaluation import model_files

log = logging.getLogger(__name__)


def _folder(path):
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def copy_stats(cfg, workdir):
    """Puts the initial model's input statistics in `workdir` when the run keeps its mean
    and normalisation (an imported model's are its convention, not the data's)."""
    path = cfg.train.init_from
    if not path or os.path.isfile(os.path.join(workdir, STATS_FILE)):
        return
    folder = _folder(path)
    source = model_files.read_run(folder).config
    stats = os.path.join(folder, STATS_FILE)
    same = source is not None and all(
        getattr(source.data, k) == getattr(cfg.data, k) for k in ("mean", "normalize", "resize")
    )
    if same and os.path.isfile(stats):
        os.makedirs(workdir, exist_ok=True)
        shutil.copyfile(stats, os.path.join(workdir, STATS_FILE))
        log.info("input statistics from %s (the initial model's)", stats)


def initialize(model, cfg):
    """Sets `model`'s weights from `cfg.train.init_from` (unless the run resumes from a
    checkpoint) and freezes the layers outside `cfg.train.train_layers`."""
    t = cfg.train
    if not t.init_from:
        return
    resuming = tf.train.latest_checkpoint(os.path.join(t.model_dir, config_lib.CHECKPOINT_DIR))
    if not resuming:
        source = model_files.load_trained(t.init_from)
        for layer in source.layers:
            weights = layer.get_weights()
            if not weights:
                continue
            target = model.get_layer(layer.name)
            shapes = [w.shape for w in target.get_weights()]
            if shapes == [w.shape for w in weights]:
                target.set_weights(weights)
            elif layer.name == "fc8":
                log.info(
                    "fc8 rebuilt for the data's %d classes (%s has %d): freshly initialised",
                    shapes[-1][0],
                    t.init_from,
                    weights[-1].shape[0],
                )
            else:
                raise ValueError(f"{layer.name}: {shapes} against {[w.shape for w in weights]}")
        log.info("weights from %s", t.init_from)
    if t.train_layers:
        frozen = []
        for layer in model.layers:
            if layer.weights and layer.name not in t.train_layers:
                layer.trainable = False
                frozen.append(layer.name)
        log.info("training %s only; frozen: %s", ", ".join(t.train_layers), ", ".join(frozen))
