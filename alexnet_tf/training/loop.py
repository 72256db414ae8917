"""The training run: the paper's recipe under any strategy, resumable and watchable.

`train_and_evaluate(cfg)` is the one function `train.py` calls. It is a custom loop
over `strategy.run` (`steps.make_train_step`), because Keras 3.15's `model.fit`
fails under MultiWorkerMirroredStrategy (keras issue 20585) and cannot resume in
the middle of an epoch; one loop serves every strategy. It still drives the Keras
`ReduceLROnPlateau` callback the recipe asks for, with the callback's memory kept
in the checkpoint.

Order of work, so that every mistake shows before anything heavy:
flags (cli) -> devices and strategy -> batch size vs replicas -> the run folder
(resume compatible?) -> data checks and statistics -> model -> loop -> export.
"""

import contextlib
import dataclasses
import json
import logging
import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf

from alexnet_tf import config as config_lib
from alexnet_tf.atomic import write_json
from alexnet_tf.data.pipeline import build_dataset, prepare_inputs
from alexnet_tf.distribute.strategies import (
    check_batch_size,
    configure_cpu_devices,
    finish_together,
    make_placement,
    peers_lost_as_stop,
)
from alexnet_tf.errors import TrainingStopped, UserError
from alexnet_tf.evaluation import export
from alexnet_tf.evaluation.scoring import score
from alexnet_tf.model.alexnet import build_from_config
from alexnet_tf.model.optimizer import make_optimizer
from alexnet_tf.progress import Progress, format_duration
from alexnet_tf.training.checkpoints import Checkpoints, RunState
from alexnet_tf.training.steps import make_eval_step, make_finite_check, make_train_step
from alexnet_tf.training.summaries import Summaries

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
HISTORY_FILE = "history.json"  # one entry per finished epoch: train and val figures
# Settings a resumed run must share with the run it continues, or its steps
# would not continue the same sequence of batches.
_RESUME_KEYS = {
    "data": ("dataset", "image_size", "resize", "mean", "normalize", "seed"),
    "model": ("lrn", "init", "groups", "pool_size", "dropout"),
    "train": ("batch_size", "steps_per_epoch", "mixed_precision", "deterministic"),
}


def train_and_evaluate(cfg):
    """Trains `cfg` to its last epoch (resuming from `cfg.train.model_dir` if it holds a run).

    Returns the final validation result. Raises `UserError` for the user's mistakes and
    `TrainingStopped` for a NaN loss, data that ran out, or a signal (after saving).
    """
    t = cfg.train
    with _StopSignals() as signals:
        try:
            configure_cpu_devices(t.cpu_devices)
            if t.deterministic:
                tf.config.experimental.enable_op_determinism()
            placement = make_placement(t.strategy)
            if placement.tower_devices and t.jit_compile:
                # XLA compiles a step for one device; tf.function refuses its variables on
                # another ("Trying to access resource ... located in device CPU:1").
                raise UserError(
                    "--jit_compile cannot compile a --strategy towers step: XLA runs a step on "
                    "one device and the towers' weights live on two; drop --jit_compile"
                )
            check_batch_size(t.batch_size, placement)
            policy = keras.mixed_precision.global_policy()
            if t.mixed_precision:
                keras.mixed_precision.set_global_policy(f"mixed_{t.mixed_precision}")
            try:
                with peers_lost_as_stop(placement, t.model_dir):
                    return _train(cfg, placement, signals)
            finally:  # a library call leaves the process's policy as it found it
                keras.mixed_precision.set_global_policy(policy)
        except BaseException:
            if signals.received is None:
                raise
            raise signals.stopped() from None


def _train(cfg, placement, signals):
    created = _check_run_folder(cfg, placement)
    signals.poll()
    finished = _finished_result(cfg)
    if finished is not None:
        return finished
    workdir = cfg.train.model_dir
    if not placement.is_chief:
        workdir = os.path.join(workdir, f".worker-{placement.worker_index}")
    try:
        inputs = prepare_inputs(cfg.data, workdir, poll=signals.poll)
    except BaseException:
        if created:  # a mistake in the data leaves no run behind (a bad-file report stays)
            with contextlib.suppress(OSError):
                os.rmdir(cfg.train.model_dir)
        raise
    cfg = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, num_classes=inputs.num_classes)
    )
    if placement.is_chief:
        write_json(
            os.path.join(cfg.train.model_dir, config_lib.RUN_FILE), _run_record(cfg, placement)
        )
    run = signals.run = _Run(cfg, placement, inputs)
    val = None
    try:
        for epoch in range(int(run.state.epoch), cfg.train.epochs):
            run.train_epoch(epoch, signals)
            val = run.validate(after_batch=signals.poll)
            with signals.deferred():
                run.end_epoch(epoch, val)
        if val is None:  # resumed a run that had already finished
            val = run.validate(after_batch=signals.poll)
        signals.poll()  # a signal during the export lets it finish: the run is done then
        _finish(cfg, placement, run.model, run.inputs, val, run.global_step)
        finish_together(placement)
    except UserError:  # e.g. too few images scored: keep the steps trained so far
        with signals.deferred():
            run.save_if_unsaved()
        raise
    return val


class _Run:
    """A run's model, optimizer, state and writers, and the epoch-level steps on them."""

    def __init__(self, cfg, placement, inputs):
        t = cfg.train
        self.cfg, self.placement, self.inputs = cfg, placement, inputs
        self.steps_per_epoch = _steps_per_epoch(cfg, inputs.train.num_examples)
        strategy = placement.strategy
        with strategy.scope():
            self.model = build_from_config(
                cfg.model,
                inputs.num_classes,
                cfg.data.image_size,
                tower_devices=placement.tower_devices,
                seed=cfg.data.seed,
            )
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
        self.summaries = Summaries(t.model_dir, enabled=placement.is_chief)
        self._restore_or_start()
        self.global_step = int(optimizer.iterations.numpy())
        self.saved_step = self.global_step if self.checkpoints.latest else None
        self.train_step = make_train_step(
            self.model,
            optimizer,
            strategy,
            t.batch_size,
            t.jit_compile,
        )
        self.eval_step = make_eval_step(self.model, strategy)
        self.weights_finite = make_finite_check(self.model.trainable_variables)
        self.display_mean = inputs.stats.channel_mean
        self.display_std = 1.0 / inputs.stats.scale(cfg.data.normalize)
        self.epoch_start = time.monotonic()

    def _restore_or_start(self):
        resumed = self.checkpoints.restore()
        if not resumed:
            self.summaries.hparams(_hparams(self.cfg, self.placement))
            return
        self.state.load_plateau(self.plateau)
        log.info(
            "resuming %s: epoch %d, step %d of %d, learning rate %g",
            resumed,
            int(self.state.epoch) + 1,
            int(self.state.step_in_epoch),
            self.steps_per_epoch,
            _learning_rate(self.optimizer),
        )

    def _batches(self, epoch, skip_steps):
        cfg = self.cfg

        def dataset_fn(input_context):
            # A pipeline feeds replicas / pipelines replicas per step.
            per_step = input_context.num_replicas_in_sync // input_context.num_input_pipelines
            return build_dataset(
                cfg.data,
                self.inputs.train,
                training=True,
                batch_size=cfg.train.batch_size,
                stats=self.inputs.stats,
                epoch=epoch,
                skip_batches=skip_steps * per_step,
                input_context=input_context,
            )

        return iter(self.placement.strategy.distribute_datasets_from_function(dataset_fn))

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
        window = _Totals()
        totals = _Totals.restored(self.state.epoch_sums.numpy())
        for step in range(start, self.steps_per_epoch):
            signals.poll()
            self._profile(self.global_step)
            try:
                images, labels = next(batches)
            except StopIteration:
                raise TrainingStopped(
                    f"the train split ran out after {step} of {self.steps_per_epoch} steps in "
                    f"epoch {epoch + 1} (files unreadable during the epoch?)",
                    4,
                ) from None
            with signals.deferred():
                metrics = {k: float(v) for k, v in self.train_step(images, labels).items()}
                if not np.isfinite(metrics["loss"]):
                    raise self._not_finite("loss", self.global_step + 1)
                self.global_step += 1
                self.state.step_in_epoch.assign(step + 1)
                totals.add(metrics)
                self.state.epoch_sums.assign(totals.as_array())
            window.add(metrics)
            if step == start:  # what the net sees, once per epoch
                local = self.placement.strategy.experimental_local_results(images)[0]
                self.summaries.inputs(
                    self.global_step, local.numpy(), self.display_mean, self.display_std
                )
            printed = progress.last_print
            progress.update(
                step + 1,
                int(metrics["count"]),
                f"loss {window.mean('loss'):.3f}  top-1 {window.rate('top1'):.1%}",
            )
            if progress.last_print != printed:  # a progress point: a TensorBoard point too
                self._write_train(window, progress.images_per_sec)
                window = _Totals()
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
        totals = _Totals.restored(self.state.epoch_sums.numpy())
        self.state.save_plateau(self.plateau)
        self.state.epoch.assign(epoch + 1)
        self.state.step_in_epoch.assign(0)
        self.state.epoch_sums.assign(np.zeros(4))
        s, lr = self.summaries, _learning_rate(self.optimizer)
        s.scalars(s.val, self.global_step, {k: val[k] for k in ("loss", "top1", "top5")})
        s.scalars(s.train, self.global_step, {"learning_rate": lr})
        s.conv1_filters(self.global_step, self.model.get_layer("conv1").get_weights()[0])
        s.flush()
        took = format_duration(time.monotonic() - self.epoch_start)
        self._record(epoch, totals, val, lr)
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

    def _record(self, epoch, totals, val, lr):
        """The epoch's figures into history.json (an epoch run again replaces its entry)."""
        if not self.placement.is_chief:
            return
        path = os.path.join(self.cfg.train.model_dir, HISTORY_FILE)
        history = []
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                history = [e for e in json.load(f) if e["epoch"] < epoch + 1]
        history.append(
            {
                "epoch": epoch + 1,
                "steps": self.global_step,
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
                    "learning_rate": _learning_rate(self.optimizer),
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


class _Totals:
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


class _Stop(BaseException):
    """A stop signal taking effect (a BaseException: no `except Exception` on the way
    may swallow it)."""


class _StopSignals:
    """SIGTERM / SIGINT: the run saves its last finished step and stops, within a step.

    The handler only records the first signal: an exception raised from a handler lands
    wherever Python code happens to run, which in TF includes finalizers called from
    inside an op's C++ call (a SIGTERM raised there once aborted the process with a
    corrupted heap). The run acts on it at the next safe point instead: `poll`, called
    at every training step, validation batch, statistics batch and few hundred file
    checks, or the end of a `deferred()` block, in which a step with its bookkeeping,
    or a save, runs whole. The run then saves, if a step is unsaved.
    A second signal stops at once, saving nothing more.
    """

    def __init__(self):
        self.received = None
        self.run = None  # the _Run, once built: its steps may be unsaved
        self.at_safe_point = False  # the stop was raised by `poll`: state is whole
        self._deferred = 0

    @contextlib.contextmanager
    def deferred(self):
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
        self.poll()

    def poll(self):
        """Raises `_Stop` if a signal came (a safe point: no step or save half done)."""
        if self.received is not None and not self._deferred:
            self.at_safe_point = True
            raise _Stop

    def __enter__(self):
        self.previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        del frame
        name = signal.Signals(signum).name
        if self.received is not None:
            log.warning("%s again: stopping at once", name)
            self.at_safe_point = False  # save nothing more
            raise _Stop
        self.received = signum
        log.warning("%s received: stopping", name)

    def stopped(self):
        """The `TrainingStopped` to raise, after saving the last finished step if that is
        safe and needed."""
        name = signal.Signals(self.received).name
        code = 128 + self.received
        run = self.run
        if run is not None and self.at_safe_point:
            self.at_safe_point = False  # a second signal during the save stops it
            run.save_if_unsaved()
        if run is None or run.saved_step is None:
            return TrainingStopped(
                f"{name}: stopped before any step ran; nothing new to save", code
            )
        return TrainingStopped(
            f"{name}: saved a checkpoint at step {run.saved_step}; run the same command to resume",
            code,
        )

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def _learning_rate(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _steps_per_epoch(cfg, num_examples):
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


def _run_record(cfg, placement):
    """What run.json records: the config and the layout of the checkpoints' variables."""
    record = config_lib.to_dict(cfg)
    record["layout"] = "towers" if placement.tower_devices else "plain"
    return record


def _check_run_folder(cfg, placement):
    """Resuming needs the same settings as the run.json there; creates the folder (chief).

    Returns whether the folder was created now. run.json is written once the data is
    checked (`_train`), so a mistake in the data leaves no run behind.
    """
    model_dir = cfg.train.model_dir
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise UserError(f"--model_dir {model_dir} is a file, not a folder")
    path = os.path.join(model_dir, config_lib.RUN_FILE)
    record = _run_record(cfg, placement)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous.get("layout") != record["layout"]:
            raise UserError(
                f"--model_dir {model_dir} holds a {previous.get('layout')} run; --strategy "
                f"{cfg.train.strategy} would need a {record['layout']} one (use a new --model_dir)"
            )
        for section, keys in _RESUME_KEYS.items():
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


def _finished_result(cfg):
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
        f"  next:        python evaluate.py --model_dir {model_dir}\n"
        "  to train on: the same command with a larger --epochs",
        flush=True,
    )
    return {
        "top1": result["val_top1"],
        "top5": result["val_top5"],
        "loss": result["val_loss"],
        "count": result["val_count"],
    }


def _hparams(cfg, placement):
    values = {}
    for section in ("data", "model", "train"):
        for key, value in config_lib.to_dict(cfg)[section].items():
            values[f"{section}.{key}"] = value
    values["strategy.resolved"] = placement.kind
    values["replicas"] = placement.replicas
    return values


def _finish(cfg, placement, model, inputs, val, steps):
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
        f"  next:        python evaluate.py --model_dir {model_dir}"
        + (f" --data_dir {cfg.data.data_dir}" if cfg.data.data_dir else ""),
        flush=True,
    )
