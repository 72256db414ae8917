"""--require_gpu and the GPU image's ALEXNET_TF_FLAVOUR=gpu on a host where TF sees no GPU
(this test machine has none: the tests are skipped where a GPU is visible)."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from alexnet_tf.distribute.gpu_check import check_gpu
from alexnet_tf.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    bool(tf.config.list_physical_devices("GPU")), reason="a GPU is visible here"
)


@pytest.mark.parametrize(
    "flag, env, required",
    [
        (True, {}, True),
        (False, {"ALEXNET_TF_REQUIRE_GPU": "1"}, True),
        (False, {"ALEXNET_TF_FLAVOUR": "gpu"}, True),  # the GPU image
        (False, {"ALEXNET_TF_FLAVOUR": "gpu", "ALEXNET_TF_REQUIRE_GPU": "0"}, False),
        (False, {"ALEXNET_TF_FLAVOUR": "cpu"}, False),
        (False, {}, False),
    ],
)
def test_when_a_gpu_is_required(monkeypatch, flag, env, required):
    for name in ("ALEXNET_TF_REQUIRE_GPU", "ALEXNET_TF_FLAVOUR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if not required:
        check_gpu(flag)
        return
    with pytest.raises(UserError) as error:
        check_gpu(flag)
    line = str(error.value)
    assert "\n" not in line and "found 0 GPUs" in line and f"TensorFlow {tf.__version__}" in line
    for cause in ("--gpus all", "container toolkit", "CUDA 12.5"):
        assert cause in line


@pytest.mark.parametrize(
    "script, flags, env",
    [
        ("train.py", ["--require_gpu"], {}),
        ("evaluate.py", ["--model_dir", ROOT], {"ALEXNET_TF_FLAVOUR": "gpu"}),
    ],
)
def test_the_commands_stop_with_one_line_and_status_2(script, flags, env):
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *flags],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: a GPU is required "), done.stderr
