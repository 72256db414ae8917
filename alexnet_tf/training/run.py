"""One training run's model, optimizer, state and writers, and its epoch-level steps."""

import logging
import time

import keras
import numpy as np
import tensorflow as tf

from alexnet_tf import config as config_lib
from alexnet_tf.data import device_augment
from alexnet_tf.data.iterators import torn_down_in_background
from alexnet_tf.data.pipeline import build_dataset
from alexnet_tf.data.service import RESUME_LIMIT, service_dataset
from alexnet_tf.errors import TrainingStopped, UserError
from alexnet_tf.evaluation.eval_step import make_eval_step
from alexnet_tf.evaluation.scoring import score
from alexnet_tf.model.alexnet import build_from_config
from alexnet_tf.model.optimizer import make_optimizer
from alexnet_tf.model.tower_devices import ReplicaTowers
from alexnet_tf.progress import Progress, format_duration
from alexnet_tf.training import init_from
from alexnet_tf.training.checkpoints import Checkpoints, RunState
from alexnet_tf.training.run_folder import record_epoch
from alexnet_tf.training.steps import first_replica_input, make_finite_check, make_train_step
from alexnet_tf.training.summaries import Summaries

log = logging.getLogger(__name__)


class Run:
    """A run's model, optimizer, state and writers, and the epoch-level steps on them."""

    def __init__(self, cfg, placement, inputs):
        t = cfg.train
        self.cfg, self.placement, self.inputs = cfg, placement, inputs
        self.steps_per_epoch = steps_per_epoch(cfg, inputs.train.num_examples)
        strategy = placement.strategy
        with strategy.scope():
            self.model = build_from_config(
                cfg.model,
                inputs.num_classes,
                cfg.data.image_size,
                tower_devices=tower_devices(placement),
                seed=cfg.data.seed,
            )
            init_from.initialize(self.model, cfg)
            optimizer = make_optimizer(t)
            optimizer.build(self.model.trainable_variables)
            self.model.compile(optimizer=optimizer)  # ReduceLROnPlateau reads model.optimizer
        self.optimizer = optimizer
        self.state = RunState()  # plain host variables: every worker runs the same loop
        self.checkpoints = Checkpoints(
            t.model_dir,
            self.model,
            optimizer,
            self.state,
            is_chief=placement.is_chief,
            worker_index=placement.worker_index,
            keep=t.keep_checkpoints,
        )
        self.plateau = keras.callbacks.ReduceLROnPlateau(
            monitor="val_error",
            mode="min",
            factor=t.plateau_factor,
            patience=t.plateau_patience,
            min_lr=t.min_learning_rate,
            verbose=1,
        )
        self.callbacks = keras.callbacks.CallbackList([self.plateau], model=self.model)
        self.callbacks.on_train_begin()
        self.summaries = Summaries(
            t.model_dir, enabled=placement.is_chief, channel_order=cfg.data.channel_order
        )
        self._restore_or_start()
        self.global_step = int(optimizer.iterations.numpy())
        self.saved_step = self.global_step if self.checkpoints.latest else None
        # --augment_on device: the step augments the host's uint8 crops (device_augment).
        place = device_augment.resolve(cfg.data.augment_on)
        log.info("training augmentation on the %s (--augment_on %s)", place, cfg.data.augment_on)
        self.augment = (
            device_augment.make_augment(cfg.data, inputs.stats) if place == "device" else None
        )
        self.train_step = make_train_step(
            self.model,
            optimizer,
            strategy,
            t.batch_size,
            t.jit_compile,
            augment=self.augment,
        )
        self.eval_step = make_eval_step(self.model, strategy)
        self.weights_finite = make_finite_check(self.model.trainable_variables)
        self.display_mean = inputs.stats.channel_mean
        self.display_std = 1.0 / inputs.stats.scale(cfg.data.normalize)
        self.epoch_start = time.monotonic()

    def _restore_or_start(self):
        resumed = self.checkpoints.restore()
        if not resumed:
            self.summaries.hparams(hparams(self.cfg, self.placement))
            return
        self.state.load_plateau(self.plateau)
        log.info(
            "resuming %s: epoch %d, step %d of %d, learning rate %g",
            resumed,
            int(self.state.epoch) + 1,
            int(self.state.step_in_epoch),
            self.steps_per_epoch,
            learning_rate(self.optimizer),
        )

    def _batches(self, epoch, skip_steps):
        cfg = self.cfg

        service = cfg.train.data_service
        if service:
            log.info("epoch %d: the images are read and augmented by %s", epoch + 1, service)
        if service and skip_steps:
            log.warning("resuming at step %d: %s", skip_steps, RESUME_LIMIT.format(k=skip_steps))

        def dataset_fn(input_context):
            # A pipeline feeds replicas / pipelines replicas per step.
            per_step = input_context.num_replicas_in_sync // input_context.num_input_pipelines
            make, extra = (
                (service_dataset, {"address": service})
                if service
                else (build_dataset, {"training": True})
            )
            return make(
                cfg.data,
                self.inputs.train,
                batch_size=cfg.train.batch_size,
                stats=self.inputs.stats,
                epoch=epoch,
                skip_batches=skip_steps * per_step,
                input_context=input_context,
                **extra,
            )

        # The epoch's iterator is deleted off the main thread: its deletion can take as
        # long as the epoch did (data/iterators.py), and the next epoch need not wait.
        return torn_down_in_background(
            self.placement.strategy.distribute_datasets_from_function(dataset_fn)
        )

    def train_epoch(self, epoch, signals):
        """The rest of `epoch`'s steps (all of them, unless resuming mid-epoch).

        A step and its bookkeeping, and a save, run with `signals` deferred; a signal
        that came in between is acted on before the next step.
        """
        t = self.cfg.train
        start = int(self.state.step_in_epoch)
        self.epoch_start = time.monotonic()
        if start >= self.steps_per_epoch:  # stopped during this epoch's validation
            return
        batches = self._batches(epoch, start)
        progress = Progress(
            f"epoch {epoch + 1}/{t.epochs}",
            self.steps_per_epoch,
            t.progress_seconds,
            remaining_after=(t.epochs - epoch - 1) * self.steps_per_epoch,
        )
        window = Totals()
        totals = Totals.restored(self.state.epoch_sums.numpy())
        extra = (tf.constant(epoch, tf.int64),) if self.augment else ()
        for step in range(start, self.steps_per_epoch):
            signals.poll()
            self._profile(self.global_step)
            try:
                images, labels = next(batches)
            except StopIteration:
                if self.cfg.train.data_service:  # a worker died: its batches are lost
                    log.warning(
                        "the tf.data service delivered %d of the %d steps of epoch %d: a "
                        "worker stopped during the epoch and the batches it was making are "
                        "lost (at most once); the epoch ends here",
                        step,
                        self.steps_per_epoch,
                        epoch + 1,
                    )
                    return
                raise TrainingStopped(
                    f"the train split ran out after {step} of {self.steps_per_epoch} steps in "
                    f"epoch {epoch + 1} (files unreadable during the epoch?)",
                    4,
                ) from None
            with signals.deferred():
                metrics = {k: float(v) for k, v in self.train_step(images, labels, *extra).items()}
                if not np.isfinite(metrics["loss"]):
                    raise self._not_finite("loss", self.global_step + 1)
                self.global_step += 1
                self.state.step_in_epoch.assign(step + 1)
                totals.add(metrics)
                self.state.epoch_sums.assign(totals.as_array())
            window.add(metrics)
            if step == start:  # what the net sees, once per epoch
                self.summaries.inputs(
                    self.global_step,
                    first_replica_input(self.placement.strategy, images, self.augment, *extra),
                    self.display_mean,
                    self.display_std,
                )
            printed = progress.last_print
            progress.update(
                step + 1,
                int(metrics["count"]),
                f"loss {window.mean('loss'):.3f}  top-1 {window.rate('top1'):.1%}",
            )
            if progress.last_print != printed:  # a progress point: a TensorBoard point too
                self._write_train(window, progress.images_per_sec)
                window = Totals()
            if self.global_step % t.checkpoint_every == 0 and step + 1 < self.steps_per_epoch:
                with signals.deferred():
                    self.save()

    def save_if_unsaved(self):
        """A checkpoint at the current step, unless it is there or no step ran yet."""
        if self.saved_step != self.global_step and self.global_step > 0:
            self.save()

    def save(self):
        """A checkpoint at the current step, if every weight is finite.

        A finite loss can come with overflowing gradients, which leave NaN weights
        behind; checking the weights before each save (not the gradients at every
        step, which cost 3 % of a CPU step) keeps every checkpoint finite.
        """
        if not bool(self.weights_finite()):
            raise self._not_finite("weights", self.global_step)
        self.checkpoints.save(self.global_step)
        self.saved_step = self.global_step

    def _not_finite(self, what, step):
        return TrainingStopped(
            f"the {what} became NaN or infinite by step {step}; nothing was saved after "
            f"the last finite step (latest checkpoint: {self.checkpoints.latest}); try a "
            "lower --learning_rate",
            3,
        )

    def validate(self, after_batch=None):
        t = self.cfg.train
        return score(
            self.eval_step,
            self.placement.strategy,
            self.cfg.data,
            self.inputs.val,
            self.inputs.stats,
            batch_size=t.batch_size,
            max_batches=t.val_steps,
            progress_seconds=t.progress_seconds,
            label="validation",
            after_batch=after_batch,
        )

    def end_epoch(self, epoch, val):
        """The plateau's decision, the epoch's dashboards and line, and a checkpoint."""
        self.callbacks.on_epoch_end(
            epoch, {"val_error": 1.0 - val["top1"], "val_loss": val["loss"]}
        )
        totals = Totals.restored(self.state.epoch_sums.numpy())
        self.state.save_plateau(self.plateau)
        self.state.epoch.assign(epoch + 1)
        self.state.step_in_epoch.assign(0)
        self.state.epoch_sums.assign(np.zeros(4))
        s, lr = self.summaries, learning_rate(self.optimizer)
        s.scalars(s.val, self.global_step, {k: val[k] for k in ("loss", "top1", "top5")})
        s.scalars(s.train, self.global_step, {"learning_rate": lr})
        s.conv1_filters(self.global_step, self.model.get_layer("conv1").get_weights()[0])
        s.flush()
        took = format_duration(time.monotonic() - self.epoch_start)
        if self.placement.is_chief:
            record_epoch(self.cfg.train.model_dir, epoch, self.global_step, totals, val, lr)
        train = (
            f"train loss {totals.mean('loss'):.3f} top-1 {totals.rate('top1'):.1%}  |  "
            if totals.count
            else ""
        )
        print(
            f"epoch {epoch + 1}/{self.cfg.train.epochs} done in {took}  |  {train}"
            f"val loss {val['loss']:.3f} top-1 {val['top1']:.1%} top-5 {val['top5']:.1%} "
            f"({val['count']} images)  |  lr {lr:g}",
            flush=True,
        )
        self.save()

    def _write_train(self, totals, images_per_sec):
        if totals.count:
            self.summaries.scalars(
                self.summaries.train,
                self.global_step,
                {
                    "loss": totals.mean("loss"),
                    "top1": totals.rate("top1"),
                    "top5": totals.rate("top5"),
                    "images_per_sec": images_per_sec,
                    "learning_rate": learning_rate(self.optimizer),
                },
            )

    def _profile(self, step):
        window = self.cfg.train.profile_steps
        if not window or not self.placement.is_chief:
            return
        if step == window[0]:
            tf.profiler.experimental.start(self.cfg.train.model_dir)
        elif step == window[1]:
            tf.profiler.experimental.stop()
            log.info(
                "profiler trace of steps %d-%d written under %s/plugins/profile",
                window[0],
                window[1],
                self.cfg.train.model_dir,
            )


class Totals:
    """Sums of the step metrics (loss is a per-batch mean: weighted by images)."""

    def __init__(self):
        self.count = 0.0
        self.sums = {"loss": 0.0, "top1": 0.0, "top5": 0.0}

    @classmethod
    def restored(cls, array):
        """The totals kept in a checkpoint by `as_array`."""
        totals = cls()
        loss, top1, top5, totals.count = (float(x) for x in array)
        totals.sums = {"loss": loss, "top1": top1, "top5": top5}
        return totals

    def as_array(self):
        return np.array([self.sums["loss"], self.sums["top1"], self.sums["top5"], self.count])

    def add(self, metrics):
        self.count += metrics["count"]
        self.sums["loss"] += metrics["loss"] * metrics["count"]
        self.sums["top1"] += metrics["top1"]
        self.sums["top5"] += metrics["top5"]

    def mean(self, key):
        return self.sums[key] / max(self.count, 1.0)

    rate = mean


def tower_devices(placement):
    """The model's `tower_devices`: a pair per replica under `mirrored_towers`."""
    if placement.tower_pairs:
        return ReplicaTowers(placement.tower_pairs)
    return placement.tower_devices


def learning_rate(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def steps_per_epoch(cfg, num_examples):
    """Full global batches per epoch (capped by --steps_per_epoch)."""
    available = num_examples // cfg.train.batch_size
    if available == 0:
        raise UserError(
            f"the train split has {num_examples} images, fewer than --batch_size "
            f"{cfg.train.batch_size}"
        )
    if cfg.train.steps_per_epoch and cfg.train.steps_per_epoch > available:
        raise UserError(
            f"--steps_per_epoch {cfg.train.steps_per_epoch} is more than the {available} full "
            f"batches of {cfg.train.batch_size} in the train split ({num_examples} images)"
        )
    steps = cfg.train.steps_per_epoch or available
    if not cfg.train.steps_per_epoch and num_examples % cfg.train.batch_size:
        log.info(
            "an epoch is %d steps; the last %d images of each epoch's order wait for "
            "a later epoch (the order changes every epoch)",
            steps,
            num_examples % cfg.train.batch_size,
        )
    return steps


def hparams(cfg, placement):
    values = {}
    for section in ("data", "model", "train"):
        for key, value in config_lib.to_dict(cfg)[section].items():
            values[f"{section}.{key}"] = value
    values["strategy.resolved"] = placement.kind
    values["replicas"] = placement.replicas
    return values
