"""`--require_gpu` (and ALEXNET_TF_REQUIRE_GPU=1, set in the GPU image): stop at once,
with one line, when TensorFlow sees no GPU, instead of training on the CPU unnoticed."""

import os

import tensorflow as tf

from alexnet_tf.errors import UserError

ENV = "ALEXNET_TF_REQUIRE_GPU"


def gpu_required(flag=False):
    return bool(flag) or os.environ.get(ENV, "") not in ("", "0")


def check_gpu(flag=False):
    """Raises UserError (exit status 2) if a GPU is required and TF sees none."""
    if not gpu_required(flag):
        return
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return
    cpus = len(tf.config.list_physical_devices("CPU"))
    cuda = tf.sysconfig.get_build_info().get("cuda_version") or "none (a CPU-only build)"
    raise UserError(
        f"a GPU is required (--require_gpu or {ENV}) but TensorFlow {tf.__version__} "
        f"(CUDA {cuda}) found 0 GPUs and {cpus} CPU(s); likely: the container was started "
        "without --gpus all, the NVIDIA container toolkit is missing, or the driver is too "
        "old for CUDA 12.5 (nvidia-smi shows the driver's CUDA version)"
    )
