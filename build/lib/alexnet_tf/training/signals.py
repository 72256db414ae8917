"""SIGTERM / SIGINT during a run: recorded by the handler, acted on at safe points."""

import contextlib
import logging
import signal

from alexnet_tf.errors import TrainingStopped

log = logging.getLogger(__name__)


class Stop(BaseException):
    """A stop signal taking effect (a BaseException: no `except Exception` on the way
    may swallow it)."""


class StopSignals:
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
        self.run = None  # the Run, once built: its steps may be unsaved
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
        """Raises `Stop` if a signal came (a safe point: no step or save half done)."""
        if self.received is not None and not self._deferred:
            self.at_safe_point = True
            raise Stop

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
            raise Stop
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
