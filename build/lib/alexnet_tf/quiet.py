"""Keeps TensorFlow's start-up chatter off the console, and nothing else.

TF 2.21 prints notices from C++ before its logging is initialised (so
TF_CPP_MIN_LOG_LEVEL cannot silence them): the oneDNN notice, CPU features, and,
on machines without a GPU, "failed call to cuInit", which reads like a failure
but is not one. `tensorflow_imported()` imports TF and initialises its devices
with the process's stderr captured, then replays every captured line except
those known notices. Set ALEXNET_TF_VERBOSE=1 to see everything.
"""

import contextlib
import os
import re
import sys
import tempfile

_NOTICES = re.compile(
    "|".join(
        (
            r"All log messages before absl::InitializeLog\(\) is called",
            r"oneDNN custom operations are on",
            r"cudart_stub\.cc.*Could not find cuda drivers",
            r"cuda_platform\.cc.*failed call to cuInit",
            r"cuda_executor\.cc.*could not find cuda drivers",
            r"cpu_feature_guard\.cc",
            r"^To enable the following instructions:",
            r"TF-TRT Warning",
        )
    )
)


@contextlib.contextmanager
def _captured_stderr():
    if os.environ.get("ALEXNET_TF_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if not _NOTICES.search(line):
                    print(line, file=sys.stderr)


def tensorflow_imported():
    """Imports TensorFlow (and finds its devices) quietly; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _captured_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
