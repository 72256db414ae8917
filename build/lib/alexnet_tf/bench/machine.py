"""The machine a figure belongs to: CPU model and generation, the instruction sets that
matter, usable cores, load, and the environment knobs that pick kernels.

Standard library only, so that the PyTorch peers, run as scripts from this folder in
whatever Python has torch, print it too (`from machine import machine`).
"""

import os
import platform

# The instruction sets that decide this net's speed on a CPU, as /proc/cpuinfo names them:
# AVX2 and AVX-512 (float32 matmuls and convolutions), AVX512_BF16 and AMX (bfloat16).
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


# Environment variables that change which kernels, threads or allocator a run gets: two
# processes whose figures differ should first be compared on these.
SPEED_KNOBS = (
    "TF_ENABLE_ONEDNN_OPTS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "OMP_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "LD_PRELOAD",
    "MALLOC_ARENA_MAX",
)


def machine(cpuinfo="/proc/cpuinfo"):
    """The CPU the figures belong to, without importing TF (the torch peers use it too):
    its model name, which of `CPU_FEATURES` it has, the cores this process may use and the
    load average when the bench started (other work on a shared machine)."""
    model, features, family = None, set(), {}
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key in ("cpu family", "model") and key not in family:
                    family[key] = value.strip()
                elif key in ("flags", "Features") and not features:
                    features = set(value.split())
                elif key == "" and features:  # the first processor's block is enough
                    break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": model,
        # Family/model tell generations apart when a VM hides the name (AMD 25: Zen 3/4,
        # 26: Zen 5; Intel 6/143: Sapphire Rapids).
        "cpu_family_model": "/".join(family.get(k, "?") for k in ("cpu family", "model")),
        "cpu_features": " ".join(f for f in CPU_FEATURES if f in features) or "none",
        "cores_usable": cores,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "speed_knobs": " ".join(f"{k}={os.environ[k]}" for k in SPEED_KNOBS if k in os.environ)
        or "none set",
    }
