"""Our input pipeline against a PyTorch DataLoader (2 PIL workers) on the same JPEGs.

    python -m alexnet_tf.bench.input_vs_torch [--data_dir /tmp/bench_jpegs] [--images 2560] \
        [--torch_python PYTHON] [--repeats 3]

Writes `--images` photo-like 500x375 JPEGs (smooth colour fields, texture and grain;
about 60 KB each, ImageNet's average is about 110 KB) into `--data_dir/train/<class>/`
(and a few into val/) unless they are there, prepares them once as 256-px TFRecord
shards (`python -m alexnet_tf.prepare`), then runs, `--repeats` times in turn,
`python -m alexnet_tf.bench input` on the JPEGs and on the shards and
`alexnet_tf/bench/torch_input_peer.py` (2 PIL workers) on the JPEGs, with PIL's
decode shortcuts and without (`--no_shortcuts`). On a shared machine the
best of the repeats is the least disturbed; all runs are printed too, as one JSON line,
with `bench input`'s own ratio to a plain decode-resize-crop map and the machine (CPU
model, instruction sets, load). `--torch_python`: /tmp/venv/torch's Python if it exists,
else this one (with `pip install torch==2.13.0` beside TF).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from alexnet_tf.bench.machine import machine

HERE = os.path.dirname(os.path.abspath(__file__))


def make_images(data_dir, count, classes=20, size=(500, 375), seed=0, val_per_class=2):
    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(count + classes * val_per_class):
        split = "train" if i < count else "val"
        folder = os.path.join(data_dir, split, f"class_{i % classes:02d}")
        os.makedirs(folder, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        image = np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.float32)
        mid = Image.fromarray(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8))
        image = image * 0.7 + np.asarray(mid.resize((w, h), Image.BILINEAR)) * 0.3
        image = image + rng.normal(0, 7, size=image.shape)
        path = os.path.join(folder, f"img_{i:05d}.JPEG")
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)


def default_torch_python():
    """A separate torch venv if there is one, else this interpreter (torch installed here)."""
    separate = "/tmp/venv/torch/bin/python"
    return separate if os.path.exists(separate) else sys.executable


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data_dir", default="/tmp/alexnet_tf_bench_jpegs")
    p.add_argument("--images", type=int, default=2560)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--torch_python", default=default_torch_python())
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batches", type=int, default=40, help="timed batches per run")
    args = p.parse_args()
    if not os.path.isdir(os.path.join(args.data_dir, "train")):
        make_images(args.data_dir, args.images)
    shards = args.data_dir.rstrip("/") + "_shards"
    if not os.path.isdir(shards):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "alexnet_tf.prepare",
                "--data_dir",
                args.data_dir,
                "--output_dir",
                shards,
            ],
            check=True,
            capture_output=True,
        )
    flags = ["--batch_size", str(args.batch_size), "--batches", str(args.batches), "--json"]
    commands = {
        "ours_jpeg": [
            sys.executable,
            "-m",
            "alexnet_tf.bench",
            "input",
            "--data_dir",
            args.data_dir,
            *flags,
        ],
        "ours_shards": [
            sys.executable,
            "-m",
            "alexnet_tf.bench",
            "input",
            "--data_dir",
            shards,
            *flags,
        ],
        "torch_jpeg": [
            args.torch_python,
            os.path.join(HERE, "torch_input_peer.py"),
            "--data_dir",
            args.data_dir,
            *flags,
        ],
    }
    # The peer without PIL's draft decode and plain bilinear scaling: the earlier figure.
    commands["torch_jpeg_no_shortcuts"] = [*commands["torch_jpeg"], "--no_shortcuts"]
    runs = {name: [] for name in commands}
    cpu_runs = {name: [] for name in commands}
    vs_plain, plain = [], []
    for _ in range(args.repeats):
        for name, command in commands.items():
            out = run(command)
            runs[name].append(out["images_per_sec"])
            if name == "ours_jpeg":
                vs_plain.append(out["vs_plain"])
                plain.append(out["plain_images_per_sec"])
            cpu_runs[name].append(out["images_per_cpu_sec"])
    best = {name: max(rates) for name, rates in runs.items()}
    per_cpu = {name: max(rates) for name, rates in cpu_runs.items()}
    result = {
        "ours_jpeg_images_per_sec": best["ours_jpeg"],
        "ours_shards_images_per_sec": best["ours_shards"],
        "torch_jpeg_images_per_sec": best["torch_jpeg"],
        "torch_jpeg_no_shortcuts_images_per_sec": best["torch_jpeg_no_shortcuts"],
        "ratio_jpeg": round(best["ours_jpeg"] / best["torch_jpeg"], 2),
        "ratio_shards": round(best["ours_shards"] / best["torch_jpeg"], 2),
        "ratio_jpeg_no_shortcuts": round(best["ours_jpeg"] / best["torch_jpeg_no_shortcuts"], 2),
        "images_per_cpu_sec": per_cpu,
        "ratio_jpeg_per_cpu_sec": round(per_cpu["ours_jpeg"] / per_cpu["torch_jpeg"], 2),
        "ratio_shards_per_cpu_sec": round(per_cpu["ours_shards"] / per_cpu["torch_jpeg"], 2),
        # bench input's own peer, the plain decode-resize-crop map, in the same process.
        "ours_jpeg_vs_plain_map": max(vs_plain),
        "plain_map_images_per_sec": max(plain),
        "ours_jpeg_vs_plain_map_runs": vs_plain,
        "runs": runs,
        "cpu_runs": cpu_runs,
        "cpu_count": os.cpu_count(),
        **machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
