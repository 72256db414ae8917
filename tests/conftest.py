"""Test-wide setup: two logical CPU devices, quiet TF, fixed seeds.

Two logical CPUs let MirroredStrategy and the towers model run for real on a
machine without GPUs. They must be configured before TF initialises its devices,
so this runs at import time, before any test module touches TF.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
TWO_CPUS = ("/CPU:0", "/CPU:1")


@pytest.fixture(autouse=True)
def _seeded():
    import keras

    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture(autouse=True, scope="module")
def _release_models_after_each_module():
    """Drops Keras' global state and collects what a module's models held once its
    fixtures are gone: the suite runs in one process, and without this its memory grows
    with every module that builds models (past 17 GB by the end on 2 cores)."""
    yield
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()
