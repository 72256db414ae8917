"""Test-wide setup: two logical CPU devices, quiet TF, fixed seeds.

Two logical CPUs let MirroredStrategy and the towers model run for real on a
machine without GPUs. They must be configured before TF initialises its devices,
so this runs at import time, before any test module touches TF.
"""

import os
import shutil

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


_FAILED_MODULES = set()
SESSION_PREFIX = "session_"  # tmp_path_factory.mktemp("session_...") outlives its module


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        _FAILED_MODULES.add(item.module.__name__)
    return report


@pytest.fixture(autouse=True, scope="module")
def _module_folders_removed_when_the_module_passes(request, tmp_path_factory):
    """Removes the folders a module's module-scoped fixtures made (whole training runs,
    0.7 GB each) once its tests have passed. pytest's "failed" retention removes only
    the function-scoped ones as it goes, so without this the suite's temporary folder
    grows by several GB before the session ends. A folder named `session_*` is a cache
    that later modules share (tinyrun's runs): it stays until the session ends."""
    base = tmp_path_factory.getbasetemp()
    before = set(os.listdir(base))
    yield
    if request.module.__name__ in _FAILED_MODULES:
        return
    for name in set(os.listdir(base)) - before:
        if name.startswith(SESSION_PREFIX):
            continue
        path = base / name
        if path.is_symlink():  # pytest's "<name>current" link to the newest numbered folder
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)


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
