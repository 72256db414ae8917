"""Our training step and forward pass against PyTorch 2.13 on the same net, batch and cores.

    python -m alexnet_tf.bench.train_vs_torch [--torch_python PYTHON] \
        [--batch_size 32] [--image_size 227] [--repeats 2] [--no_torch_compile]

Runs, `--repeats` times in turn (so all see the same machine), for float32 and for
bfloat16 mixed precision: `python -m alexnet_tf.bench train` (our step; its Keras
`Conv2D(groups=2)` baseline in the same process), in float32 `python -m alexnet_tf.bench
fit` (a user's own `model.fit` on `build_alexnet()`, timed by the wall clock of the call),
`python -m alexnet_tf.bench eval` (our forward pass and 10-crop step) and
`alexnet_tf/bench/torch_train_peer.py` twice: with PyTorch's stock
`nn.LocalResponseNorm` (slow on a CPU) and with the fast LRN a careful PyTorch user would
write (`--lrn fast`, with `--channels_last` memory order, which helps its whole step;
`--fast_peer_nchw` leaves that out), each eager and with
`torch.compile`, training and forward. Prints the best of the repeats of each and the
ratios against both peers, as a table and one JSON line, with the machine (CPU model,
instruction sets, load). torch is never in requirements.txt: `--torch_python` is
/tmp/venv/torch's Python (`python -m venv /tmp/venv/torch && /tmp/venv/torch/bin/pip
install torch==2.13.0 numpy`) if it exists, else this one (`pip install torch==2.13.0`
beside TF, as requirements-test.txt does).
"""

import argparse
import json
import os
import subprocess
import sys

from alexnet_tf.bench.input_vs_torch import default_torch_python
from alexnet_tf.bench.machine import machine

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository, where `-m` finds us
PEERS = ("stock", "fast")  # PyTorch's nn.LocalResponseNorm, and the band-matmul LRN
MODES = ("train_eager", "train_compiled", "forward_eager", "forward_compiled")


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--torch_python", default=default_torch_python())
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--image_size", type=int, default=227)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--no_torch_compile", action="store_true", help="PyTorch eager only")
    p.add_argument(
        "--fast_peer_nchw", action="store_true", help="fast peer in NCHW, not channels_last"
    )
    args = p.parse_args()
    size = ["--batch_size", str(args.batch_size), "--image_size", str(args.image_size)]
    best, each = {}, {}  # best of the repeats; every process's figure, in run order

    def keep(name, value):
        best[name] = max(best.get(name, 0.0), value)
        each.setdefault(name, []).append(value)

    for _ in range(args.repeats):
        for precision in ("float32", "bfloat16"):
            mixed = [] if precision == "float32" else ["--mixed_precision", "bfloat16"]
            ours = run(
                [sys.executable, "-m", "alexnet_tf.bench", "train", *size, *mixed, "--json"]
                + (["--no_baseline"] if mixed else [])
            )
            keep(f"ours_train_{precision}", ours["images_per_sec"])
            if not mixed:
                keep("keras_baseline_train_float32", ours["keras_baseline_images_per_sec"])
                best["peak_gflops_float32"] = ours["peak_gflops_per_sec"]
                # A user's own model.fit on build_alexnet(), fresh process, float32.
                fit = run([sys.executable, "-m", "alexnet_tf.bench", "fit", *size, "--json"])
                keep("ours_fit_float32", fit["images_per_sec"])
            evaluation = run(
                [sys.executable, "-m", "alexnet_tf.bench", "eval", *size, *mixed, "--json"]
            )
            keep(f"ours_forward_{precision}", evaluation["forward_images_per_sec"])
            keep(f"ours_ten_crop_{precision}", evaluation["images_per_sec"])
            for lrn in PEERS:
                torch = run(
                    [args.torch_python, os.path.join(HERE, "torch_train_peer.py"), *size]
                    + ["--json", "--lrn", lrn]
                    + (["--bf16"] if mixed else [])
                    + (["--no_compile"] if args.no_torch_compile else [])
                    + (["--channels_last"] if lrn == "fast" and not args.fast_peer_nchw else [])
                )
                for key in MODES:
                    if f"{key}_images_per_sec" in torch:
                        keep(f"torch_{lrn}_{key}_{precision}", torch[f"{key}_images_per_sec"])
    modes = ("eager",) if args.no_torch_compile else ("eager", "compiled")
    for precision in ("float32", "bfloat16"):
        for kind in ("train", "forward"):
            ours = best[f"ours_{kind}_{precision}"]
            for lrn in PEERS:
                for mode in modes:
                    peer = best[f"torch_{lrn}_{kind}_{mode}_{precision}"]
                    best[f"ratio_{kind}_vs_torch_{lrn}_{mode}_{precision}"] = round(ours / peer, 2)
    for lrn in PEERS:
        peer = best[f"torch_{lrn}_train_eager_float32"]
        best[f"ratio_fit_vs_torch_{lrn}_eager_float32"] = round(best["ours_fit_float32"] / peer, 2)
    print(f"{'images/s (best of repeats)':44s} {'float32':>9s} {'bfloat16':>9s}")
    rows = ["ours_train"]
    rows += [f"torch_{lrn}_train_{mode}" for lrn in PEERS for mode in modes]
    rows += ["ours_forward"]
    rows += [f"torch_{lrn}_forward_{mode}" for lrn in PEERS for mode in modes]
    for name in rows + ["ours_ten_crop"]:
        print(f"{name:44s} {best[name + '_float32']:9.1f} {best[name + '_bfloat16']:9.1f}")
    print(f"{'keras_baseline_train':44s} {best['keras_baseline_train_float32']:9.1f}")
    print(f"{'ours_model_fit (wall clock of the call)':44s} {best['ours_fit_float32']:9.1f}")
    for name, value in best.items():
        if name.startswith("ratio"):
            print(f"{name:44s} {value:9.2f}")
    where = machine()
    print(f"{'machine':44s} {where['cpu_model']} ({where['cpu_features']})")
    print(
        json.dumps(
            {
                **best,
                "batch_size": args.batch_size,
                "image_size": args.image_size,
                "fast_peer_channels_last": not args.fast_peer_nchw,
                "each_process": each,
                **where,
            }
        )
    )


if __name__ == "__main__":
    main()
