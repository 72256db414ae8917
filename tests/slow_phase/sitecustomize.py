"""Test seam for tests/test_stopping.py: slows one phase of a real `train.py` process.

On PYTHONPATH only in those tests (never in a user's path). `ALEXNET_TF_TEST_SLOW`
names the phase: `file_check` (each file's header check), `statistics` (each batch of
the input statistics pass, 4 images a batch) or `export` (before `model.keras` is
saved), each pausing `ALEXNET_TF_TEST_PAUSE` seconds. The phase's first pause prints
`test hook: <phase>`, so the test knows when the process is in it. The modules are
patched as they are imported (an import hook), so TensorFlow is imported no earlier
than `train.py` imports it.
"""

import importlib.machinery
import os
import sys
import time

PHASE = os.environ.get("ALEXNET_TF_TEST_SLOW")
PAUSE = float(os.environ.get("ALEXNET_TF_TEST_PAUSE", "2"))
_said = []


def _pause():
    if not _said:
        _said.append(True)
        print(f"test hook: {PHASE}", file=sys.stderr, flush=True)
    time.sleep(PAUSE)


def _slow_file_check(module):
    check_header = module.check_header

    def slow(path):
        _pause()
        return check_header(path)

    module.check_header = slow


class _SlowBatches:
    def __init__(self, dataset):
        self.dataset = dataset

    def prefetch(self, _):
        return self

    def __iter__(self):
        for batch in self.dataset:
            _pause()
            yield batch


def _slow_statistics(module):
    decoded_images = module.decoded_images

    def slow(*args, **kwargs):
        if sys._getframe(1).f_globals.get("__name__") != "alexnet_tf.data.statistics":
            return decoded_images(*args, **kwargs)
        images, planned = decoded_images(*args, **{**kwargs, "batch_size": 4})
        return _SlowBatches(images), planned

    module.decoded_images = slow


def _slow_export(module):
    save_keras = module.save_keras

    def slow(*args, **kwargs):
        _pause()
        return save_keras(*args, **kwargs)

    module.save_keras = slow


PATCHES = {
    "file_check": ("alexnet_tf.data.file_check", _slow_file_check),
    "statistics": ("alexnet_tf.data.pipeline", _slow_statistics),
    "export": ("alexnet_tf.evaluation.export", _slow_export),
}


class _Finder:
    """Finds the phase's module as usual, then patches it once it has run."""

    def find_spec(self, name, path, target=None):
        module_name, patch = PATCHES[PHASE]
        if name != module_name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if PHASE:
    sys.meta_path.insert(0, _Finder())
