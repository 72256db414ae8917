"""SIGTERM / SIGINT during a run: recorded by the handler, acted on at safe points."""

import contextlib
import logging
import os
import signal
import sys
import threading
import time

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

    A second signal ends the process at once (`os._exit`, status 128 + its number),
    saving nothing more: after one line, from the handler, or from a thread that reads
    the signals' wakeup pipe when the main thread is held in a C++ call (a save, a
    tf.data iterator shutting down), where Python handlers wait for its return.
    A checkpoint or export cut short is never the latest: both are written atomically.
    """

    def __init__(self):
        self.received = None
        self.run = None  # the Run, once built: its steps may be unsaved
        self.at_safe_point = False  # the stop was raised by `poll`: state is whole
        self.finished = False  # the final export is written: the stop comes after it
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
        self._pipe = os.pipe()
        os.set_blocking(self._pipe[1], False)
        self._previous_wakeup = signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False)
        self._watcher = threading.Thread(target=self._watch, name="stop-signals", daemon=True)
        self._watcher.start()
        return self

    def _handle(self, signum, frame):
        del frame
        name = signal.Signals(signum).name
        if self.received is not None:
            exit_at_once(signum)
        self.received = signum
        log.warning("%s received: stopping", name)

    def _watch(self):
        """Exits at the second signal even while the main thread runs C++ code (the C
        handler writes each signal's number to the pipe; a 0 ends the watch)."""
        count = 0
        while True:
            data = os.read(self._pipe[0], 64)
            for signum in data:
                if not signum:
                    return
                if signum not in (signal.SIGTERM, signal.SIGINT):
                    continue  # another handler's signal
                count += 1
                if count >= 2:
                    exit_at_once(signum)

    def stopped(self):
        """The `TrainingStopped` to raise, after saving the last finished step if that is
        safe and needed."""
        name = signal.Signals(self.received).name
        code = 128 + self.received
        run = self.run
        if self.finished:
            return TrainingStopped(
                f"{name} during the final export: the export was completed first, the run "
                "is finished and whole (model.keras, saved_model/, result.json)",
                code,
            )
        if run is not None and self.at_safe_point:
            self.at_safe_point = False  # saved once
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
        signal.set_wakeup_fd(self._previous_wakeup)
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        os.write(self._pipe[1], b"\0")
        self._watcher.join()
        for fd in self._pipe:
            os.close(fd)
        return False


def exit_at_once(signum):
    """The second signal: one line, then the process ends with status 128 + `signum`.

    Written straight to the file descriptor: the main thread may hold the logging or
    stderr locks when this runs in the watcher thread."""
    name = signal.Signals(signum).name
    line = f"{time.strftime('%H:%M:%S')} {name} again: stopping at once, saving nothing more\n"
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, line.encode())
    os._exit(128 + signum)
