"""`--require_gpu`, ALEXNET_TF_REQUIRE_GPU=1, or the GPU image (ALEXNET_TF_FLAVOUR=gpu,
set by the Dockerfile; `-e ALEXNET_TF_REQUIRE_GPU=0` lets it run on a CPU): stop at once,
with one line, when TensorFlow sees no GPU, instead of training on the CPU unnoticed."""

import os

import tensorflow as tf

from alexnet_tf.errors import UserError

ENV = "ALEXNET_TF_REQUIRE_GPU"


def gpu_required(flag=False):
    setting = os.environ.get(ENV, "")
    if setting:
        return bool(flag) or setting != "0"
    return bool(flag) or os.environ.get("ALEXNET_TF_FLAVOUR") == "gpu"


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
        f"a GPU is required (--require_gpu, {ENV} or the GPU image) but TensorFlow "
        f"{tf.__version__} (CUDA {cuda}) found 0 GPUs and {cpus} CPU(s); likely: the "
        "container was started without --gpus all, the NVIDIA container toolkit is "
        "missing, or the driver is too old for CUDA 12.5 (nvidia-smi shows the driver's "
        "CUDA version)"
    )
