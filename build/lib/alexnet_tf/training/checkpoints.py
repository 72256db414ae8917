"""Checkpoints that make a run resumable exactly, and survive a kill at any moment.

A checkpoint holds all a run needs to go on as if it had never stopped: the model,
the dropout layers' seed states (which Keras keeps outside what a checkpoint finds
through the model), the optimizer (momentum slots, step count, learning rate) and the
`RunState`: epoch, position in the epoch, the epoch's running totals and the
plateau's state.
`tf.train.CheckpointManager` writes each checkpoint's files under temporary names
and then rewrites the small `checkpoint` index file atomically, so a kill during a
save leaves the previous checkpoint the latest one, and loadable.

With several workers every worker must take part in a save (reads of distributed
variables can be collective); the chief writes into the run's folder, the others
into a scratch folder they delete again, as the TF multi-worker guide does.
"""

import logging
import os
import shutil

import numpy as np
import tensorflow as tf

from alexnet_tf.config import CHECKPOINT_DIR
from alexnet_tf.model.layers import seed_states

log = logging.getLogger(__name__)


class RunState(tf.Module):
    """Where the run is: what `model.fit` would keep in Python and lose on a kill."""

    def __init__(self):
        super().__init__(name="run_state")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        # ReduceLROnPlateau's memory: best monitored value, epochs waited, cooldown left.
        self.plateau_best = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="best")
        self.plateau_wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="wait")
        self.plateau_cooldown = tf.Variable(0, dtype=tf.int64, trainable=False, name="cooldown")
        # The current epoch's sums so far (loss weighted by images, top-1/top-5 hits,
        # images), so that the epoch's line after a resume covers the whole epoch.
        self.epoch_sums = tf.Variable(
            np.zeros(4), dtype=tf.float64, trainable=False, name="epoch_sums"
        )

    def save_plateau(self, plateau):
        self.plateau_best.assign(float(plateau.best))
        self.plateau_wait.assign(int(plateau.wait))
        self.plateau_cooldown.assign(int(plateau.cooldown_counter))

    def load_plateau(self, plateau):
        plateau.best = float(self.plateau_best.numpy())
        plateau.wait = int(self.plateau_wait.numpy())
        plateau.cooldown_counter = int(self.plateau_cooldown.numpy())


class Checkpoints:
    """Save and restore a run's model, optimizer and `RunState` under `model_dir`."""

    def __init__(
        self, model_dir, model, optimizer, state, *, is_chief=True, worker_index=0, keep=3
    ):
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, state=state, rng=seed_states(model)
        )
        self.directory = os.path.join(model_dir, CHECKPOINT_DIR)
        self.is_chief = is_chief
        self.scratch = os.path.join(model_dir, f".worker-{worker_index}-scratch")
        self.manager = (
            tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=keep)
            if is_chief
            else None
        )

    @property
    def latest(self):
        return tf.train.latest_checkpoint(self.directory)

    def restore(self):
        """Restores the latest checkpoint; returns its path, or None for a fresh run."""
        path = self.latest
        if path is None:
            return None
        # Every saved value must find its variable: a different architecture or
        # strategy layout is an error, not a silent partial restore.
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step):
        """Saves at global step `step`; returns the path (None on non-chief workers)."""
        if not self.is_chief:
            self.checkpoint.save(os.path.join(self.scratch, "ckpt"))
            shutil.rmtree(self.scratch, ignore_errors=True)
            return None
        path = self.manager.save(checkpoint_number=int(step))
        log.info("checkpoint %s", path)
        return path
