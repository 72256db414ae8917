"""Our input pipeline against a PyTorch DataLoader (2 PIL workers) on the same JPEGs.

    python benchmarks/input_vs_torch.py [--data_dir /tmp/bench_jpegs] [--images 2560] \
        [--torch_python /tmp/venv/torch/bin/python]

Writes `--images` photo-like 500x375 JPEGs (smooth colour fields, texture and grain,
about the size of ImageNet's) into `--data_dir/train/<class>/` unless they are there,
then runs `python -m alexnet_tf.bench input` and `benchmarks/torch_input_peer.py` one
after the other on them and prints one JSON line with both rates and their ratio.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def make_images(data_dir, count, classes=20, size=(500, 375), seed=0):
    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(count):
        folder = os.path.join(data_dir, "train", f"class_{i % classes:02d}")
        os.makedirs(folder, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        image = np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.float32)
        mid = Image.fromarray(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8))
        image = image * 0.7 + np.asarray(mid.resize((w, h), Image.BILINEAR)) * 0.3
        image = image + rng.normal(0, 7, size=image.shape)
        path = os.path.join(folder, f"img_{i:05d}.JPEG")
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data_dir", default="/tmp/alexnet_tf_bench_jpegs")
    p.add_argument("--images", type=int, default=2560)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--torch_python", default="/tmp/venv/torch/bin/python")
    p.add_argument("--extra", nargs="*", default=[], help="more flags for bench input")
    args = p.parse_args()
    if not os.path.isdir(os.path.join(args.data_dir, "train")):
        make_images(args.data_dir, args.images)
    common = ["--data_dir", args.data_dir, "--batch_size", str(args.batch_size), "--json"]
    ours = run([sys.executable, "-m", "alexnet_tf.bench", "input", *common, *args.extra])
    peer = run([args.torch_python, os.path.join(HERE, "torch_input_peer.py"), *common])
    result = {
        "ours_images_per_sec": ours["images_per_sec"],
        "torch_images_per_sec": peer["images_per_sec"],
        "ratio": round(ours["images_per_sec"] / peer["images_per_sec"], 2),
        "ours": ours,
        "torch": peer,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
