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
import logging
import os

import keras
import tensorflow as tf

from alexnet_tf import config as config_lib
from alexnet_tf.atomic import write_json
from alexnet_tf.data.inputs import prepare_inputs
from alexnet_tf.distribute.strategies import (
    check_batch_size,
    configure_cpu_devices,
    finish_together,
    make_placement,
    peers_lost_as_stop,
)
from alexnet_tf.errors import UserError
from alexnet_tf.training import init_from
from alexnet_tf.training.run import Run
from alexnet_tf.training.run_folder import (
    check_run_folder,
    finish,
    finished_result,
    recorded_files,
    run_record,
)
from alexnet_tf.training.signals import StopSignals

log = logging.getLogger(__name__)


def train_and_evaluate(cfg):
    """Trains `cfg` to its last epoch (resuming from `cfg.train.model_dir` if it holds a run).

    Returns the final validation result. Raises `UserError` for the user's mistakes and
    `TrainingStopped` for a NaN loss, data that ran out, or a signal (after saving).
    """
    t = cfg.train
    with StopSignals() as signals:
        try:
            configure_cpu_devices(t.cpu_devices)
            if t.deterministic:
                tf.config.experimental.enable_op_determinism()
            placement = make_placement(t.strategy)
            if placement.tower_devices and t.jit_compile:
                # XLA compiles a step for one device; tf.function refuses its variables on
                # another ("Trying to access resource ... located in device CPU:1").
                raise UserError(
                    f"--jit_compile cannot compile a --strategy {placement.kind} step: XLA runs "
                    "a step on one device and the towers run on two; drop --jit_compile"
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
        finally:  # the event files whole before the process ends (app may `os._exit`)
            if signals.run is not None:
                signals.run.summaries.close()


def _train(cfg, placement, signals):
    created = check_run_folder(cfg, placement)
    signals.poll()
    finished = finished_result(cfg)
    if finished is not None:
        return finished
    workdir = cfg.train.model_dir
    if not placement.is_chief:
        workdir = os.path.join(workdir, f".worker-{placement.worker_index}")
    try:
        init_from.copy_stats(cfg, workdir)
        recorded = recorded_files(cfg.train.model_dir)
        inputs = prepare_inputs(cfg.data, workdir, poll=signals.poll, recorded=recorded)
    except BaseException:
        if created:  # a mistake in the data leaves no run behind (a bad-file report stays)
            with contextlib.suppress(OSError):
                os.rmdir(cfg.train.model_dir)
        raise
    cfg = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, num_classes=inputs.num_classes)
    )
    run_file = os.path.join(cfg.train.model_dir, config_lib.RUN_FILE)
    started_before = os.path.isfile(run_file)
    if placement.is_chief:
        write_json(run_file, run_record(cfg, placement, inputs.files))
    run = signals.run = Run(cfg, placement, inputs)
    if placement.is_chief and started_before and run.saved_step is None:
        log.warning(
            "%s holds no checkpoint yet (the last run stopped before its first save): "
            "starting from step 0",
            cfg.train.model_dir,
        )
    val = None
    try:
        for epoch in range(int(run.state.epoch), cfg.train.epochs):
            run.train_epoch(epoch, signals)
            val = run.validate(after_batch=signals.poll)
            with signals.deferred():
                run.end_epoch(epoch, val)
        if val is None:  # resumed a run that had already finished
            val = run.validate(after_batch=signals.poll)
        signals.poll()
        # A signal during the export lets it finish (it is atomic), then stops the
        # process with the signal's status: the caller asked for a stop and gets one.
        finish(cfg, placement, run.model, run.inputs, val, run.global_step)
        finish_together(placement)
        signals.finished = True
        signals.poll()
    except UserError:  # e.g. too few images scored: keep the steps trained so far
        with signals.deferred():
            run.save_if_unsaved()
        raise
    return val
