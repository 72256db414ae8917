"""--require_gpu and the GPU image's ALEXNET_TF_REQUIRE_GPU on a host where TF sees no GPU
(this test machine has none: the test is skipped where a GPU is visible)."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    bool(tf.config.list_physical_devices("GPU")), reason="a GPU is visible here"
)


def run(script, *flags, **env):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *flags],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "script, flags, env",
    [
        ("train.py", ["--require_gpu"], {}),
        ("evaluate.py", ["--model_dir", ROOT], {"ALEXNET_TF_REQUIRE_GPU": "1"}),
    ],
)
def test_no_gpu_is_one_line_naming_what_tf_found_and_status_2(script, flags, env):
    done = run(script, *flags, **env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: a GPU is required ") and "found 0 GPUs" in lines[0]
    for cause in ("--gpus all", "container toolkit", "CUDA 12.5"):
        assert cause in lines[0]
