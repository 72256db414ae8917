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
